/**
 * Authorization policies over real mutual TLS: a listener verifying client certificates from a test CA,
 * callers presenting workload certificates (SPIFFE URI SANs) made with openssl, undici and node:http2
 * as clients, `/metrics` parsed as Prometheus text, the access log read from its file.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect as http2Connect } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { SignJWT } from 'jose';
import { Agent, request } from 'undici';
import { parsePrometheusText } from '../../src/testing/prometheus.ts';
import { type CertFiles, TestPki } from '../helpers/certs.ts';
import { startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/servers.ts';

const FRONTEND = 'spiffe://cluster.local/ns/default/sa/frontend';
const BILLING = 'spiffe://cluster.local/ns/default/sa/billing';
const JWT_SECRET = 'authorization-test-shared-secret-0123456789';

interface Reply {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

describe('authorization policies', () => {
  let pki: TestPki;
  let server: CertFiles;
  let agents: Record<'frontend' | 'billing' | 'anonymous', Agent>;
  let upstream: Upstream;
  let gw: TestGateway;
  let dir: string;
  let logFile: string;

  const config = (overrides: { dryRun?: boolean } = {}) => ({
    listeners: [
      {
        name: 'mtls',
        http2: true,
        // Callers without a certificate are let in by TLS, so that policies decide about them.
        tls: { certificates: [server], clientCa: pki.ca.cert, requireClientCert: false },
      },
    ],
    services: ['photos', 'reports', 'audited', 'open'].map((name) => ({ name, endpoints: [{ url: upstream.url }] })),
    consumers: [{ name: 'partner', credentials: [{ type: 'jwt', issuer: 'partner', secret: JWT_SECRET }] }],
    routes: [
      { name: 'photos', match: { path: '/photos/*' }, service: 'photos' },
      {
        name: 'reports',
        match: { path: '/reports/*' },
        service: 'reports',
        plugins: [{ name: 'jwt', config: {} }],
      },
      { name: 'audited', match: { path: '/audited/*' }, service: 'audited' },
      { name: 'open', match: { path: '/open/*' }, service: 'open' },
    ],
    authorizationPolicies: [
      {
        name: 'photos-frontend-only',
        service: 'photos',
        action: 'ALLOW',
        ...(overrides.dryRun ? { dryRun: true } : {}),
        rules: [{ from: [{ principals: ['cluster.local/ns/default/sa/frontend'] }] }],
      },
      {
        name: 'photos-no-delete',
        service: 'photos',
        action: 'DENY',
        rules: [{ from: [{ services: ['frontend'] }], to: [{ methods: ['DELETE'] }] }],
      },
      {
        name: 'photos-no-debug',
        service: 'photos',
        action: 'DENY',
        rules: [{ when: [{ key: 'request.headers[x-debug]', values: ['on'] }] }],
      },
      {
        name: 'reports-admins',
        service: 'reports',
        rules: [{ when: [{ key: 'request.auth.claims[groups]', values: ['admins'] }] }],
      },
      { name: 'audit-writes', service: 'audited', action: 'AUDIT', rules: [{ to: [{ notMethods: ['GET'] }] }] },
    ],
    observability: { accessLog: { output: logFile } },
  });

  before(async () => {
    pki = new TestPki();
    server = pki.leaf('server', ['gateway.test']);
    const frontend = pki.workload('frontend', FRONTEND);
    const billing = pki.workload('billing', BILLING);
    const agent = (client?: CertFiles) =>
      new Agent({
        connect: {
          ca: pki.caPem(),
          servername: 'gateway.test',
          ...(client ? { cert: readFileSync(client.cert), key: readFileSync(client.key) } : {}),
        },
      });
    agents = { frontend: agent(frontend), billing: agent(billing), anonymous: agent() };
    upstream = await startUpstream();
    dir = mkdtempSync(join(tmpdir(), 'meshgate-authz-'));
    logFile = join(dir, 'access.log');
    gw = await startGateway(config());
  });

  after(async () => {
    await Promise.all(Object.values(agents).map((a) => a.close()));
    await gw.close();
    await upstream.close();
    pki.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  const url = (path: string) => `${gw.url('mtls').replace('http:', 'https:')}${path}`;

  async function call(
    who: keyof typeof agents,
    path: string,
    init: { method?: string; headers?: Record<string, string> } = {},
  ): Promise<Reply> {
    const res = await request(url(path), {
      dispatcher: agents[who],
      method: (init.method ?? 'GET') as 'GET',
      headers: init.headers,
    });
    return { status: res.statusCode, body: await res.body.text(), headers: res.headers };
  }

  async function metrics() {
    const res = await request(`${gw.adminUrl}/metrics`);
    return parsePrometheusText(await res.body.text());
  }

  async function logLines(predicate: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
    const deadline = performance.now() + 5000;
    for (;;) {
      let text = '';
      try {
        text = readFileSync(logFile, 'utf8');
      } catch {}
      const found = text
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find(predicate);
      if (found) return found;
      if (performance.now() > deadline) assert.fail('no access log line matched');
      await sleep(20);
    }
  }

  function assertDenied(reply: Reply) {
    assert.equal(reply.status, 403, reply.body);
    assert.equal(reply.headers['x-meshgate-code'], 'MG_RBAC_DENIED');
    const problem = JSON.parse(reply.body) as Record<string, unknown>;
    assert.equal(problem.code, 'MG_RBAC_DENIED');
    assert.match(String(problem.requestId), /.{8,}/);
    assert.equal(reply.headers['x-request-id'] ?? problem.requestId, problem.requestId);
    // The client learns nothing of the policies: no names, no principals, no rules.
    for (const secret of ['photos-frontend-only', 'photos-no-delete', 'photos-no-debug', 'frontend', 'spiffe'])
      assert.ok(!reply.body.includes(secret), `the reply names ${secret}: ${reply.body}`);
  }

  it('an ALLOW for one caller lets that caller through and refuses every other with 403 MG_RBAC_DENIED', async () => {
    const seen = upstream.seen.length;
    const ok = await call('frontend', '/photos/1');
    assert.equal(ok.status, 200, ok.body);
    assertDenied(await call('billing', '/photos/1'));
    assertDenied(await call('anonymous', '/photos/1'));
    assert.equal(upstream.seen.length, seen + 1, 'refused requests never reach the upstream');
    const m = await metrics();
    const deny = { policy: 'photos-frontend-only', action: 'ALLOW', result: 'deny' };
    assert.equal(m.value('gateway_authz_decisions_total', deny), 2);
    assert.equal(
      m.value('gateway_authz_decisions_total', { policy: 'photos-frontend-only', action: 'ALLOW', result: 'allow' }),
      1,
    );
    assert.equal(m.value('gateway_auth_rejected_total', { route: 'photos', code: 'MG_RBAC_DENIED' }), 2);
    const line = await logLines((l) => l.route === 'photos' && l.code === 'MG_RBAC_DENIED');
    assert.deepEqual(line.authz, [deny]);
    const allowed = await logLines((l) => l.route === 'photos' && l.status === 200);
    assert.equal(allowed.principal, FRONTEND);
  });

  it('the caller identity holds over HTTP/2 too', async () => {
    const statusOver = async (who: string) => {
      const session = http2Connect(url(''), {
        ca: pki.caPem(),
        servername: 'gateway.test',
        cert: readFileSync(join(pki.dir, `${who}.pem`)),
        key: readFileSync(join(pki.dir, `${who}.key`)),
      });
      try {
        return await new Promise<number>((resolve, reject) => {
          const stream = session.request({ ':path': '/photos/h2' });
          stream.on('response', (h) => resolve(Number(h[':status'])));
          stream.on('error', reject);
          stream.resume();
        });
      } finally {
        session.close();
      }
    };
    assert.equal(await statusOver('frontend'), 200);
    assert.equal(await statusOver('billing'), 403);
  });

  it('a matching DENY beats an ALLOW', async () => {
    assert.equal((await call('frontend', '/photos/1', { method: 'PUT' })).status, 200);
    assertDenied(await call('frontend', '/photos/1', { method: 'DELETE' }));
    const line = await logLines((l) => l.route === 'photos' && l.method === 'DELETE');
    assert.deepEqual(line.authz, [{ policy: 'photos-no-delete', action: 'DENY', result: 'deny' }]);
  });

  it('when on a request header', async () => {
    assertDenied(await call('frontend', '/photos/1', { headers: { 'x-debug': 'on' } }));
    assert.equal((await call('frontend', '/photos/1', { headers: { 'x-debug': 'off' } })).status, 200);
  });

  it('when on a claim of the verified JWT', async () => {
    const token = (groups: string[]) =>
      new SignJWT({ groups })
        .setProtectedHeader({ alg: 'HS256' })
        .setIssuer('partner')
        .setExpirationTime(Math.floor(Date.now() / 1000) + 600)
        .sign(new TextEncoder().encode(JWT_SECRET));
    const admin = await call('anonymous', '/reports/q1', {
      headers: { authorization: `Bearer ${await token(['staff', 'admins'])}` },
    });
    assert.equal(admin.status, 200, admin.body);
    assertDenied(
      await call('anonymous', '/reports/q1', { headers: { authorization: `Bearer ${await token(['staff'])}` } }),
    );
    // Without a token the jwt plugin answers first: authentication runs before authorization.
    assert.equal((await call('anonymous', '/reports/q1')).status, 401);
  });

  it('AUDIT only logs and counts', async () => {
    assert.equal((await call('billing', '/audited/1', { method: 'POST' })).status, 200);
    assert.equal((await call('billing', '/audited/1')).status, 200);
    const line = await logLines((l) => l.route === 'audited' && l.method === 'POST');
    assert.deepEqual(line.authz, [{ policy: 'audit-writes', action: 'AUDIT', result: 'audit' }]);
    const get = await logLines((l) => l.route === 'audited' && l.method === 'GET');
    assert.equal(get.authz, undefined);
    const m = await metrics();
    assert.equal(
      m.value('gateway_authz_decisions_total', { policy: 'audit-writes', action: 'AUDIT', result: 'audit' }),
      1,
    );
  });

  it('only routes of services with policies carry the filter, first in the authorize phase', async () => {
    const res = await request(`${gw.adminUrl}/routes`);
    const body = (await res.body.json()) as { routes: { name: string; plugins: { name: string; phase: string }[] }[] };
    const chain = (name: string) => body.routes.find((r) => r.name === name)!.plugins.map((p) => p.name);
    assert.deepEqual(chain('open'), []);
    assert.deepEqual(chain('photos'), ['authorization-policies']);
    assert.deepEqual(chain('reports'), ['jwt', 'authorization-policies']);
    assert.equal((await call('anonymous', '/open/1')).status, 200);
  });

  it('dryRun: every caller gets through, and each would-be denial is counted and logged', async () => {
    await gw.apply(config({ dryRun: true }));
    const before = await metrics();
    const key = { policy: 'photos-frontend-only', action: 'ALLOW', result: 'dry-run-deny' };
    const start = before.value('gateway_authz_decisions_total', key) ?? 0;
    assert.equal((await call('billing', '/photos/dry')).status, 200);
    assert.equal((await call('anonymous', '/photos/dry')).status, 200);
    assert.equal((await call('frontend', '/photos/dry')).status, 200);
    const after = await metrics();
    assert.equal(after.value('gateway_authz_decisions_total', key), start + 2);
    assert.equal(
      after.value('gateway_authz_decisions_total', {
        policy: 'photos-frontend-only',
        action: 'ALLOW',
        result: 'dry-run-allow',
      }),
      1,
    );
    const line = await logLines((l) => l.path === '/photos/dry' && l.principal === BILLING);
    assert.equal(line.status, 200);
    assert.deepEqual(line.authz, [key]);
    // The DENY policies stay enforced.
    assertDenied(await call('frontend', '/photos/dry', { method: 'DELETE' }));
  });
});
