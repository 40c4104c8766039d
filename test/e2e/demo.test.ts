/**
 * `npm start` as a newcomer runs it: the demo's entry (read from package.json's `start` script) on the
 * pinned Node. It comes up with its eight processes (how fast is for bench/demo-start.ts to measure);
 * every curl it prints is run alone through `/bin/sh -c` with the real curl binary and must exit 0
 * with the answer its comment promises; a request through the gateway, property and photo services is
 * one trace with a span from every proxy hop, received by the demo's OTLP/HTTP receiver; Ctrl-C
 * (SIGINT) stops every process it started. Each run shifts the demo's ports (`--port-offset`) to a set
 * found free, so it never collides with what holds the usual ones.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { type DemoPorts, demoPorts } from '../../examples/proptech/ports.ts';
import { parsePrometheusText } from '../../src/testing/prometheus.ts';
import { demoStartCommand, freeDemoOffset } from '../helpers/demo.ts';
import { alive, descendants, nodeBin, repoRoot } from '../helpers/process.ts';

/**
 * Bounds the wait for the ready banner, above the demo's own 30 s (after which it stops with an error).
 * How fast it comes up is measured where timing means something, on an otherwise idle machine
 * (bench/demo-start.ts, docs/benchmarks.md), not beside the other test files.
 */
const READY_WAIT_MS = 60_000;
const STOP_BUDGET_MS = 20_000;

/** The ports of the demo running now (its offset chosen by `freeDemoOffset`). */
let ports: DemoPorts = demoPorts();
const gatewayUrl = () => `http://127.0.0.1:${ports.gateway}`;
const tracesUrl = () => `http://127.0.0.1:${ports.traces}`;

class Demo {
  readonly child: ChildProcess;
  output = '';
  exit: Promise<number | null>;
  readonly startedAt = performance.now();

