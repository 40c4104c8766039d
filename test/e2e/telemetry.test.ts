/**
 * What a proxy reports, checked from outside as an operator's tools see it: `/metrics` parsed as the
 * Prometheus text format (and by promtool when installed) with counters equal to the requests sent,
 * over one process and over 2 workers; the JSON access log; spans received by a real OTLP/HTTP
 * receiver, with W3C and B3 propagation; Server-Timing.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { startOtlpReceiver } from '../../src/testing/otlp.ts';
import { parsePrometheusText, type Scrape } from '../../src/testing/prometheus.ts';
import { eventually } from '../helpers/mesh.ts';
import { MeshgateProcess } from '../helpers/process.ts';
import { startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/servers.ts';

const promtool = spawnSync('promtool', ['--version']).status === 0;

async function scrape(adminUrl: string): Promise<{ text: string; metrics: Scrape }> {
  const res = await request(`${adminUrl}/metrics`);
  assert.equal(res.statusCode, 200);
  assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  const text = await res.body.text();
  return { text, metrics: parsePrometheusText(text) };
}

/**
 * `promtool check metrics`: Prometheus' own parser and linter (naming, units, help). prom-client's
 * default process gauges `nodejs_active_{handles,requests,resources}_total` are named like counters,
 * which the linter flags; that is the library's naming, so those three findings are let through.
 */
function checkWithPromtool(text: string): void {
  const run = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  const findings = `${run.stdout}${run.stderr}`
    .split('\n')
    .filter((l) => l.trim() !== '' && !/^nodejs_active_(handles|requests|resources)_total non-counter/.test(l));
  assert.deepEqual(findings, [], `promtool check metrics:\n${findings.join('\n')}`);
  assert.ok(run.status === 0 || run.status === 3, `promtool exited ${run.status}`);
}

async function send(url: string, headers: Record<string, string> = {}) {
  const res = await request(url, { headers });
  const body = await res.body.text();
  return { status: res.statusCode, headers: res.headers, body };
}

