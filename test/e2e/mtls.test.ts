/**
 * Mutual TLS between proxies, end to end: identities issued by the control plane's CA to holders wired
 * straight to it, real sidecars (an outbound one calling, an inbound one in front of an app) on
 * 127.0.0.1, and the tools a user would reach for: a raw socket, undici, `openssl s_client`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { CertificateAuthority } from '../../src/control-plane/ca/ca.ts';
import { WorkloadIdentity } from '../../src/proxy/identity/workload-identity.ts';
import { closedLoopLoad } from '../helpers/load.ts';
import { eventually } from '../helpers/mesh.ts';
import { startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/servers.ts';

const dirs: string[] = [];
const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const idOf = (sa: string) => `spiffe://cluster.local/ns/default/sa/${sa}`;

async function openCa(svidLifetimeMs?: number): Promise<CertificateAuthority> {
  const stateDir = mkdtempSync(join(tmpdir(), 'meshgate-mtls-ca-'));
  dirs.push(stateDir);
  return CertificateAuthority.open({
    trustDomain: 'cluster.local',
    stateDir,
    ...(svidLifetimeMs !== undefined && { svidLifetimeMs }),
  });
}

async function identity(ca: CertificateAuthority, sa: string): Promise<WorkloadIdentity> {
  const id = await WorkloadIdentity.start({
    issue: (csrPem) => ca.issue(csrPem, { namespace: 'default', serviceAccount: sa }),
    expectedSpiffeId: idOf(sa),
  });
  cleanups.push(() => id.close());
  return id;
}

/** A sidecar's inbound half: one listener with `mode`, forwarding everything to `app`. */
async function inboundSidecar(
  id: WorkloadIdentity,
  app: Upstream,
  mode: string,
  limits?: Record<string, unknown>,
): Promise<TestGateway> {
  const gw = await startGateway(
    {
      listeners: [{ name: 'inbound', mtls: { mode }, ...(limits && { limits }) }],
      services: [{ name: 'app', endpoints: [{ url: app.url }] }],
      routes: [{ name: 'inbound', service: 'app' }],
    },
    { identity: id, role: 'mesh' },
  );
  cleanups.push(() => gw.close());
  return gw;
}

/** A sidecar's outbound half: calls `service` (whose endpoint is `target`) with mutual TLS. */
async function outboundSidecar(id: WorkloadIdentity, service: string, target: string): Promise<TestGateway> {
  const gw = await startGateway(
    {
      listeners: [{ name: 'outbound' }],
      services: [{ name: service, endpoints: [{ url: target }], mtls: { mode: 'STRICT' } }],
      routes: [{ name: `outbound.${service}`, service }],
    },
    { identity: id, role: 'mesh' },
  );
  cleanups.push(() => gw.close());
  return gw;
}

async function app(name: string): Promise<Upstream> {
  const upstream = await startUpstream(undefined, name);
  cleanups.push(() => upstream.close());
  return upstream;
}

/** What a raw socket receives for a plaintext request before the server closes it (or 5 s pass). */
function plaintextExchange(port: number): Promise<{ received: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ received, closed: false });
    }, 5_000);
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ received, closed: true });
    });
    socket.write('GET / HTTP/1.1\r\nHost: service-b\r\n\r\n');
  });
}

function run(cmd: string, args: string[], input = ''): Promise<string> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: 15_000 }, (_e, stdout, stderr) => resolve(stdout + stderr));
    child.stdin?.end(input);
  });
}

/** The `mtls_handshake_failures_total` samples of a proxy, `direction/reason` → count. */
async function handshakeFailures(gw: TestGateway): Promise<Record<string, number>> {
  const text = await (await request(`${gw.adminUrl}/metrics`)).body.text();
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^\w*mtls_handshake_failures_total\{direction="(\w+)",reason="([^"]+)"\} (\d+)/.exec(line);
    if (m) out[`${m[1]}/${m[2]}`] = Number(m[3]);
  }
  return out;
}