  constructor(offset: number, extra: string[] = []) {
    ports = demoPorts(offset);
    // As for a newcomer: the demo makes its own token secret.
    const env = { ...process.env };
    delete env.PROPTECH_JWT_SECRET;
    this.child = spawn(nodeBin, [...demoStartCommand(), '--port-offset', String(offset), ...extra], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
      env,
    });
    this.child.stdout!.setEncoding('utf8').on('data', (c: string) => (this.output += c));
    this.child.stderr!.setEncoding('utf8').on('data', (c: string) => (this.output += c));
    this.exit = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  /** Waits for the whole banner (its last line); returns how long the demo took to print it. */
  async ready(): Promise<number> {
    const deadline = performance.now() + READY_WAIT_MS;
    while (!/^Ctrl-C stops everything\.$/m.test(this.output)) {
      if (this.child.exitCode !== null) assert.fail(`the demo exited (${this.child.exitCode}):\n${this.output}`);
      if (performance.now() > deadline) assert.fail(`no ready banner:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const up = /^meshgate PropTech demo is up in ([\d.]+) s$/m.exec(this.output);
    assert.ok(up, this.output);
    return performance.now() - this.startedAt;
  }

  get logDir(): string {
    return /^ {2}Logs +(\S+)\//m.exec(this.output)![1]!;
  }

  get token(): string {
    return /^Token .*:\n {2}(\S+)$/m.exec(this.output)![1]!;
  }

  curls(): string[] {
    return this.output
      .split('\n')
      .filter((l) => l.startsWith('  curl '))
      .map((l) => l.trim());
  }

  /** SIGINT (what Ctrl-C sends) and the exit code. */
  async stop(): Promise<number | null> {
    if (this.child.exitCode !== null) return this.child.exitCode;
    this.child.kill('SIGINT');
    const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), STOP_BUDGET_MS).unref());
    const code = await Promise.race([this.exit, timeout]);
    if (code === 'timeout') {
      this.child.kill('SIGKILL');
      assert.fail(`the demo did not stop within ${STOP_BUDGET_MS} ms:\n${this.output}`);
    }
    return code;
  }

  /** After a failed test: whatever is left goes, so the next test finds its ports free. */
  forceStop(pids: number[]) {
    for (const pid of [this.child.pid!, ...pids])
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
  }
}

interface HttpResponse {
  status: number;
  headers: Map<string, string[]>;
  body: string;
}

/** The responses in `curl -si` output, in order (curl prints one after the other, bodies framed by content-length). */
function responses(output: Buffer): HttpResponse[] {
  const list: HttpResponse[] = [];
  let at = 0;
  while (at < output.length) {
    const end = output.indexOf('\r\n\r\n', at);
    assert.ok(end !== -1, `a response head in ${output.toString()}`);
    const [statusLine, ...lines] = output.subarray(at, end).toString('latin1').split('\r\n');
    const status = /^HTTP\/[\d.]+ (\d{3})/.exec(statusLine!);
    assert.ok(status, `a status line, got ${statusLine}`);
    const headers = new Map<string, string[]>();
    for (const line of lines) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).toLowerCase();
      headers.set(name, [...(headers.get(name) ?? []), line.slice(colon + 1).trim()]);
    }
    const length = headers.get('content-length')?.[0];
    const bodyEnd = length === undefined ? output.length : end + 4 + Number(length);
    list.push({ status: Number(status[1]), headers, body: output.subarray(end + 4, bodyEnd).toString('utf8') });
    at = bodyEnd;
  }
  return list;
}

function one(output: Buffer): HttpResponse {
  const list = responses(output);
  assert.equal(list.length, 1);
  return list[0]!;
}

function header(r: HttpResponse, name: string): string | undefined {
  const values = r.headers.get(name);
  if (values === undefined) return undefined;
  assert.equal(values.length, 1, `one ${name} header, got ${values.join(' | ')}`);
  return values[0];
}

// biome-ignore lint/suspicious/noExplicitAny: JSON bodies, asserted field by field
const json = (r: HttpResponse): any => JSON.parse(r.body);

function problem(r: HttpResponse, status: number, code: string) {
  assert.equal(r.status, status);
  assert.equal(header(r, 'content-type'), 'application/problem+json');
  const body = json(r);
  assert.equal(body.status, status);
  assert.equal(body.code, code);
  assert.equal(body.requestId, header(r, 'x-request-id'));
  assert.match(body.traceId, /^[\da-f]{32}$/);
}

/** What each printed curl must show, recognised by what it asks for. */
const EXPECTED: { name: string; is: (cmd: string) => boolean; check: (out: Buffer) => void }[] = [
  {
    name: 'a property with the token',
    is: (c) => c.includes('Authorization: Bearer') && !c.includes('canary') && c.includes('/api/v1/properties/42'),
    check(out) {
      const r = one(out);
      assert.equal(r.status, 200, r.body);
      const body = json(r);
      assert.equal(body.id, '42');
      assert.ok(['v1', 'v2'].includes(body.version));
      assert.ok(body.photos.length > 0, 'photos, from the photo service through the mesh');
      assert.equal(typeof body.valuation.estimate, 'number');
      assert.match(body.traceId, /^[\da-f]{32}$/);
      assert.equal(header(r, 'ratelimit-limit'), '1000');
      assert.match(header(r, 'x-request-id') ?? '', /^[\da-f-]{36}$/);
      // API v1 is deprecated, with a sunset date and its successor.
      assert.equal(header(r, 'deprecation'), `@${Date.parse('2026-12-01T00:00:00Z') / 1000}`);
      assert.equal(header(r, 'sunset'), 'Wed, 30 Jun 2027 00:00:00 GMT');
      assert.equal(header(r, 'link'), '</api/v2/properties>; rel="successor-version"');
      // The demo-app's plan: 5000 a day, this its first request (the readiness probe is another consumer).
      assert.equal(header(r, 'x-ratelimit-limit-day'), '5000');
      assert.equal(header(r, 'x-ratelimit-remaining-day'), '4999');
    },
  },
  {
    name: 'the v2 property, composed',
    is: (c) => c.includes('/api/v2/properties/42/full'),
    check(out) {
      const r = one(out);
      assert.equal(r.status, 200, r.body);
      const body = json(r);
      assert.equal(body.property.id, '42');
      assert.equal(body.property.photos, undefined, 'the listing alone: photos come from their own call');
      assert.ok(body.photos.photos.length > 0, 'photos, called by the gateway');
      assert.equal(typeof body.valuation.estimate, 'number');
      assert.equal(body.errors, undefined);
      assert.equal(header(r, 'deprecation'), undefined, 'v2 is current');
    },
  },
  {
    name: 'a valuation over gRPC',
    is: (c) => c.includes('/api/v1/valuations/42?'),
    check(out) {
      const r = one(out);
      assert.equal(r.status, 200, r.body);
      const body = json(r);
      assert.equal(body.propertyId, '42');
      assert.equal(body.currency, 'EUR');
      assert.match(body.estimate, /^\d+$/, 'int64 as a string (proto3 JSON)');
      assert.match(body.valuedAt, /^\d{4}-\d{2}-01T00:00:00Z$/, 'a Timestamp as RFC 3339');
    },
  },
  {
    name: 'a gRPC stream as NDJSON',
    is: (c) => c.includes('/history?months=3'),
    check(out) {
      const r = one(out);
      assert.equal(r.status, 200);
      assert.equal(header(r, 'content-type'), 'application/x-ndjson');
      const lines = r.body
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      assert.equal(lines.length, 3);
      assert.deepEqual(
        lines.map((l) => l.valuedAt),
        [...lines.map((l) => l.valuedAt)].sort(),
        'oldest month first',
      );
    },
  },
  {
    name: 'REST to GraphQL',
    is: (c) => c.includes('/api/v1/listings/denver'),
    check(out) {
      const r = one(out);
      assert.equal(r.status, 200, r.body);
      const listings = json(r).data.listings;
      assert.equal(listings.length, 3, 'limit from the query string');
      assert.match(listings[0].href, /^\/api\/v1\/properties\/\d+$/);
    },
  },
  {
    name: 'GraphQL too deep',
    is: (c) => c.includes('/graphql'),
    check: (out) => problem(one(out), 400, 'MG_GRAPHQL_TOO_DEEP'),
  },
  {
    name: 'usage as CSV',
    is: (c) => c.includes('/usage?format=csv'),
    check(out) {
      const rows = out.toString().trim().split('\n');
      assert.equal(rows[0], 'hour,consumer,route,api,version,status_class,requests,bytes');
      // By now: the demo-app's v1, canary and v2 calls (each 2xx) and the 401 before this curl (no consumer).
      const demoApp = rows.filter((r) => r.split(',')[1] === 'demo-app').map((r) => r.split(',').slice(2, 6).join(','));
      assert.ok(demoApp.includes('property-api,property-api,v1,2xx'), rows.join('\n'));
      assert.ok(demoApp.includes('property-full,property-api,v2,2xx'), rows.join('\n'));
    },
  },
  {
    name: 'the canary',
    is: (c) => c.includes("-H 'canary: true'"),
    check(out) {
      const r = one(out);
      assert.equal(r.status, 200, r.body);
      assert.equal(json(r).version, 'v2');
      assert.equal(json(r).energyRating.length, 1);
    },
  },
  {
    name: 'search, twice',
    is: (c) => c.includes('/api/v1/search/'),
    check(out) {
      const [first, second, ...rest] = responses(out);
      assert.equal(rest.length, 0);
      assert.equal(first!.status, 200);
      assert.equal(second!.status, 200);
      assert.equal(json(first!).query.city, 'austin');
      assert.ok(json(first!).results.length > 0);
      assert.equal(json(first!).neighborhood.city, 'austin', 'enrichment, through the search sidecar');
      assert.deepEqual(json(second!), json(first!));
      assert.equal(header(first!, 'x-cache-status'), 'MISS');
      assert.equal(header(second!, 'x-cache-status'), 'HIT');
      assert.match(header(second!, 'age') ?? '', /^\d+$/);
    },
  },
  {
    name: 'no token: 401',
    is: (c) => c.includes('/api/v1/properties/42') && !c.includes('Authorization'),
    check(out) {
      const r = one(out);
      problem(r, 401, 'MG_UNAUTHORIZED');
      assert.match(header(r, 'www-authenticate') ?? '', /^Bearer /);
    },
  },
  {
    name: 'no route: 404',
    is: (c) => c.includes('/api/v1/agents/'),
    check: (out) => problem(one(out), 404, 'MG_ROUTE_NOT_FOUND'),
  },
  {
    name: 'gateway metrics',
    is: (c) => c.includes(`127.0.0.1:${ports.gatewayAdmin}/metrics`),
    check(out) {
      // Strict: throws on anything a Prometheus server would reject.
      const scrape = parsePrometheusText(out.toString());
      // The demo's readiness request and the first curl at least; the 401 before this curl.
      assert.ok(scrape.sum('gateway_requests_total', { route: 'property-api', status_class: '2xx' }) >= 2);
      assert.ok(scrape.sum('gateway_auth_rejected_total', { route: 'property-api', code: 'MG_UNAUTHORIZED' }) >= 1);
      assert.ok(scrape.sum('gateway_requests_total', { route: 'search', status_class: '2xx' }) >= 2);
    },
  },
  {
    name: 'traces',
    is: (c) => c.includes(`127.0.0.1:${ports.traces}/traces`),
    check(out) {
      const text = out.toString();
      // Any line, not the first: a trace is listed by its earliest span received, and a sidecar's
      // span can arrive before its gateway's (each proxy exports in its own batches).
      assert.match(text, /^trace [\da-f]{32} {2}GET \/api\/v1\//m);
      assert.match(text, /photo-service +inbound/);
    },
  },
  {
    name: 'control plane status',
    is: (c) => c.includes(`127.0.0.1:${ports.controlPlane}/status`),
    check(out) {
      // `curl -s` exits 0 on any status: the body must be the mesh, whole and in sync.
      const status = JSON.parse(out.toString()) as {
        controlPlane: { warm: boolean };
        instances: { total: number };
        proxies: { total: number; byState: Record<string, number> };
      };
      assert.equal(status.controlPlane.warm, true);
      assert.equal(status.instances.total, 6, 'every demo instance registered');
      assert.equal(status.proxies.total, 7, 'the gateway and six sidecars connected');
      assert.equal(status.proxies.byState.SYNCED, 7, 'every proxy in sync');
    },
  },
];

function sh(command: string): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve) => {
    // A fresh shell: no variables of ours, only what finds curl.
    execFile(
      '/bin/sh',
      ['-c', command],
      { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, encoding: 'buffer', timeout: 10_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr: stderr.toString() }),
    );
  });
}

interface Span {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  service: string;
  attributes: Record<string, string | number>;
}

/** The spans of one trace, once `count` have arrived (they come in batches). */
async function traceSpans(traceId: string, count: number): Promise<Span[]> {
  const deadline = performance.now() + 10_000;
  for (;;) {
    const res = await fetch(`${tracesUrl()}/traces/${traceId}?format=json`);
    if (res.status === 200) {
      const spans = ((await res.json()) as { spans: Span[] }).spans;
      if (spans.length >= count) return spans;
    } else await res.arrayBuffer();
    if (performance.now() > deadline) assert.fail(`trace ${traceId}: fewer than ${count} spans within 10 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('npm start: the PropTech demo', () => {
  let demo: Demo;
  let startMs: number;
  let pids: number[] = [];
  /** The trace of a request through the mesh, looked for in the access log at the end. */
  let tracedId = '';
  before(async () => {
    demo = new Demo(await freeDemoOffset());
    startMs = await demo.ready();
    pids = descendants(demo.child.pid!);
  });
  after(async () => {
    if (demo.child.exitCode === null) await demo.stop().catch(() => demo.forceStop(pids));
    demo.forceStop(pids.filter(alive));
    if (demo.output.includes('Logs ')) rmSync(demo.logDir, { recursive: true, force: true });
  });

  it('prints the URLs of its ports: the documented ones, shifted by --port-offset', () => {
    assert.match(demo.output, new RegExp(`^ {2}Gateway +http://127\\.0\\.0\\.1:${ports.gateway}$`, 'm'));
    assert.match(demo.output, new RegExp(`^ {2}Traces +http://127\\.0\\.0\\.1:${ports.traces}/traces$`, 'm'));
    // What `npm start` alone uses (docs/demo.md): the offset is the only difference.
    const documented = demoPorts();
    assert.deepEqual(
      [documented.gateway, documented.gatewayAdmin, documented.controlPlane, documented.traces],
      [8080, 9901, 15010, 4318],
    );
    assert.deepEqual(documented.instances['property-v1'], { app: 8101, sidecarBase: 15100 });
    assert.deepEqual(documented.instances.enrichment, { app: 8106, sidecarBase: 15600 });
    const offset = ports.gateway - 8080;
    assert.ok(offset > 0);
    assert.deepEqual(ports, demoPorts(offset));
  });

  it('comes up with the control plane, the gateway and six sidecars, and says how long it took', (t) => {
    t.diagnostic(`ready banner ${Math.round(startMs)} ms after the start`);
    const up = /^meshgate PropTech demo is up in ([\d.]+) s$/m.exec(demo.output);
    assert.ok(up, demo.output);
    // Counted from the demo's own start, after Node's: no more than the test saw.
    assert.ok(Number(up[1]) * 1000 <= startMs + 50, `says ${up[1]} s, took ${Math.round(startMs)} ms`);
    assert.equal(pids.length, 8, `child processes: ${pids.join(' ')}`);
  });

  it('every printed curl succeeds alone in a fresh shell, with the answer it promises', async () => {
    const curls = demo.curls();
    assert.equal(curls.length, EXPECTED.length, `printed:\n${curls.join('\n')}`);
    const used = new Set<string>();
    for (const command of curls) {
      assert.doesNotMatch(command, /\$|\||`/, 'no shell variables, pipes or substitutions');
      const expected = EXPECTED.filter((e) => e.is(command));
      assert.equal(expected.length, 1, `exactly one expectation for: ${command}`);
      const e = expected[0]!;
      used.add(e.name);
      const run = await sh(command);
      assert.equal(run.code, 0, `${command}\n${run.stderr}`);
      try {
        e.check(run.stdout);
      } catch (err) {
        (err as Error).message = `${e.name}: ${command}\n${(err as Error).message}\n${run.stdout.toString()}`;
        throw err;
      }
    }
    assert.equal(used.size, EXPECTED.length);
  });

  it('the printed `meshgate usage export` lists the demo-app’s requests from the usage store', async () => {
    const line = demo.output.split('\n').find((l) => l.startsWith('  npx meshgate usage export '));
    assert.ok(line, demo.output);
    // The curls' `GET /usage` made the gateway write its counts: the store holds them now.
    const run = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(
        '/bin/sh',
        ['-c', line.trim()],
        { cwd: repoRoot, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, timeout: 120_000 },
        (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout, stderr }),
      ),
    );
    assert.equal(run.code, 0, run.stderr);
    const rows = run.stdout.trim().split('\n');
    assert.equal(rows[0], 'hour,consumer,route,api,version,status_class,requests,bytes');
    const v2 = rows.find((r) => /,demo-app,property-full,property-api,v2,2xx,/.test(r));
    assert.ok(v2, run.stdout);
    assert.ok(Number(v2.split(',')[6]) >= 1);
  });

  it('gateway → property → photos is one trace, with a span from every proxy hop', async () => {
    const res = await fetch(`${gatewayUrl()}/api/v1/properties/7`, {
      headers: { authorization: `Bearer ${demo.token}` },
    });
    assert.equal(res.status, 200);
    const traceId = ((await res.json()) as { traceId: string }).traceId;
    tracedId = traceId;
    // gateway; property's sidecar inbound and outbound (×2: photos, valuation); photo's and valuation's inbound.
    const spans = await traceSpans(traceId, 6);
    assert.equal(spans.length, 6);
    for (const s of spans) assert.equal(s.traceId, traceId);
    const find = (service: string, route: string, parent: Span | null) => {
      const found = spans.filter(
        (s) =>
          s.service === service &&
          s.attributes['meshgate.route'] === route &&
          s.parentSpanId === (parent === null ? '' : parent.spanId),
      );
      assert.equal(found.length, 1, `one ${service} ${route} span under ${parent?.spanId ?? 'the root'}`);
      return found[0]!;
    };
    const gateway = find('meshgate', 'property-api', null);
    assert.equal(gateway.attributes['http.response.status_code'], 200);
    const inbound = find('property-service', 'inbound', gateway);
    const toPhotos = find('property-service', 'outbound.photo-service', inbound);
    find('photo-service', 'inbound', toPhotos);
    const toValuation = find('property-service', 'outbound.valuation-service', inbound);
    find('valuation-service', 'inbound', toValuation);
  });

  it("a client's traceparent is kept: its trace id, under its span", async () => {
    const traceId = randomBytes(16).toString('hex');
    const parent = randomBytes(8).toString('hex');
    const res = await fetch(`${gatewayUrl()}/api/v1/properties/8`, {
      headers: { authorization: `Bearer ${demo.token}`, traceparent: `00-${traceId}-${parent}-01` },
    });
    assert.equal(((await res.json()) as { traceId: string }).traceId, traceId);
    const spans = await traceSpans(traceId, 6);
    assert.equal(spans.find((s) => s.service === 'meshgate')!.parentSpanId, parent);
  });

  it('Ctrl-C stops every process it started, and the access logs hold the trace ids', async () => {
    assert.ok(pids.every(alive), 'all running before');
    assert.equal(await demo.stop(), 0, demo.output);
    assert.match(demo.output, /^stopped\. Logs are in /m);
    assert.deepEqual(pids.filter(alive), [], 'no process left behind');
    // Access log lines are buffered; a stopped gateway has written them all.
    const accessLog = (name: string) =>
      readFileSync(`${demo.logDir}/${name}.log`, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('{"time"'))
        .map((l) => JSON.parse(l) as { route?: string; traceId?: string; status: number; consumer?: string });
    const gateway = accessLog('gateway').find((l) => l.traceId === tracedId);
    assert.ok(gateway, `the gateway's access log has trace ${tracedId}`);
    assert.equal(gateway.route, 'property-api');
    assert.equal(gateway.status, 200);
    assert.equal(gateway.consumer, 'demo-app');
    assert.ok(accessLog('photo-sidecar').some((l) => l.traceId === tracedId && l.route === 'inbound'));
  });
});

describe('npm start -- --load --stats', () => {
  let demo: Demo;
  let pids: number[] = [];
  before(async () => {
    demo = new Demo(await freeDemoOffset(), ['--load', '--stats']);
    await demo.ready();
    pids = descendants(demo.child.pid!);
  });
  after(async () => {
    if (demo.child.exitCode === null) await demo.stop().catch(() => demo.forceStop(pids));
    demo.forceStop(pids.filter(alive));
    if (demo.output.includes('Logs ')) rmSync(demo.logDir, { recursive: true, force: true });
  });

  it("--stats prints each proxy's RSS, as reported to the control plane, and their total", async () => {
    const deadline = performance.now() + 15_000;
    let block: RegExpExecArray | null = null;
    while ((block = /^Proxy memory \(RSS\):\n((?: {2}.+\n)+)/m.exec(demo.output)) === null) {
      assert.ok(performance.now() < deadline, demo.output);
      await new Promise((r) => setTimeout(r, 100));
    }
    const rows = block[1]!
      .trimEnd()
      .split('\n')
      .map((l) => /^ {2}(\S+) +(\d+) MiB$/.exec(l)!);
    assert.ok(rows.every(Boolean), block[1]);
    const total = rows.pop()!;
    assert.equal(total[1], 'together');
    // The gateway and the six sidecars, each a Node process of some tens of MiB.
    assert.equal(rows.length, 7, block[1]);
    for (const row of rows) assert.ok(Number(row[2]) > 20 && Number(row[2]) < 1024, row[0]);
    const sum = rows.reduce((s, r) => s + Number(r[2]), 0);
    assert.ok(Math.abs(Number(total[2]) - sum) <= rows.length, `${total[2]} vs ${sum}`);
  });

  it('drives steady traffic over every route, then stops cleanly', async () => {
    const total = async () => {
      const text = await (await fetch(`http://127.0.0.1:${ports.gatewayAdmin}/metrics`)).text();
      const byRoute = new Map<string, number>();
      for (const s of parsePrometheusText(text).families.get('gateway_requests_total')?.samples ?? [])
        byRoute.set(s.labels.route!, (byRoute.get(s.labels.route!) ?? 0) + s.value);
      return byRoute;
    };
    const deadline = performance.now() + 15_000;
    let seen = new Map<string, number>();
    // 5 requests a second: every route of the mix shows up within a few seconds.
    while (!['property-api', 'property-canary', 'search', ''].every((r) => (seen.get(r) ?? 0) > 0)) {
      assert.ok(performance.now() < deadline, `routes so far: ${JSON.stringify([...seen])}`);
      await new Promise((r) => setTimeout(r, 250));
      seen = await total();
    }
    const traces = (await (await fetch(`${tracesUrl()}/traces?format=json&limit=20`)).json()) as { traces: unknown[] };
    assert.ok(traces.traces.length >= 5);
    assert.equal(await demo.stop(), 0, demo.output);
    assert.deepEqual(pids.filter(alive), [], 'no process left behind');
  });
});