describe('Prometheus metrics of the gateway', () => {
  let upstream: Upstream;
  let gw: TestGateway;

  before(async () => {
    upstream = await startUpstream((req, res) => {
      res.statusCode = req.url!.startsWith('/boom') ? 500 : 200;
      res.end('x'.repeat(10));
    });
    gw = await startGateway({
      listeners: [{ name: 'main' }],
      consumers: [{ name: 'partner', credentials: [{ type: 'api-key', key: 'partner-key-0123456789' }] }],
      services: [{ name: 'api', endpoints: [{ url: upstream.url }] }],
      routes: [
        { name: 'ok', match: { path: '/ok' }, service: 'api' },
        { name: 'boom', match: { path: '/boom' }, service: 'api' },
        { name: 'private', match: { path: '/private' }, service: 'api', plugins: [{ name: 'key-auth' }] },
        {
          name: 'limited',
          match: { path: '/limited' },
          service: 'api',
          plugins: [{ name: 'rate-limit', config: { minute: 1 } }],
        },
        { name: 'retried', match: { path: '/boom-retried' }, service: 'api', retries: { attempts: 2, on: ['5xx'] } },
      ],
    });
  });

  after(async () => {
    await gw.close();
    await upstream.close();
  });

  it('parses as the text format, and its counters match the requests sent', async () => {
    const base = gw.url();
    for (let i = 0; i < 7; i++) assert.equal((await send(`${base}/ok`)).status, 200);
    for (let i = 0; i < 3; i++) assert.equal((await send(`${base}/boom`)).status, 500);
    for (let i = 0; i < 2; i++) assert.equal((await send(`${base}/private`)).status, 401);
    assert.equal((await send(`${base}/private`, { apikey: 'partner-key-0123456789' })).status, 200);
    assert.equal((await send(`${base}/nowhere`)).status, 404);

    const { text, metrics: m } = await scrape(gw.adminUrl);
    if (promtool) checkWithPromtool(text);
    const ok = { route: 'ok', service: 'api', method: 'GET', status_class: '2xx' };
    assert.equal(m.value('gateway_requests_total', ok), 7);
    assert.equal(m.value('gateway_request_duration_seconds_count', ok), 7);
    assert.equal(m.value('gateway_requests_total', { ...ok, route: 'boom', status_class: '5xx' }), 3);
    assert.equal(
      m.value('gateway_requests_total', { route: 'private', service: 'api', method: 'GET', status_class: '4xx' }),
      2,
    );
    assert.equal(m.sum('gateway_requests_total'), 14);
    assert.equal(m.sum('gateway_request_duration_seconds_count'), 14);
    // Upstream time and the proxy's own time are observed for requests that went upstream.
    assert.equal(m.sum('gateway_upstream_duration_seconds_count'), 11);
    assert.equal(m.sum('gateway_proxy_overhead_seconds_count'), 11);
    assert.equal(m.value('gateway_errors_total', { route: 'boom', service: 'api', code: 'upstream_5xx' }), 3);
    assert.equal(m.value('gateway_errors_total', { route: 'private', service: 'api', code: 'MG_UNAUTHORIZED' }), 2);
    assert.equal(m.value('gateway_errors_total', { route: '', service: '', code: 'MG_ROUTE_NOT_FOUND' }), 1);
    assert.equal(m.value('gateway_auth_rejected_total', { route: 'private', code: 'MG_UNAUTHORIZED' }), 2);
    assert.equal(m.sum('gateway_response_bytes_total'), 11 * 10);
    assert.equal(m.value('gateway_requests_in_flight'), 0);
    assert.equal(m.value('gateway_endpoints', { service: 'api', state: 'healthy' }), 1);
    for (const threshold of ['maxConnections', 'maxPendingRequests', 'maxRequests', 'maxRetries'])
      assert.equal(m.value('gateway_circuit_breaker_open', { service: 'api', threshold }), 0);
    // Never an unbounded label: no path, id or address reaches a label value.
    assert.doesNotMatch(text, /nowhere|partner-key-0123456789|127\.0\.0\.1/);
  });

  it('counts retries and rate-limited requests', async () => {
    const base = gw.url();
    assert.equal((await send(`${base}/limited`)).status, 200);
    assert.equal((await send(`${base}/limited`)).status, 429);
    assert.equal((await send(`${base}/limited`)).status, 429);
    assert.equal((await send(`${base}/boom-retried`)).status, 500, 'every try failed');
    const m = (await scrape(gw.adminUrl)).metrics;
    assert.equal(m.value('gateway_rate_limited_total', { route: 'limited' }), 2);
    assert.equal(m.value('gateway_errors_total', { route: 'limited', service: 'api', code: 'MG_RATE_LIMITED' }), 2);
    assert.equal(m.value('gateway_upstream_retries_total', { route: 'retried', service: 'api' }), 2);
    assert.equal(m.value('gateway_errors_total', { route: 'retried', service: 'api', code: 'upstream_5xx' }), 1);
  });
});

