/**
 * `meshgate explain` as a user runs it, on real processes (127.0.0.1): a control plane whose model
 * samples every request's decision trail, a `meshgate gateway --control-plane`, two `meshgate
 * sidecar`s of property-service (labels version=v1 and v2) each beside a small app in this process.
 *
 * Checked, on the story text and on the JSON, across the gateway and the sidecar each request crossed:
 * (a) a request refused by a rate limit after key-auth identified its consumer (429 at the gateway,
 *     the counters and what remained, no sidecar hop); (b) a request the 90/10 weighted draw sent to
 *     v2 (the roll, the weights, the v2 sidecar's hop); (c) a request whose first try failed and was
 *     retried (the failed try, the backoff, the second try's 200). Also: the same story from the
 *     gateway's own admin API (`--admin`), and exit 3 for an id no proxy has.
 *
 * Then, with mutual TLS and nothing sampled: an identified consumer's `X-Meshgate-Explain: 1` gets
 * `X-Meshgate-Explain-Id` and a trail at the gateway (asked) and at the sidecar (told by the gateway,
 * its caller verified); an anonymous client's gets neither, at any hop; no app ever sees the header.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import type { ExplainResult } from '../../src/api/explain.ts';
import { eventually } from '../helpers/mesh.ts';
import { MeshProcesses } from '../helpers/mesh-processes.ts';
import { runMeshgate } from '../helpers/process.ts';

const KEY = 'explain-e2e-key-0123456789abcdef';

const MODEL = `listeners:
  - { name: public, port: 0, address: 127.0.0.1 }
observability:
  explain: { size: 512, sampleRate: 1 }
consumers:
  - { name: mobile-app, groups: [mobile], credentials: [{ type: api-key, key: ${KEY} }] }
services:
  - name: property-service
    endpoints: []
    subsets: { v1: { version: v1 }, v2: { version: v2 } }
routes:
  - name: limited
    match: { path: /limited/* }
    destinations: [{ service: property-service, subset: v1, weight: 100 }]
    plugins:
      - { name: key-auth }
      - { name: rate-limit, config: { limits: [{ requests: 1, window: 1m }] } }
  - name: flaky
    match: { path: /flaky/* }
    destinations: [{ service: property-service, subset: v1, weight: 100 }]
    retries: { attempts: 2, on: [5xx], backoff: { base: 10ms, max: 10ms } }
  - name: property-api
    match: { path: /api/*, methods: [GET] }
    destinations:
      - { service: property-service, subset: v1, weight: 90 }
      - { service: property-service, subset: v2, weight: 10 }
`;

describe('meshgate explain across a gateway and sidecars', { timeout: 180_000 }, () => {
  let mesh: MeshProcesses;
  let cpUrl: string;
  let gatewayUrl: string;
  let gatewayAdmin: string;
  /** Request ids whose first /flaky request each app has failed already. */
  const failedOnce = new Set<string>();

  const sidecar = async (version: string) => {
    const app = await mesh.app((req, res) => {
      const id = String(req.headers['x-request-id'] ?? '');
      if (req.url?.startsWith('/flaky/') && !failedOnce.has(id)) {
        failedOnce.add(id);
        res.writeHead(503, { 'content-type': 'text/plain' });
        return res.end('first try fails');
      }
      const body = JSON.stringify({ version, url: req.url, explain: req.headers['x-meshgate-explain'] ?? null });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    await mesh.sidecar({ service: 'property-service', app, id: `property-${version}`, labels: `version=${version}` });
  };

  const explain = async (id: string, ...extra: string[]) => {
    const text = await runMeshgate(['explain', id, '--control-plane', cpUrl, ...extra]);
    return text;
  };
  const explainJson = async (id: string): Promise<ExplainResult> => {
    const run = await explain(id, '--json');
    assert.equal(run.code, 0, run.stderr);
    return JSON.parse(run.stdout) as ExplainResult;
  };

  before(async () => {
    mesh = await MeshProcesses.start(MODEL);
    cpUrl = mesh.cpUrl;
    const [gateway] = await Promise.all([mesh.gateway(), sidecar('v1'), sidecar('v2')]);
    gatewayUrl = gateway.url;
    gatewayAdmin = gateway.admin;
    // Both instances in the gateway's config before any request is drawn.
    await eventually(
      async () => {
        const res = await request(`${gatewayAdmin}/services`);
        const view = (await res.body.json()) as { services: { name: string; endpoints: unknown[] }[] };
        return view.services.find((s) => s.name === 'property-service')?.endpoints.length === 2;
      },
      20_000,
      'both property-service instances at the gateway',
    );
  });

  after(() => mesh.stop());

  it('(a) a request refused by the rate limit: key-auth identified the consumer, rate-limit answered 429', async () => {
    const headers = { 'x-api-key': KEY };
    const first = await request(`${gatewayUrl}/limited/1`, { headers: { ...headers, 'x-request-id': 'rl-1' } });
    await first.body.dump();
    assert.equal(first.statusCode, 200);
    const second = await request(`${gatewayUrl}/limited/1`, { headers: { ...headers, 'x-request-id': 'rl-2' } });
    await second.body.dump();
    assert.equal(second.statusCode, 429);

    const result = await explainJson('rl-2');
    assert.deepEqual(
      result.hops.map((h) => h.kind),
      ['gateway'],
      'refused at the gateway: no sidecar saw it',
    );
    const t = result.hops[0]!.trail;
    assert.equal(t.route, 'limited');
    assert.deepEqual(
      t.plugins.map((p) => [p.name, p.outcome, p.consumer ?? null, p.status ?? null, p.code ?? null]),
      [
        ['key-auth', 'continue', 'mobile-app', null, null],
        ['rate-limit', 'reply', null, 429, 'MG_RATE_LIMITED'],
      ],
    );
    const facts = t.plugins[1]!.facts as {
      allowed: boolean;
      by: string;
      windows: { limit: number; remaining: number }[];
    };
    assert.equal(facts.allowed, false);
    assert.equal(facts.by, 'consumer');
    assert.deepEqual(
      facts.windows.map((w) => [w.limit, w.remaining]),
      [[1, 0]],
    );
    assert.equal(t.tries.length, 0);
    assert.deepEqual([t.outcome.status, t.outcome.code], [429, 'MG_RATE_LIMITED']);

    const story = await explain('rl-2');
    assert.equal(story.code, 0, story.stderr);
    const lines = story.stdout.split('\n');
    assert.match(lines[0]!, /^request rl-2: 1 hop recorded/);
    assert.match(story.stdout, /^1\. gateway \(gateway\): GET [^ ]+\/limited\/1 → 429 MG_RATE_LIMITED in /m);
    assert.match(story.stdout, /^ {2}route limited: chosen$/m);
    assert.match(story.stdout, /^ {2}route flaky: not matched: path \/limited\/1 does not match \/flaky\/\*$/m);
    assert.match(
      story.stdout,
      /^ {2}plugin key-auth \(authenticate, route\): consumer mobile-app identified: passed$/m,
    );
    assert.match(
      story.stdout,
      /^ {2}plugin rate-limit \(limit, route\): answered 429 MG_RATE_LIMITED \(rate limit reached; retry in \d+ s\) — by consumer, 1 per 1m: 0 remaining$/m,
    );
    assert.match(story.stdout, /^ {2}answer: 429 MG_RATE_LIMITED in /m);
    // In order: routes, then plugins, then the answer.
    const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
    assert.ok(at(/route limited: chosen/) < at(/plugin key-auth/));
    assert.ok(at(/plugin key-auth/) < at(/plugin rate-limit/));
    assert.ok(at(/plugin rate-limit/) < at(/answer: 429/));
  });

  it('(b) a request the 90/10 weighted draw sent to v2: the roll and the weights, then the v2 sidecar', async () => {
    let id: string | undefined;
    for (let i = 0; i < 300 && id === undefined; i++) {
      const res = await request(`${gatewayUrl}/api/homes/1`, { headers: { 'x-request-id': `draw-${i}` } });
      const body = (await res.body.json()) as { version: string; explain: string | null };
      assert.equal(res.statusCode, 200);
      assert.equal(body.explain, null, 'X-Meshgate-Explain never reaches an app');
      if (body.version === 'v2') id = `draw-${i}`;
    }
    assert.ok(id, 'one of 300 requests landed on v2');
    const result = await explainJson(id);
    assert.deepEqual(
      result.hops.map((h) => [h.kind, h.proxy]),
      [
        ['gateway', 'gateway'],
        ['sidecar', 'property-v2'],
      ],
    );
    const gw = result.hops[0]!.trail;
    assert.equal(gw.route, 'property-api');
    assert.ok(gw.draw);
    assert.deepEqual(
      gw.draw.destinations.map((d) => [d.subset, d.weight]),
      [
        ['v1', 90],
        ['v2', 10],
      ],
    );
    assert.equal(gw.draw.chosen, 1);
    assert.ok(gw.draw.roll !== null && gw.draw.roll >= 90 && gw.draw.roll < 100, `roll ${gw.draw.roll}`);
    assert.equal(gw.tries.length, 1);
    assert.equal(gw.tries[0]!.outcome, 'status 200');
    const sc = result.hops[1]!.trail;
    assert.equal(sc.outcome.status, 200);
    assert.equal(sc.tries.length, 1);

    const story = await explain(id);
    assert.equal(story.code, 0, story.stderr);
    assert.match(story.stdout, new RegExp(`^request ${id}: 2 hops recorded`, 'm'));
    assert.match(
      story.stdout,
      /^ {2}weighted draw: roll (9\d(\.\d+)?) of 100 → property-service subset v2 \(weights v1 90, v2 10\)$/m,
    );
    assert.match(story.stdout, /^2\. sidecar of property-service \(property-v2\): GET [^ ]+\/api\/homes\/1 → 200 in /m);
    const gatewayPart = story.stdout.slice(story.stdout.indexOf('1. gateway'), story.stdout.indexOf('2. sidecar'));
    assert.match(gatewayPart, /route property-api: chosen/);
    assert.match(gatewayPart, /route limited: not matched: path \/api\/homes\/1 does not match \/limited\/\*/);
    assert.match(gatewayPart, /try 1: 127\.0\.0\.1:\d+ at \+[\d.]+ms → status 200 after [\d.]+ms/);
    const sidecarPart = story.stdout.slice(story.stdout.indexOf('2. sidecar'));
    assert.match(sidecarPart, /try 1: 127\.0\.0\.1:\d+ at \+[\d.]+ms → status 200/);
    assert.match(sidecarPart, /^ {2}answer: 200 in /m);
  });

  it('(c) a request retried after its first try failed: the failed try, the backoff, the retry', async () => {
    const res = await request(`${gatewayUrl}/flaky/1`, { headers: { 'x-request-id': 'flaky-1' } });
    const body = (await res.body.json()) as { version: string };
    assert.equal(res.statusCode, 200, JSON.stringify(body));
    const result = await explainJson('flaky-1');
    assert.deepEqual(
      result.hops.map((h) => [h.kind, h.proxy, h.trail.outcome.status]),
      [
        ['gateway', 'gateway', 200],
        ['sidecar', 'property-v1', 503],
        ['sidecar', 'property-v1', 200],
      ],
    );
    const gw = result.hops[0]!.trail;
    assert.deepEqual(
      gw.tries.map((t) => [t.n, t.outcome, t.retried]),
      [
        [1, 'status 503', true],
        [2, 'status 200', false],
      ],
    );
    assert.equal(gw.tries[0]!.retryDelayMs !== null && gw.tries[0]!.retryDelayMs >= 0, true);
    assert.deepEqual(gw.retries?.on, ['5xx']);

    const story = await explain('flaky-1');
    assert.equal(story.code, 0, story.stderr);
    assert.match(story.stdout, /^request flaky-1: 3 hops recorded/m);
    assert.match(
      story.stdout,
      /^ {2}try 1: 127\.0\.0\.1:\d+ at \+[\d.]+ms → status 503 after [\d.]+ms; retried after [\d.]+ms backoff \[breaker \d+\/\d+ requests/m,
    );
    assert.match(story.stdout, /^ {2}try 2: 127\.0\.0\.1:\d+ at \+[\d.]+ms → status 200 after [\d.]+ms \[breaker/m);
    assert.match(story.stdout, /^2\. sidecar of property-service \(property-v1\): GET [^ ]+\/flaky\/1 → 503 in /m);
    assert.match(story.stdout, /^3\. sidecar of property-service \(property-v1\): GET [^ ]+\/flaky\/1 → 200 in /m);
  });

  it('a gateway’s own admin API tells its hop; an id nobody has exits 3 and says so', async () => {
    const own = await runMeshgate(['explain', 'rl-2', '--admin', gatewayAdmin]);
    assert.equal(own.code, 0, own.stderr);
    assert.match(own.stdout, /^1\. gateway \(gateway\): GET [^ ]+\/limited\/1 → 429 MG_RATE_LIMITED/m);
    const missing = await explain('no-such-request');
    assert.equal(missing.code, 3);
    assert.match(missing.stderr, /meshgate explain: .*no proxy .* has a decision trail of request no-such-request/);
    const usage = await runMeshgate(['explain']);
    assert.equal(usage.code, 2);
  });
});

const MTLS_MODEL = `mesh: { trustDomain: example.org, mtls: { mode: STRICT } }
listeners:
  - { name: public, port: 0, address: 127.0.0.1 }
observability:
  explain: { size: 64, sampleRate: 0 }
consumers:
  - { name: mobile-app, credentials: [{ type: api-key, key: ${KEY} }] }
services:
  - { name: property-service, endpoints: [] }
routes:
  - { name: keyed, match: { path: /api/* }, service: property-service, plugins: [{ name: key-auth }] }
  - { name: open, match: { path: /open/* }, service: property-service }
`;

describe('meshgate explain of a request that asked, over mutual TLS (nothing sampled)', { timeout: 180_000 }, () => {
  let mesh: MeshProcesses;
  let cpUrl: string;
  let gatewayUrl: string;
  /** X-Meshgate-Explain as the app saw it, per request id. */
  const seenByApp = new Map<string, string | null>();

  before(async () => {
    mesh = await MeshProcesses.start(MTLS_MODEL);
    cpUrl = mesh.cpUrl;
    const app = await mesh.app((req, res) => {
      const header = req.headers['x-meshgate-explain'];
      seenByApp.set(String(req.headers['x-request-id']), typeof header === 'string' ? header : null);
      res.end('ok');
    });
    const [gateway] = await Promise.all([
      mesh.gateway(),
      mesh.sidecar({ service: 'property-service', app, id: 'property-1' }),
    ]);
    gatewayUrl = gateway.url;
    await eventually(
      async () => {
        const res = await request(`${gatewayUrl}/open/ping`);
        await res.body.dump();
        return res.statusCode === 200;
      },
      20_000,
      'the gateway reaches property-service over mutual TLS',
    );
  });

  after(() => mesh.stop());

  it('an identified consumer asks: X-Meshgate-Explain-Id, and both hops recorded (the sidecar told by the gateway)', async () => {
    const res = await request(`${gatewayUrl}/api/homes/7`, {
      headers: { 'x-api-key': KEY, 'x-meshgate-explain': '1', 'x-request-id': 'ask-1' },
    });
    await res.body.dump();
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['x-meshgate-explain-id'], 'ask-1');
    assert.equal(seenByApp.get('ask-1'), null, 'the app never sees X-Meshgate-Explain');
    const run = await runMeshgate(['explain', 'ask-1', '--control-plane', cpUrl, '--json']);
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout) as ExplainResult;
    assert.deepEqual(
      result.hops.map((h) => [h.kind, h.trail.reason]),
      [
        ['gateway', 'asked'],
        ['sidecar', 'propagated'],
      ],
    );
    assert.equal(result.hops[0]!.trail.consumer?.name, 'mobile-app');
    assert.equal(result.hops[1]!.trail.peer, 'spiffe://example.org/ns/default/sa/gateway');
    const story = await runMeshgate(['explain', 'ask-1', '--control-plane', cpUrl]);
    assert.match(story.stdout, /^ {2}request ask-1, recorded: asked;/m);
    assert.match(story.stdout, /^ {2}request ask-1, recorded: propagated;/m);
    assert.match(story.stdout, /^ {2}caller verified as spiffe:\/\/example\.org\/ns\/default\/sa\/gateway$/m);
  });

  it('an anonymous client asks: no header back, nothing recorded anywhere', async () => {
    const res = await request(`${gatewayUrl}/open/homes/7`, {
      headers: { 'x-meshgate-explain': '1', 'x-request-id': 'anon-ask-1' },
    });
    await res.body.dump();
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['x-meshgate-explain-id'], undefined);
    assert.equal(seenByApp.get('anon-ask-1'), null);
    const run = await runMeshgate(['explain', 'anon-ask-1', '--control-plane', cpUrl]);
    assert.equal(run.code, 3);
    assert.match(run.stderr, /no proxy of 2 answering \(of 2 asked\) has a decision trail of request anon-ask-1/);
  });
});