describe('mutual TLS between sidecars', () => {
  let ca: CertificateAuthority;
  let a: WorkloadIdentity;
  let b: WorkloadIdentity;
  let c: WorkloadIdentity;
  let appB: Upstream;
  let sidecarB: TestGateway;
  let sidecarA: TestGateway;

  before(async () => {
    ca = await openCa();
    [a, b, c] = await Promise.all([identity(ca, 'service-a'), identity(ca, 'service-b'), identity(ca, 'service-c')]);
    appB = await app('app-b');
    sidecarB = await inboundSidecar(b, appB, 'STRICT');
    sidecarA = await outboundSidecar(a, 'service-b', sidecarB.url());
  });

  it('A calls B over mutual TLS; B passes the verified caller in X-Forwarded-Client-Cert, dropping a forged one', async () => {
    const res = await request(`${sidecarA.url()}/photos/1`, {
      headers: { host: 'service-b', 'x-forwarded-client-cert': `By=${idOf('service-b')};URI=${idOf('admin')}` },
    });
    assert.equal(res.statusCode, 200, await res.body.text());
    const seen = appB.seen.at(-1)!;
    assert.equal(seen.url, '/photos/1');
    const xfcc = seen.headers['x-forwarded-client-cert'];
    assert.equal(typeof xfcc, 'string', 'exactly one X-Forwarded-Client-Cert reached the app');
    assert.match(xfcc as string, /^By=spiffe:\/\/cluster\.local\/ns\/default\/sa\/service-b;Hash=[0-9a-f]{64};URI=/);
    assert.ok((xfcc as string).endsWith(`;URI=${idOf('service-a')}`), xfcc as string);
    assert.equal(seen.rawHeaders.filter((h) => h.toLowerCase() === 'x-forwarded-client-cert').length, 1);
    // The request context of B carries the verified caller for authorization.
    assert.equal(sidecarB.ended.at(-1)?.peerPrincipal, idOf('service-a'));
    // Each side counted its completed handshake.
    const handshakes = async (gw: TestGateway, direction: string) => {
      const text = await (await request(`${gw.adminUrl}/metrics`)).body.text();
      const m = new RegExp(`^\\w*mtls_handshakes_total\\{direction="${direction}"\\} (\\d+)`, 'm').exec(text);
      return Number(m?.[1] ?? 0);
    };
    assert.ok((await handshakes(sidecarA, 'outbound')) >= 1);
    assert.ok((await handshakes(sidecarB, 'inbound')) >= 1);
  });

  it('a plaintext client on the STRICT inbound port gets no HTTP response, and the refusal is counted', async () => {
    const before = appB.seen.length;
    const { received, closed } = await plaintextExchange(Number(new URL(sidecarB.url()).port));
    assert.equal(closed, true, 'the sidecar closed the connection');
    assert.doesNotMatch(received, /HTTP\//, 'no HTTP response');
    assert.equal(appB.seen.length, before);
    const failures = await eventually(async () => {
      const f = await handshakeFailures(sidecarB);
      return Object.keys(f).some((k) => k.startsWith('inbound/')) && f;
    });
    assert.ok(
      Object.entries(failures).some(([k, n]) => k.startsWith('inbound/') && n >= 1),
      JSON.stringify(failures),
    );
  });

  it('openssl s_client sees the sidecar’s SPIFFE ID, with and without a client certificate', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshgate-mtls-client-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'key.pem'), a.current.keyPem, { mode: 0o600 });
    writeFileSync(join(dir, 'cert.pem'), a.current.certChainPem);
    writeFileSync(join(dir, 'bundle.pem'), a.current.bundlePem);
    const port = new URL(sidecarB.url()).port;
    for (const extra of [[], ['-cert', join(dir, 'cert.pem'), '-key', join(dir, 'key.pem')]]) {
      const out = await run('openssl', [
        's_client',
        '-connect',
        `127.0.0.1:${port}`,
        '-showcerts',
        '-CAfile',
        join(dir, 'bundle.pem'),
        ...extra,
      ]);
      assert.match(out, /Verify return code: 0 \(ok\)/, out.slice(0, 2000));
      const leaf = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(out)?.[0];
      assert.ok(leaf, 'the server sent its certificate');
      const text = await run('openssl', ['x509', '-noout', '-ext', 'subjectAltName'], leaf);
      assert.match(text, /URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/service-b/);
    }
  });

  it('the caller’s sidecar refuses a server with a mesh certificate for another service', async () => {
    const appC = await app('app-c');
    const sidecarC = await inboundSidecar(c, appC, 'STRICT');
    // A's config says service-b lives where C answers: C's certificate is from the same CA, for service-c.
    const misrouted = await outboundSidecar(a, 'service-b', sidecarC.url());
    const res = await request(`${misrouted.url()}/x`, { headers: { host: 'service-b' } });
    const body = (await res.body.json()) as { code: string; detail: string };
    assert.equal(res.statusCode, 502);
    assert.equal(body.code, 'MG_UPSTREAM_IDENTITY_MISMATCH');
    assert.match(body.detail, /service-c is not one of spiffe:\/\/cluster\.local\/ns\/default\/sa\/service-b/);
    assert.equal(appC.seen.length, 0, 'nothing reached the wrong service');
    const failures = await handshakeFailures(misrouted);
    assert.ok((failures['outbound/identity-mismatch'] ?? 0) >= 1, JSON.stringify(failures));
  });

  it('a client certificate from a foreign CA is refused by the inbound sidecar', async () => {
    const foreign = await openCa();
    const intruder = await identity(foreign, 'service-a');
    const before = appB.seen.length;
    // The intruder trusts the mesh's root (it is no secret): only B's check of its certificate stands in the way.
    const trusting = { ...intruder.current, bundlePem: b.current.bundlePem };
    const intruderSidecar = await outboundSidecar(
      {
        spiffeId: intruder.spiffeId,
        secureContextOptions: () => ({ key: trusting.keyPem, cert: trusting.certChainPem, ca: trusting.bundlePem }),
        on: () => undefined,
        off: () => undefined,
      } as unknown as WorkloadIdentity,
      'service-b',
      sidecarB.url(),
    );
    const res = await request(`${intruderSidecar.url()}/x`, { headers: { host: 'service-b' } });
    await res.body.dump();
    assert.equal(res.statusCode, 502);
    assert.equal(appB.seen.length, before, JSON.stringify(appB.seen.slice(before)));
    await eventually(
      async () => {
        const f = await handshakeFailures(sidecarB);
        return Object.keys(f).some((k) => /^inbound\/.*(ISSUER|CERT|VERIFY)/.test(k));
      },
      5_000,
      'an inbound refusal for the foreign certificate',
    );
  });
});