describe('resilience metrics', () => {
  it('circuit_breaker_open is 1 while a limit is reached and back to 0 after; overflows are counted', async () => {
    const held: ServerResponse[] = [];
    const upstream = await startUpstream((_req, res) => {
      held.push(res);
    });
    const gw = await startGateway({
      listeners: [{ name: 'main' }],
      services: [{ name: 'slow', endpoints: [{ url: upstream.url }], circuitBreaker: { maxRequests: 1 } }],
      routes: [{ name: 'slow', service: 'slow' }],
    });
    try {
      const first = send(`${gw.url()}/a`);
      while (held.length === 0) await sleep(5);
      const refused = await send(`${gw.url()}/b`);
      assert.equal(refused.status, 503);
      assert.equal(refused.headers['x-meshgate-code'], 'MG_CIRCUIT_OPEN');
      let m = (await scrape(gw.adminUrl)).metrics;
      assert.equal(m.value('gateway_circuit_breaker_open', { service: 'slow', threshold: 'maxRequests' }), 1);
      assert.equal(m.value('gateway_circuit_breaker_open', { service: 'slow', threshold: 'maxConnections' }), 0);
      assert.equal(
        m.value('gateway_circuit_breaker_overflows_total', { service: 'slow', threshold: 'maxRequests' }),
        1,
      );
      assert.equal(m.value('gateway_errors_total', { route: 'slow', service: 'slow', code: 'MG_CIRCUIT_OPEN' }), 1);
      for (const res of held.splice(0)) res.end('done');
      assert.equal((await first).status, 200);
      m = (await scrape(gw.adminUrl)).metrics;
      assert.equal(m.value('gateway_circuit_breaker_open', { service: 'slow', threshold: 'maxRequests' }), 0);
    } finally {
      for (const res of held) res.end();
      await gw.close();
      await upstream.close();
    }
  });

  it('ejections are counted, endpoints shown by state, and the counts survive a config change', async () => {
    const good = await startUpstream();
    const bad = await startUpstream((_req, res) => {
      res.statusCode = 500;
      res.end();
    });
    const config = (extraRoute: boolean) => ({
      listeners: [{ name: 'main' }],
      services: [
        {
          name: 'pair',
          endpoints: [{ url: good.url }, { url: bad.url }],
          loadBalancer: { policy: 'round-robin' },
          outlierDetection: { consecutiveErrors: 2, baseEjectionTime: '60s', maxEjectionPercent: 50 },
        },
      ],
      routes: [
        { name: 'pair', service: 'pair' },
        ...(extraRoute ? [{ name: 'other', match: { path: '/other' }, service: 'pair' }] : []),
      ],
    });
    const gw = await startGateway(config(false));
    try {
      for (let i = 0; i < 6; i++) await send(`${gw.url()}/x`);
      let m = (await scrape(gw.adminUrl)).metrics;
      assert.equal(m.value('gateway_outlier_ejections_total', { service: 'pair' }), 1);
      assert.equal(m.value('gateway_endpoints', { service: 'pair', state: 'ejected' }), 1);
      assert.equal(m.value('gateway_endpoints', { service: 'pair', state: 'healthy' }), 1);
      await gw.apply(config(true));
      m = (await scrape(gw.adminUrl)).metrics;
      assert.equal(m.value('gateway_outlier_ejections_total', { service: 'pair' }), 1, 'a counter does not reset');
    } finally {
      await gw.close();
      await good.close();
      await bad.close();
    }
  });

  it('a sidecar reports the same shapes under mesh_', async () => {
    const upstream = await startUpstream();
    const gw = await startGateway(
      {
        listeners: [{ name: 'main' }],
        services: [{ name: 'photos', endpoints: [{ url: upstream.url }] }],
        routes: [{ name: 'photos', service: 'photos' }],
      },
      { role: 'mesh' },
    );
    try {
      for (let i = 0; i < 4; i++) await send(`${gw.url()}/p`);
      const { text, metrics: m } = await scrape(gw.adminUrl);
      if (promtool) checkWithPromtool(text);
      assert.equal(m.sum('mesh_requests_total', { service: 'photos', status_class: '2xx' }), 4);
      assert.equal(m.sum('mesh_request_duration_seconds_count'), 4);
      assert.notEqual(m.families.get('mesh_connection_pool_active'), undefined);
      assert.notEqual(m.families.get('mesh_circuit_breaker_open'), undefined);
      // A tail needs a visible cause on every proxy: event-loop delay and GC pauses (docs/metrics.md).
      assert.equal(m.families.get('nodejs_eventloop_lag_p99_seconds')?.type, 'gauge');
      assert.equal(m.families.get('nodejs_gc_duration_seconds')?.type, 'histogram');
      assert.doesNotMatch(text, /^gateway_/m);
    } finally {
      await gw.close();
      await upstream.close();
    }
  });
});

