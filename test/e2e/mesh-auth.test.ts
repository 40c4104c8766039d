/**
 * Proxies and tools authenticate to the control plane, as a user runs them: a `meshgate control-plane`
 * process with join and operator token files, a real `meshgate sidecar` with a service-scoped token,
 * and raw HTTP requests standing in for an attacker without one.
 *
 * Checked: without a token, registering, subscribing, reading a proxy's config, applying config and
 * getting a certificate are refused (401 problem+json) and change nothing; a service-scoped token
 * cannot act for another service; with the right token a sidecar gets an SVID for its service's
 * SPIFFE ID and renews it (proven by its current certificate), and the trust bundle arrives with the
 * push; tools need the operator token; an open control plane refuses a non-loopback address; no
 * token ever appears in any process's output.
 */
import assert from 'node:assert/strict';
import { randomBytes, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import type { ProxyIdentity, WelcomeEvent } from '../../src/api/mesh.ts';
import { buildCsr, generateWorkloadKeyPair } from '../../src/proxy/identity/csr.ts';
import { eventually } from '../helpers/mesh.ts';
import { MeshgateProcess, runMeshgate } from '../helpers/process.ts';

const token = () => randomBytes(24).toString('hex');
const TOKENS = { photo: token(), search: token(), mesh: token(), operator: token() };

interface Reply {
  status: number;
  contentType: string;
  body: Record<string, unknown>;
}

async function call(url: string, method: string, body?: unknown, bearerToken?: string): Promise<Reply> {
  const res = await request(url, {
    method: method as 'GET',
    headers: {
      'content-type': 'application/json',
      ...(bearerToken ? { authorization: `Bearer ${bearerToken}` } : {}),
    },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await res.body.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(text);
  } catch {}
  return { status: res.statusCode, contentType: String(res.headers['content-type']), body: parsed };
}

/** Opens `POST /stream` and waits for the welcome (or the refusal). The stream stays open until `close`. */
function openStream(
  url: string,
  proxy: ProxyIdentity,
  bearerToken?: string,
): Promise<{ status: number; welcome?: WelcomeEvent; body: string; close(): void }> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify({ proxy, version: null });
    const req = httpRequest(`${url}/stream`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(payload),
        ...(bearerToken ? { authorization: `Bearer ${bearerToken}` } : {}),
      },
    });
    req.on('error', reject);
    req.on('response', (res: IncomingMessage) => {
      let text = '';
      res.setEncoding('utf8');
      const close = () => req.destroy();
      res.on('data', (chunk: string) => {
        text += chunk;
        const m = /event: welcome\ndata: (.*)\n\n/.exec(text);
        if (res.statusCode === 200 && m) resolve({ status: 200, welcome: JSON.parse(m[1]!), body: text, close });
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, close }));
    });
    req.end(payload);
  });
}

function assertUnauthorized(r: Reply, what: string) {
  assert.equal(r.status, 401, `${what}: ${JSON.stringify(r.body)}`);
  assert.match(r.contentType, /^application\/problem\+json/, what);
  assert.equal(r.body.code, 'MG_UNAUTHORIZED', what);
}