describe('PERMISSIVE: mutual TLS and plaintext on one port', () => {
  it('serves both, and only the mutual-TLS caller is vouched for', async () => {
    const ca = await openCa();
    const [a, b] = await Promise.all([identity(ca, 'service-a'), identity(ca, 'service-b')]);
    const appB = await app('app-b');
    const sidecarB = await inboundSidecar(b, appB, 'PERMISSIVE');
    const sidecarA = await outboundSidecar(a, 'service-b', sidecarB.url());

    const plain = await request(`${sidecarB.url()}/plain`, {
      headers: { 'x-forwarded-client-cert': `URI=${idOf('admin')}` },
    });
    assert.equal(plain.statusCode, 200, await plain.body.text());
    assert.equal(appB.seen.at(-1)?.headers['x-forwarded-client-cert'], undefined, 'a forged XFCC is removed');
    assert.equal(sidecarB.ended.at(-1)?.peerPrincipal, null);

    const mtls = await request(`${sidecarA.url()}/mtls`, { headers: { host: 'service-b' } });
    assert.equal(mtls.statusCode, 200, await mtls.body.text());
    assert.equal(appB.seen.at(-1)?.url, '/mtls');
    assert.match(
      String(appB.seen.at(-1)?.headers['x-forwarded-client-cert']),
      /;URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/service-a$/,
    );
    assert.equal(sidecarB.ended.at(-1)?.peerPrincipal, idOf('service-a'));
  });
});