describe('/metrics over 2 workers', () => {
  let dir: string;
  let gw: MeshgateProcess;
  let upstream: Upstream;

  before(async () => {
    upstream = await startUpstream();
    dir = mkdtempSync(join(tmpdir(), 'meshgate-metrics-'));
    const file = join(dir, 'gateway.yaml');
    writeFileSync(
      file,
      `listeners: [{ name: main, port: 0, address: 127.0.0.1 }]
admin: { port: 0 }
services: [{ name: api, endpoints: [{ url: "${upstream.url}" }], circuitBreaker: { maxRequests: 1000 } }]
routes: [{ name: api, service: api }]
`,
    );
    gw = new MeshgateProcess(['gateway', '--config', file, '--workers', '2']);
  });

  after(async () => {
    await gw.stop();
    await upstream.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sums the counters of every worker, and keeps a state gauge at its largest', async () => {
    const started = await gw.waitFor('gateway started');
    const base = `http://127.0.0.1:${(started.listeners as Record<string, number>).main}`;
    const admin = `http://127.0.0.1:${started.admin}`;
    // Fresh connections, so the kernel spreads them over both workers.
    for (let i = 0; i < 40; i++) assert.equal((await request(`${base}/w`, { reset: true })).statusCode, 200);
    // Each worker's own count (a request counts once its stream has ended, so wait for all 40): the
    // total below is a sum over the workers only if both served some of it.
    const workers = await eventually(async () => {
      const list = (
        JSON.parse(await (await request(`${admin}/workers`)).body.text()) as {
          workers: { pid: number; requestsServed: number }[];
        }
      ).workers;
      return list.reduce((sum, w) => sum + w.requestsServed, 0) === 40 ? list : undefined;
    });
    assert.equal(workers.length, 2);
    for (const w of workers) assert.ok(w.requestsServed > 0, `worker ${w.pid} served ${w.requestsServed}`);
    const { text, metrics: m } = await scrape(admin);
    if (promtool) checkWithPromtool(text);
    assert.equal(
      m.value('gateway_requests_total', { route: 'api', service: 'api', method: 'GET', status_class: '2xx' }),
      40,
    );
    assert.equal(m.sum('gateway_request_duration_seconds_count'), 40);
    assert.equal(m.value('gateway_circuit_breaker_open', { service: 'api', threshold: 'maxRequests' }), 0);
  });
});