describe('mesh authentication: tokens, certificates, tools', { timeout: 120_000 }, () => {
  let dir: string;
  let cp: MeshgateProcess;
  let url: string;
  let app: Server;
  let appUrl: string;
  let sidecar: MeshgateProcess;
  let sidecarAdmin: number;
  const processes: MeshgateProcess[] = [];
  const tools: { stdout: string; stderr: string }[] = [];
  const meshgate = async (args: string[], env: Record<string, string> = {}) => {
    const run = await runMeshgate(args, env);
    tools.push(run);
    return run;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshgate-auth-'));
    writeFileSync(
      join(dir, 'mesh.yaml'),
      'services:\n  - name: photo-service\n    endpoints: []\n  - name: search-service\n    endpoints: []\n',
    );
    const joinFile = join(dir, 'join-tokens');
    writeFileSync(
      joinFile,
      `# join tokens\nservice photo-service ${TOKENS.photo}\nservice search-service ${TOKENS.search}\nmesh ${TOKENS.mesh}\n`,
      { mode: 0o600 },
    );
    const operatorFile = join(dir, 'operator-tokens');
    writeFileSync(operatorFile, `${TOKENS.operator}\n`, { mode: 0o600 });
    const photoFile = join(dir, 'photo-token');
    writeFileSync(photoFile, `${TOKENS.photo}\n`, { mode: 0o600 });
    chmodSync(joinFile, 0o600);

    cp = new MeshgateProcess([
      'control-plane',
      '--config',
      join(dir, 'mesh.yaml'),
      '--port',
      '0',
      '--warmup',
      '0',
      '--join-token-file',
      joinFile,
      '--operator-token-file',
      operatorFile,
      '--state-dir',
      join(dir, 'state'),
      '--svid-lifetime',
      '4s',
    ]);
    processes.push(cp);
    const started = await cp.waitFor('control plane started');
    url = `http://127.0.0.1:${started.port}`;

    app = createServer((_req, res) => res.end('ok'));
    app.listen(0, '127.0.0.1');
    await once(app, 'listening');
    appUrl = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
    sidecar = new MeshgateProcess([
      'sidecar',
      '--service',
      'photo-service',
      '--app',
      appUrl,
      '--control-plane',
      url,
      '--id',
      'photo-1',
      '--token-file',
      photoFile,
      '--inbound-port',
      '0',
      '--outbound-port',
      '0',
      '--admin-port',
      '0',
      '--drain',
      '1s',
    ]);
    processes.push(sidecar);
    sidecarAdmin = (await sidecar.waitFor('sidecar started', 20_000)).admin as number;
    await sidecar.waitFor('instance registered');
  });

  after(async () => {
    for (const p of processes.reverse()) await p.stop();
    app?.closeAllConnections();
    app?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses every unauthenticated write and read (401 problem+json) and changes nothing', async () => {
    const before = await call(`${url}/config`, 'GET', undefined, TOKENS.operator);
    assert.equal(before.status, 200);
    for (const bad of [undefined, 'not-a-token-at-all-but-long-enough', TOKENS.photo.slice(0, -1)]) {
      assertUnauthorized(
        await call(
          `${url}/instances/intruder`,
          'PUT',
          { service: 'photo-service', address: '10.9.9.9', port: 80 },
          bad,
        ),
        'register',
      );
      assertUnauthorized(await call(`${url}/proxies/photo-1`, 'GET', undefined, bad), 'read a proxy config');
      assertUnauthorized(await call(`${url}/config`, 'PUT', 'services: []\n', bad), 'apply config');
      assertUnauthorized(await call(`${url}/config`, 'GET', undefined, bad), 'read the model');
      assertUnauthorized(await call(`${url}/certificates`, 'POST', { proxy: 'photo-1', csr: 'x' }, bad), 'certificate');
      assertUnauthorized(
        await call(
          `${url}/ack`,
          'POST',
          { proxy: 'photo-1', stream: 's', nonce: 'n', version: 'v', status: 'ack' },
          bad,
        ),
        'ack',
      );
      const stream = await openStream(url, { id: 'intruder', kind: 'sidecar', service: 'photo-service' }, bad);
      assert.equal(stream.status, 401);
      assert.match(stream.body, /MG_UNAUTHORIZED/);
    }
    // The 401 carries the challenge, and health checks stay open.
    const res = await request(`${url}/proxies`);
    assert.equal(res.headers['www-authenticate'], 'Bearer realm="meshgate-control-plane"');
    await res.body.dump();
    assert.equal((await call(`${url}/live`, 'GET')).status, 200);

    const instances = await call(`${url}/instances`, 'GET', undefined, TOKENS.operator);
    assert.deepEqual(
      (instances.body.instances as { id: string }[]).map((i) => i.id),
      ['photo-1'],
    );
    const afterModel = await call(`${url}/config`, 'GET', undefined, TOKENS.operator);
    assert.equal(afterModel.body.version, before.body.version);
    // A join token is not an operator token.
    assert.equal((await call(`${url}/config`, 'PUT', 'services: []\n', TOKENS.photo)).status, 403);
    assert.equal((await call(`${url}/proxies`, 'GET', undefined, TOKENS.mesh)).status, 403);
  });

  it('a service-scoped token acts only for its service', async () => {
    const other = await call(
      `${url}/instances/search-x`,
      'PUT',
      { service: 'search-service', address: '127.0.0.1', port: 9 },
      TOKENS.photo,
    );
    assert.equal(other.status, 403);
    assert.equal(other.body.code, 'MG_FORBIDDEN');
    // Nor may it take over (replace, heartbeat, remove) an instance of its own service's id space held by another.
    const own = await call(
      `${url}/instances/photo-probe`,
      'PUT',
      { service: 'photo-service', address: '127.0.0.1', port: 9, ttlMs: 1000 },
      TOKENS.photo,
    );
    assert.equal(own.status, 200);
    assert.equal((await call(`${url}/instances/photo-1`, 'DELETE', undefined, TOKENS.search)).status, 403);

    const asSearch = await openStream(
      url,
      { id: 'search-by-photo', kind: 'sidecar', service: 'search-service' },
      TOKENS.photo,
    );
    assert.equal(asSearch.status, 403);

    // A legitimate search-service proxy; the photo token may neither read its config, answer for it, nor get its certificate.
    const search = await openStream(url, { id: 'search-1', kind: 'sidecar', service: 'search-service' }, TOKENS.search);
    try {
      assert.equal(search.status, 200);
      assert.equal(search.welcome?.identity?.spiffeId, 'spiffe://cluster.local/ns/default/sa/search-service');
      assert.equal((await call(`${url}/proxies/search-1`, 'GET', undefined, TOKENS.photo)).status, 403);
      assert.equal((await call(`${url}/proxies/search-1`, 'GET', undefined, TOKENS.search)).status, 200);
      const ack = await call(
        `${url}/ack`,
        'POST',
        { proxy: 'search-1', stream: search.welcome!.stream, nonce: 'n', version: 'v', status: 'ack' },
        TOKENS.photo,
      );
      assert.equal(ack.status, 403);
      const csr = buildCsr(generateWorkloadKeyPair(), 'evil');
      const stolen = await call(`${url}/certificates`, 'POST', { proxy: 'search-1', csr }, TOKENS.photo);
      assert.equal(stolen.status, 403);
      assert.equal(stolen.body.code, 'MG_FORBIDDEN');

      // The right token gets the right identity, whatever the CSR asks for.
      const issued = await call(`${url}/certificates`, 'POST', { proxy: 'search-1', csr }, TOKENS.search);
      assert.equal(issued.status, 200, JSON.stringify(issued.body));
      const cert = new X509Certificate(issued.body.certChainPem as string);
      assert.equal(cert.subjectAltName, 'URI:spiffe://cluster.local/ns/default/sa/search-service');
      const root = new X509Certificate(issued.body.bundlePem as string);
      assert.ok(cert.verify(root.publicKey));
    } finally {
      search.close();
    }
  });

  it('the sidecar holds an SVID for its service, renews it by its certificate, and has the pushed bundle', async () => {
    const admin = `http://127.0.0.1:${sidecarAdmin}`;
    const first = await eventually(
      async () => {
        const r = await call(`${admin}/identity`, 'GET');
        return r.body.state === 'ready' ? r.body : undefined;
      },
      10_000,
      'an identity',
    );
    assert.equal(first.spiffeId, 'spiffe://cluster.local/ns/default/sa/photo-service');
    assert.equal(JSON.stringify(first).includes('PRIVATE KEY'), false);
    const bundle = await call(`${url}/trust-bundle`, 'GET');
    const digest = (bundle.body as { digest: string }).digest;
    assert.equal((first.trustBundle as { digest: string }).digest, digest, 'the bundle came with the push');
    const roots = (bundle.body as { roots: { fingerprint256: string }[] }).roots;
    assert.deepEqual(
      (first.trustBundle as { roots: { fingerprint256: string }[] }).roots.map((r) => r.fingerprint256),
      roots.map((r) => r.fingerprint256),
    );

    // 4 s certificates renew after about 2 s, proven by the current certificate, not the token.
    const renewed = await eventually(
      async () => {
        const r = await call(`${admin}/identity`, 'GET');
        return (r.body.renewals as number) >= 1 && r.body.serial !== first.serial ? r.body : undefined;
      },
      10_000,
      'a renewal',
    );
    assert.equal(renewed.spiffeId, first.spiffeId);
    await cp.waitFor(
      (l) => l.msg === 'certificate issued' && l.proxy === 'photo-1' && l.authenticatedBy === 'certificate',
    );

    // The control plane shows what it issued: proxy-config secrets and proxy-status need the operator token.
    const env = { MESHGATE_OPERATOR_TOKEN: TOKENS.operator };
    const denied = await meshgate(['proxy-status', '--control-plane', url]);
    assert.equal(denied.code, 3);
    assert.match(denied.stderr, /MESHGATE_OPERATOR_TOKEN/);
    const status = await meshgate(['proxy-status', '--control-plane', url], env);
    assert.match(status.stdout, /CERT EXPIRES/);
    assert.match(status.stdout, /^photo-1\s+sidecar\s+photo-service\s+\S+\s+\S+\s+\S+\s+.+ago\s+in \ds\s/m);
    const secrets = await meshgate(['proxy-config', 'secrets', 'photo-1', '--control-plane', url], env);
    assert.equal(secrets.code, 0, secrets.stderr);
    assert.match(secrets.stdout, /IDENTITY\s+spiffe:\/\/cluster\.local\/ns\/default\/sa\/photo-service/);
    assert.ok(secrets.stdout.includes(roots[0]!.fingerprint256), secrets.stdout);
    const local = await meshgate(['proxy-config', 'secrets', '--admin', admin, '-o', 'json']);
    const shown = JSON.parse(local.stdout) as { spiffeId: string; serial: string };
    assert.equal(shown.spiffeId, first.spiffeId);
    assert.match(shown.serial, /^[0-9A-F]+$/);
  });

  it('a renewal proof from another key, or a stale one, is refused', async () => {
    const search = await openStream(url, { id: 'search-2', kind: 'sidecar', service: 'search-service' }, TOKENS.search);
    try {
      const keys = generateWorkloadKeyPair();
      const issued = await call(
        `${url}/certificates`,
        'POST',
        { proxy: 'search-2', csr: buildCsr(keys) },
        TOKENS.search,
      );
      const { sign } = await import('node:crypto');
      const { renewalProofPayload } = await import('../../src/api/mesh.ts');
      const csr = buildCsr(generateWorkloadKeyPair());
      const proof = (key: string, signedAt: string) => ({
        certChainPem: issued.body.certChainPem as string,
        signedAt,
        signature: sign('sha256', renewalProofPayload('search-2', signedAt, csr), key).toString('base64'),
      });
      const now = new Date().toISOString();
      const good = await call(`${url}/certificates`, 'POST', {
        proxy: 'search-2',
        csr,
        proof: proof(keys.privateKeyPem, now),
      });
      assert.equal(good.status, 200, JSON.stringify(good.body));
      const forged = await call(`${url}/certificates`, 'POST', {
        proxy: 'search-2',
        csr,
        proof: proof(generateWorkloadKeyPair().privateKeyPem, now),
      });
      assertUnauthorized(forged, 'a proof signed by another key');
      const stale = new Date(Date.now() - 10 * 60_000).toISOString();
      assertUnauthorized(
        await call(`${url}/certificates`, 'POST', { proxy: 'search-2', csr, proof: proof(keys.privateKeyPem, stale) }),
        'a stale proof',
      );
      // A search-service certificate cannot renew for a photo-service proxy.
      const cross = await call(`${url}/certificates`, 'POST', {
        proxy: 'photo-1',
        csr,
        proof: {
          ...proof(keys.privateKeyPem, now),
          signature: sign('sha256', renewalProofPayload('photo-1', now, csr), keys.privateKeyPem).toString('base64'),
        },
      });
      assert.equal(cross.status, 403);
    } finally {
      search.close();
    }
  });

  it('with no tokens the control plane runs open on loopback only, and says so', async () => {
    const refused = await meshgate(['control-plane', '--port', '0', '--address', '0.0.0.0', '--no-identities']);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /no token is configured/);
    const open = new MeshgateProcess(['control-plane', '--port', '0', '--no-identities']);
    processes.push(open);
    const warning = await open.waitFor('running open: no tokens configured; loopback only');
    assert.equal(warning.level, 'warn');
    const started = await open.waitFor('control plane started');
    assert.equal((await call(`http://127.0.0.1:${started.port}/proxies`, 'GET')).status, 200);
    await open.stop();
  });

  it('no token appears in any output', async () => {
    await sidecar.stop();
    const texts = [...processes.map((p) => p.stdout + p.stderr), ...tools.map((t) => t.stdout + t.stderr)].join('\n');
    assert.ok(texts.includes('certificate issued'), 'the logs were captured');
    for (const [name, t] of Object.entries(TOKENS)) assert.equal(texts.includes(t), false, `the ${name} token leaked`);
  });
});