describe('certificate rotation under load', () => {
  it('6 s certificates renew on both sidecars under load of up to 64 connections for 14 s: no request fails', async () => {
    // X.509 dates have whole seconds: a 6 s certificate lives 5–6 s and is renewed after 2.5–3 s, leaving a
    // new connection (which takes the certificate of the moment) over 2 s to complete its handshake even on
    // a machine busy with other tests.
    const lifetimeMs = 6_000;
    const ca = await openCa(lifetimeMs);
    const [a, b] = await Promise.all([identity(ca, 'service-a'), identity(ca, 'service-b')]);
    const rotations = { a: 0, b: 0 };
    a.on('rotated', () => rotations.a++);
    b.on('rotated', () => rotations.b++);
    const appB = await app('app-b');
    // B announces `Keep-Alive: timeout=2`: A keeps an idle connection for 1 s. The load alternates
    // between 64 and 8 connections, so connections idle in the quiet phases close and the busy phases
    // open new ones, with whatever certificates A and B hold by then.
    const sidecarB = await inboundSidecar(b, appB, 'STRICT', { keepAliveTimeout: '2s' });
    const sidecarA = await outboundSidecar(a, 'service-b', sidecarB.url());

    const result = { ok: 0, failed: 0, failures: [] as string[] };
    for (const connections of [64, 8, 64, 8, 64, 8, 64]) {
      const phase = await closedLoopLoad(sidecarA.url(), { connections, durationMs: 2_000, maxRequests: 500_000 });
      result.ok += phase.ok;
      result.failed += phase.failed;
      result.failures.push(...phase.failures);
    }
    const failedCodes = sidecarA.ended.filter((x) => x.status !== 200).map((x) => x.code);
    const refusals = { b: await handshakeFailures(sidecarB), a: await handshakeFailures(sidecarA) };
    assert.deepEqual(result.failures, [], `${failedCodes.slice(0, 5)} ${JSON.stringify(refusals)}`);
    assert.equal(result.failed, 0);
    assert.ok(result.ok > 200, `only ${result.ok} requests`);
    // Each identity renewed several times (at about half of each 2 s lifetime)...
    assert.ok(rotations.a >= 3 && rotations.b >= 3, JSON.stringify(rotations));
    // ...and the new client certificates were really used: B saw several of A's certificates.
    const hashes = new Set(
      appB.seen.map((s) => /Hash=([0-9a-f]+)/.exec(String(s.headers['x-forwarded-client-cert']))?.[1]),
    );
    assert.ok(hashes.size >= 3, `B saw ${hashes.size} client certificates`);
    assert.ok(!hashes.has(undefined), 'every request arrived with a verified caller');
  });
});