describe('access log', () => {
  let dir: string;
  let upstream: Upstream;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshgate-access-'));
    upstream = await startUpstream((req, res) => {
      req.resume();
      req.on('end', () => res.end('hello'));
    });
  });

  after(async () => {
    await upstream.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function lines(file: string, count: number): Promise<Record<string, unknown>[]> {
    const deadline = performance.now() + 5000;
    for (;;) {
      let text = '';
      try {
        text = readFileSync(file, 'utf8');
      } catch {}
      const got = text.split('\n').filter((l) => l !== '');
      if (got.length >= count) return got.map((l) => JSON.parse(l) as Record<string, unknown>);
      if (performance.now() > deadline) assert.fail(`${got.length} access log lines, expected ${count}`);
      await sleep(20);
    }
  }

  it('writes one JSON line per request with what an operator needs', async () => {
    const file = join(dir, 'all.log');
    const gw = await startGateway({
      listeners: [{ name: 'main' }],
      observability: { accessLog: { output: file } },
      consumers: [{ name: 'partner', credentials: [{ type: 'api-key', key: 'secret-key-0123456789' }] }],
      services: [{ name: 'api', endpoints: [{ url: upstream.url }] }],
      routes: [{ name: 'api', service: 'api', plugins: [{ name: 'key-auth' }] }],
    });
    try {
      // Tracing is off here: the trace id of the incoming context names the request in the log.
      const traceId = '0af7651916cd43dd8448eb211c80319c';
      const ok = await request(`${gw.url()}/things?apikey=secret-key-0123456789`, {
        method: 'POST',
        body: 'twelve bytes',
        headers: { traceparent: `00-${traceId}-b7ad6b7169203331-01` },
      });
      assert.equal(await ok.body.text(), 'hello');
      const refused = await send(`${gw.url()}/things`);
      assert.equal(refused.status, 401);
      const [first, second] = await lines(file, 2);
      assert.equal(first!.requestId, ok.headers['x-request-id']);
      assert.equal(first!.traceId, traceId);
      assert.equal(first!.method, 'POST');
      assert.equal(first!.path, '/things');
      assert.equal(first!.consumer, 'partner');
      assert.equal(first!.route, 'api');
      assert.equal(first!.service, 'api');
      assert.equal(first!.endpoint, new URL(upstream.url).host);
      assert.equal(first!.status, 200);
      assert.equal(first!.bytesIn, 12);
      assert.equal(first!.bytesOut, 5);
      assert.equal(first!.tries, 1);
      assert.equal(first!.code, null);
      const total = first!.durationMs as number;
      const upstreamMs = first!.upstreamMs as number;
      const proxyMs = first!.proxyMs as number;
      assert.ok(total > 0 && upstreamMs > 0 && proxyMs >= 0);
      assert.ok(Math.abs(total - upstreamMs - proxyMs) < 0.01, 'total = upstream + the time the proxy added');
      assert.ok(!Number.isNaN(Date.parse(String(first!.time))));
      assert.equal(second!.status, 401);
      assert.equal(second!.code, 'MG_UNAUTHORIZED');
      assert.equal(second!.upstreamMs, undefined, 'never went upstream');
      assert.doesNotMatch(readFileSync(file, 'utf8'), /secret-key-0123456789/, 'no credential reaches the log');
    } finally {
      await gw.close();
    }
  });

  it('counts a response cut short mid-body to the failure, not to its last chunk', async () => {
    const file = join(dir, 'cut.log');
    const stalling = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('part');
    });
    const gw = await startGateway({
      listeners: [{ name: 'main' }],
      observability: { accessLog: { output: file, fields: ['status', 'durationMs'] } },
      services: [{ name: 'stalling', endpoints: [{ url: stalling.url }], timeouts: { idle: '300ms' } }],
      routes: [{ name: 'stalling', service: 'stalling' }],
    });
    try {
      const res = await request(`${gw.url()}/cut`);
      await assert.rejects(res.body.text(), 'the body stops short of its length');
      const [line] = await lines(file, 1);
      assert.ok((line!.durationMs as number) >= 290, `durationMs ${line!.durationMs}: ends at the last chunk`);
    } finally {
      await gw.close();
      await stalling.close();
    }
  });

  it('tells the upstream decisions: the tries retried and why, a refusal', async () => {
    const file = join(dir, 'decisions.log');
    let calls = 0;
    const flaky = await startUpstream((_req, res) => {
      res.statusCode = ++calls === 1 ? 503 : 200;
      res.end();
    });
    const gw = await startGateway({
      listeners: [{ name: 'main' }],
      observability: {
        accessLog: { output: file, fields: ['status', 'tries', 'tryLog', 'refusal', 'retryStop', 'code'] },
      },
      services: [
        {
          name: 'flaky',
          endpoints: [{ url: flaky.url }],
          retries: { attempts: 1, on: ['gateway-error'], backoff: { base: '1ms' } },
        },
        { name: 'closed', endpoints: [{ url: flaky.url }], circuitBreaker: { maxRequests: 0 } },
      ],
      routes: [
        { name: 'flaky', match: { path: '/flaky' }, service: 'flaky' },
        { name: 'closed', match: { path: '/closed' }, service: 'closed' },
      ],
    });
    try {
      assert.equal((await send(`${gw.url()}/flaky`)).status, 200);
      assert.equal((await send(`${gw.url()}/closed`)).status, 503);
      const [retried, refused] = await lines(file, 2);
      const endpoint = new URL(flaky.url).host;
      assert.deepEqual(retried, {
        status: 200,
        tries: 2,
        tryLog: [
          { endpoint, outcome: 'status 503' },
          { endpoint, outcome: 'status 200' },
        ],
        code: null,
      });
      assert.deepEqual(refused, {
        status: 503,
        tries: 0,
        refusal: 'circuit-open:maxRequests',
        code: 'MG_CIRCUIT_OPEN',
      });
    } finally {
      await gw.close();
      await flaky.close();
    }
  });

  it('keeps only the allowed fields, and samples', async () => {
    const few = join(dir, 'few.log');
    const none = join(dir, 'none.log');
    const gw = await startGateway({
      listeners: [{ name: 'main' }, { name: 'quiet' }],
      observability: { accessLog: { output: few, fields: ['requestId', 'status'] } },
      services: [{ name: 'api', endpoints: [{ url: upstream.url }] }],
      routes: [{ name: 'api', service: 'api' }],
    });
    try {
      await send(`${gw.url()}/a`);
      const [line] = await lines(few, 1);
      assert.deepEqual(Object.keys(line!).sort(), ['requestId', 'status']);
      await gw.apply({
        listeners: [{ name: 'main' }],
        observability: { accessLog: { output: none, sampleRatio: 0 } },
        services: [{ name: 'api', endpoints: [{ url: upstream.url }] }],
        routes: [{ name: 'api', service: 'api' }],
      });
      for (let i = 0; i < 20; i++) await send(`${gw.url()}/b`);
      // The same file with every request logged: the first line to appear is the next request's, so
      // none of the twenty was waiting in a buffer.
      await gw.apply({
        listeners: [{ name: 'main' }],
        observability: { accessLog: { output: none, sampleRatio: 1 } },
        services: [{ name: 'api', endpoints: [{ url: upstream.url }] }],
        routes: [{ name: 'api', service: 'api' }],
      });
      await send(`${gw.url()}/after`);
      const written = await lines(none, 1);
      assert.deepEqual(
        written.map((l) => l.path),
        ['/after'],
        'sampleRatio 0 logged nothing',
      );
    } finally {
      await gw.close();
    }
  });
});