describe('mutual TLS in the config', () => {
  it('a proxy without a workload identity refuses a config asking for mutual TLS, naming what asks', async () => {
    const upstream = await app('plain');
    await assert.rejects(
      startGateway({
        services: [{ name: 'service-b', endpoints: [{ url: upstream.url }], mtls: { mode: 'STRICT' } }],
        routes: [{ name: 'r', service: 'service-b' }],
      }),
      /service service-b: mtls mode STRICT needs a workload identity/,
    );
    await assert.rejects(
      startGateway({
        listeners: [{ name: 'inbound', mtls: { mode: 'PERMISSIVE' } }],
        services: [{ name: 'app', endpoints: [{ url: upstream.url }] }],
        routes: [{ name: 'r', service: 'app' }],
      }),
      /listener inbound: mtls mode PERMISSIVE needs a workload identity/,
    );
    // A mesh section alone means PERMISSIVE for every service (Istio's default), so mTLS towards them.
    await assert.rejects(
      startGateway({
        mesh: { trustDomain: 'cluster.local' },
        services: [{ name: 'svc', endpoints: [{ url: upstream.url }] }],
        routes: [{ name: 'r', service: 'svc' }],
      }),
      /service svc: mtls mode PERMISSIVE/,
    );
  });

  it('tls and mtls on one listener, and an identity that is no SPIFFE ID, are config errors', async () => {
    await assert.rejects(
      startGateway({
        listeners: [{ name: 'in', tls: { certificates: [{ cert: 'c.pem', key: 'k.pem' }] }, mtls: { mode: 'STRICT' } }],
        services: [{ name: 's', endpoints: [], mtls: { identities: ['spiffe://Upper.Case/x'] } }],
        routes: [{ name: 'r', service: 's' }],
      }),
      (err: Error) => {
        assert.match(err.message, /listeners\[0\]\.mtls: a listener serves either its own certificates/);
        assert.match(
          err.message,
          /services\[0\]\.mtls\.identities\[0\]: "spiffe:\/\/Upper\.Case\/x" is not a SPIFFE ID/,
        );
        return true;
      },
    );
  });

  it('a reload moves an inbound listener from PERMISSIVE to STRICT: plaintext is refused from then on', async () => {
    const ca = await openCa();
    const b = await identity(ca, 'service-b');
    const appB = await app('app-b');
    const sidecarB = await inboundSidecar(b, appB, 'PERMISSIVE');
    const port = Number(new URL(sidecarB.url()).port);
    const res = await request(`${sidecarB.url()}/before`);
    await res.body.dump();
    assert.equal(res.statusCode, 200);
    await sidecarB.apply({
      listeners: [{ name: 'inbound', mtls: { mode: 'STRICT' } }],
      services: [{ name: 'app', endpoints: [{ url: appB.url }] }],
      routes: [{ name: 'inbound', service: 'app' }],
    });
    const { received, closed } = await plaintextExchange(port);
    assert.equal(closed, true);
    assert.doesNotMatch(received, /HTTP\//);
  });

  it('HTTP/2 over mutual TLS (ALPN h2) for a service with protocol http2', async () => {
    const ca = await openCa();
    const [a, b] = await Promise.all([identity(ca, 'service-a'), identity(ca, 'service-b')]);
    const appB = await app('app-b');
    const sidecarB = await startGateway(
      {
        listeners: [{ name: 'inbound', mtls: { mode: 'STRICT' }, http2: true }],
        services: [{ name: 'app', endpoints: [{ url: appB.url }] }],
        routes: [{ name: 'inbound', service: 'app' }],
      },
      { identity: b },
    );
    cleanups.push(() => sidecarB.close());
    const sidecarA = await startGateway(
      {
        listeners: [{ name: 'outbound' }],
        services: [
          { name: 'service-b', endpoints: [{ url: sidecarB.url() }], protocol: 'http2', mtls: { mode: 'STRICT' } },
        ],
        routes: [{ name: 'r', service: 'service-b' }],
      },
      { identity: a },
    );
    cleanups.push(() => sidecarA.close());
    for (let i = 0; i < 3; i++) {
      const res = await request(`${sidecarA.url()}/h2/${i}`, { headers: { host: 'service-b' } });
      assert.equal(res.statusCode, 200, await res.body.text());
    }
    const ended = sidecarB.ended.slice(-3);
    assert.deepEqual(
      ended.map((ctx) => [ctx.req.httpVersion, ctx.peerPrincipal]),
      Array(3).fill(['2.0', idOf('service-a')]),
    );
    assert.match(
      String(appB.seen.at(-1)?.headers['x-forwarded-client-cert']),
      /;URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/service-a$/,
    );
  });
});