describe('tracing over OTLP/HTTP', () => {
  it('exports a SERVER span per request with HTTP semantic conventions, continuing the incoming trace', async () => {
    const receiver = await startOtlpReceiver();
    const upstream = await startUpstream();
    const gw = await startGateway({
      listeners: [{ name: 'main' }],
      observability: { tracing: { endpoint: receiver.url, samplingRatio: 1, serviceName: 'edge' } },
      services: [{ name: 'api', endpoints: [{ url: upstream.url }] }],
      routes: [{ name: 'items', match: { path: '/items/:id' }, service: 'api' }],
    });
    try {
      const traceId = '4bf92f3577b34da6a3ce929effe1a001';
      const parent = '00f067aa0ba902b7';
      const res = await send(`${gw.url()}/items/7?x=1`, {
        traceparent: `00-${traceId}-${parent}-01`,
        tracestate: 'vendor=abc',
        'user-agent': 'trace-test',
      });
      assert.equal(res.status, 200);
      // The upstream sees the same trace, with the gateway's span as its parent.
      const seen = upstream.seen.at(-1)!.headers.traceparent as string;
      const [, upTrace, upParent, flags] = seen.split('-');
      assert.equal(upTrace, traceId);
      assert.notEqual(upParent, parent);
      assert.equal(flags, '01');
      assert.equal(upstream.seen.at(-1)!.headers.tracestate, 'vendor=abc');

      const [span] = await receiver.waitFor((s) => s.some((x) => x.traceId === traceId));
      assert.equal(span!.traceId, traceId);
      assert.equal(span!.parentSpanId, parent);
      assert.equal(span!.spanId, upParent);
      assert.equal(span!.kind, 2, 'SERVER');
      assert.equal(span!.serviceName, 'edge');
      assert.equal(span!.attributes['http.request.method'], 'GET');
      assert.equal(span!.attributes['http.response.status_code'], 200);
      assert.equal(span!.attributes['url.path'], '/items/7');
      assert.equal(span!.name, 'GET /items/:id');
      assert.equal(span!.attributes['http.route'], '/items/:id');
      assert.equal(span!.attributes['meshgate.route'], 'items');
      assert.equal(span!.attributes['user_agent.original'], 'trace-test');
      assert.ok(span!.endNs > span!.startNs);
      assert.ok(receiver.contentTypes.every((t) => t.startsWith('application/json')));
    } finally {
      await gw.close();
      await receiver.close();
      await upstream.close();
    }
  });

  it('accepts B3, and puts the trace id in a problem+json body', async () => {
    const receiver = await startOtlpReceiver();
    const upstream = await startUpstream();
    const gw = await startGateway({
      listeners: [{ name: 'main' }],
      observability: { tracing: { endpoint: receiver.url, samplingRatio: 1 } },
      services: [{ name: 'api', endpoints: [{ url: upstream.url }] }],
      routes: [{ name: 'api', match: { path: '/api/*' }, service: 'api' }],
    });
    try {
      const traceId = '80f198ee56343ba864fe8b2a57d3eff7';
      const ok = await send(`${gw.url()}/api/x`, { b3: `${traceId}-e457b5a2e4d86bd1-1` });
      assert.equal(ok.status, 200);
      assert.equal((upstream.seen.at(-1)!.headers.traceparent as string).split('-')[1], traceId);

      const missing = await send(`${gw.url()}/elsewhere`, { b3: `${traceId}-e457b5a2e4d86bd1-1` });
      assert.equal(missing.status, 404);
      const problem = JSON.parse(missing.body) as { traceId?: string; requestId?: string; code?: string };
      assert.equal(problem.traceId, traceId);
      assert.equal(problem.code, 'MG_ROUTE_NOT_FOUND');
      assert.equal(problem.requestId, missing.headers['x-request-id']);

      const spans = await receiver.waitFor((s) => s.filter((x) => x.traceId === traceId).length >= 2);
      const statuses = spans.filter((x) => x.traceId === traceId).map((x) => x.attributes['http.response.status_code']);
      assert.deepEqual(statuses.sort(), [200, 404]);
    } finally {
      await gw.close();
      await receiver.close();
      await upstream.close();
    }
  });

  it('with samplingRatio 0 a new trace is not recorded, but is still propagated', async () => {
    const receiver = await startOtlpReceiver();
    const upstream = await startUpstream();
    const gw = await startGateway({
      listeners: [{ name: 'main' }],
      observability: { tracing: { endpoint: receiver.url, samplingRatio: 0 } },
      services: [{ name: 'api', endpoints: [{ url: upstream.url }] }],
      routes: [{ name: 'api', service: 'api' }],
    });
    try {
      for (let i = 0; i < 10; i++) await send(`${gw.url()}/n`);
      const traceparent = upstream.seen.at(-1)!.headers.traceparent as string;
      assert.match(traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
      // A marker: a request whose client sampled its trace is recorded (the parent decides). Spans are
      // exported in the order they end, so once the marker's arrives, any of the 10 before it would have.
      const marker = '4bf92f3577b34da6a3ce929d0e0e4736';
      await send(`${gw.url()}/n`, { traceparent: `00-${marker}-00f067aa0ba902b7-01` });
      await receiver.waitFor((spans) => spans.some((x) => x.traceId === marker));
      assert.deepEqual(
        receiver.spans.map((x) => x.traceId),
        [marker],
        'only the sampled trace was recorded',
      );
    } finally {
      await gw.close();
      await receiver.close();
      await upstream.close();
    }
  });
});

describe('Server-Timing', () => {
  it('tells the time the proxy added apart from the upstream’s', async () => {
    const upstream = await startUpstream((_req, res) => {
      setTimeout(() => res.end('late'), 60);
    });
    const gw = await startGateway({
      listeners: [{ name: 'main' }],
      observability: { serverTiming: true },
      services: [{ name: 'api', endpoints: [{ url: upstream.url }] }],
      routes: [{ name: 'api', service: 'api' }],
    });
    try {
      const res = await send(`${gw.url()}/t`);
      const header = String(res.headers['server-timing']);
      const m = /^proxy;dur=([\d.]+);desc="gateway", upstream;dur=([\d.]+);desc="gateway"$/.exec(header);
      assert.ok(m, header);
      const proxy = Number(m[1]);
      const up = Number(m[2]);
      assert.ok(up >= 55, `upstream ${up} ms includes its 60 ms delay`);
      assert.ok(proxy < up, `proxy ${proxy} ms is the gateway's own share`);
    } finally {
      await gw.close();
      await upstream.close();
    }
  });
});
