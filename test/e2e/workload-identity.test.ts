/**
 * Workload identities end to end: the control plane's CA issues SVIDs to holders wired straight to it
 * (the transport is a function), and real HTTPS servers and clients on 127.0.0.1 use them for mutual
 * TLS, checking each other's SPIFFE IDs. Renewal, bundle updates and a root rotation are followed by
 * `server.setSecureContext()` as a proxy does.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { CertificateAuthority, type CertificateAuthorityOptions } from '../../src/control-plane/ca/ca.ts';
import { ManualClock } from '../../src/core/clock.ts';
import { checkPeerSpiffeId, spiffeIdOfCertificate } from '../../src/core/spiffe.ts';
import {
  type IdentityMaterial,
  WorkloadIdentity,
  type WorkloadIdentityOptions,
} from '../../src/proxy/identity/workload-identity.ts';

const dirs: string[] = [];
const servers: Server[] = [];
const identities: WorkloadIdentity[] = [];
after(() => {
  for (const s of servers) s.close();
  for (const i of identities) i.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function openCa(options: Partial<CertificateAuthorityOptions> = {}): Promise<CertificateAuthority> {
  const stateDir = mkdtempSync(join(tmpdir(), 'meshgate-ca-'));
  dirs.push(stateDir);
  return CertificateAuthority.open({ trustDomain: 'cluster.local', stateDir, ...options });
}

const idOf = (sa: string) => `spiffe://cluster.local/ns/default/sa/${sa}`;
/** A clock at a whole second of real time, so certificates it dates are valid for real TLS. */
const realClock = () => new ManualClock(Math.floor(Date.now() / 1000) * 1000);

async function holder(
  ca: CertificateAuthority,
  serviceAccount: string,
  options: Partial<WorkloadIdentityOptions> = {},
): Promise<WorkloadIdentity> {
  const identity = await WorkloadIdentity.start({
    issue: (csrPem) => ca.issue(csrPem, { namespace: 'default', serviceAccount }),
    expectedSpiffeId: idOf(serviceAccount),
    ...options,
  });
  identities.push(identity);
  return identity;
}

interface TestServer {
  port: number;
  server: Server;
  /** Requests that reached the handler (i.e. passed mutual TLS). */
  requests: number;
  /** Client handshakes the server refused. */
  refused: Error[];
}

/** An HTTPS server with `identity` that requires a client certificate from the bundle and echoes its ID. */
async function serve(identity: WorkloadIdentity): Promise<TestServer> {
  const state = { requests: 0, refused: [] as Error[] };
  const server = createServer(
    { ...identity.secureContextOptions(), requestCert: true, rejectUnauthorized: true },
    (req, res) => {
      state.requests++;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ peer: spiffeIdOfCertificate((req.socket as TLSSocket).getPeerCertificate()) }));
    },
  );
  server.on('tlsClientError', (err) => state.refused.push(err));
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return Object.assign(state, { server, port: (server.address() as { port: number }).port });
}

interface CallResult {
  /** The SPIFFE ID the server saw for this client. */
  peer: string | undefined;
  /** The SPIFFE ID and serial of the server's certificate, as this client saw it. */
  serverId: string | undefined;
  serverSerial: string;
}

/** One request on a new connection, presenting `material` and accepting only `expected` as the server. */
function call(port: number, material: IdentityMaterial | undefined, expected: string[]): Promise<CallResult> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/',
        agent: false,
        timeout: 5_000,
        ...(material && { key: material.keyPem, cert: material.certChainPem, ca: material.bundlePem }),
        checkServerIdentity: checkPeerSpiffeId(expected),
      },
      (res) => {
        const cert = (res.socket as TLSSocket).getPeerCertificate();
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () =>
          resolve({
            peer: (JSON.parse(body) as { peer?: string }).peer,
            serverId: spiffeIdOfCertificate(cert),
            serverSerial: cert.serialNumber,
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

describe('workload identities over mutual TLS', () => {
  it('two services authenticate each other by SPIFFE ID with certificates from one CA', async () => {
    const ca = await openCa();
    const a = await holder(ca, 'service-a');
    const b = await holder(ca, 'service-b');
    assert.equal(a.spiffeId, idOf('service-a'));
    const srv = await serve(a);
    const result = await call(srv.port, b.current, [idOf('service-a')]);
    assert.deepEqual(result, {
      peer: idOf('service-b'),
      serverId: idOf('service-a'),
      serverSerial: a.current.serial,
    });
    assert.equal(srv.requests, 1);
  });

  it('the server refuses a client certificate from a foreign CA, and a client with none', async () => {
    const ca = await openCa();
    const foreign = await openCa();
    const a = await holder(ca, 'service-a');
    const intruder = await holder(foreign, 'service-b');
    const srv = await serve(a);
    // The intruder trusts our root (it is public), so only the server's check stands in its way.
    const material = { ...intruder.current, bundlePem: a.current.bundlePem };
    await assert.rejects(call(srv.port, material, [idOf('service-a')]));
    await assert.rejects(call(srv.port, undefined, [idOf('service-a')]));
    assert.equal(srv.requests, 0, 'no request reached the handler');
    const deadline = Date.now() + 5_000;
    while (srv.refused.length < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.ok(srv.refused.length >= 1, 'the server reported the refused handshake');
  });

  it('the client refuses a server whose SPIFFE ID is not the one it expects', async () => {
    const ca = await openCa();
    const a = await holder(ca, 'service-a');
    const b = await holder(ca, 'service-b');
    const srv = await serve(a);
    await assert.rejects(call(srv.port, b.current, [idOf('service-c')]), (err: NodeJS.ErrnoException) => {
      assert.equal(err.code, 'ERR_TLS_CERT_ALTNAME_INVALID');
      assert.match(err.message, /service-a is not one of spiffe:\/\/cluster\.local\/ns\/default\/sa\/service-c/);
      return true;
    });
    assert.equal(srv.requests, 0);
    // The same server, checked for what it is, answers.
    assert.equal((await call(srv.port, b.current, [idOf('service-c'), idOf('service-a')])).serverId, idOf('service-a'));
  });

  it('a root rotation: old and new certificates work together during the overlap, old ones stop after it', async () => {
    const clock = realClock();
    const overlapMs = 60_000;
    const ca = await openCa({ clock, rotationOverlapMs: overlapMs });
    const a = await holder(ca, 'service-a', { clock });
    const srv = await serve(a);
    // Every change of A's material reaches its server, as the proxy does.
    a.on('rotated', () => srv.server.setSecureContext(a.secureContextOptions()));
    const oldSerial = a.current.serial;

    await ca.rotate();
    const b = await holder(ca, 'service-b', { clock });
    assert.notEqual(b.current.bundlePem, a.current.bundlePem, 'B came after the rotation');
    // A learns the new bundle from the pushed config; until then it would refuse B's new-root certificate.
    await assert.rejects(call(srv.port, b.current, [idOf('service-a')]));
    a.setBundle(ca.bundle().pem);
    const during = await call(srv.port, b.current, [idOf('service-a')]);
    assert.equal(during.serverSerial, oldSerial, 'A still serves its old-root certificate, and B accepts it');
    assert.equal(during.peer, idOf('service-b'));

    // The overlap ends: the new bundle drops the old root; B, told so, refuses A's old certificate.
    const ended = once(ca, 'bundle');
    clock.advance(overlapMs);
    const [bundle] = (await ended) as [{ pem: string }];
    b.setBundle(bundle.pem);
    await assert.rejects(call(srv.port, b.current, [idOf('service-a')]), /issuer|self.signed|unable to get/i);
    // A renews from the new root and serves again.
    await a.renew();
    const renewed = await call(srv.port, b.current, [idOf('service-a')]);
    assert.notEqual(renewed.serverSerial, oldSerial);
    assert.equal(renewed.peer, idOf('service-b'));
  });
});

describe('workload identity renewal', () => {
  it('renews at half-life on an injected clock, with a new key each time', async () => {
    const clock = realClock();
    const ca = await openCa({ clock, svidLifetimeMs: 2_000 });
    let issued = 0;
    const identity = await WorkloadIdentity.start({
      issue: (csr) => {
        issued++;
        return ca.issue(csr, { namespace: 'default', serviceAccount: 'photo' });
      },
      clock,
      random: () => 0.5, // no jitter: exactly half-life (the next test spreads it)
    });
    identities.push(identity);
    const first = identity.current;
    assert.equal(first.notAfter.getTime() - clock.now(), 2_000);
    assert.equal(identity.renewAt - clock.now(), 1_000);
    const rotated = once(identity, 'rotated');
    clock.advance(999);
    assert.equal(issued, 1, 'not yet');
    clock.advance(1);
    assert.equal(issued, 2, 'the renewal started at half the lifetime');
    const [material, reason] = (await rotated) as [IdentityMaterial, string];
    assert.equal(reason, 'renewed');
    assert.notEqual(material.serial, first.serial);
    assert.notEqual(material.keyPem, first.keyPem, 'a new key pair');
    assert.equal(material.notAfter.getTime(), first.notAfter.getTime() + 1_000);
    assert.ok(clock.now() < first.notAfter.getTime(), 'before the first one expired');
    assert.equal(identity.current, material);
    assert.equal(identity.secureContextOptions().key, material.keyPem);
    // The next one is planned from the new certificate.
    assert.equal(identity.renewAt, clock.now() + 1_000);
    identity.close();
    assert.equal(clock.pending, 0, 'close() leaves no timer');
  });

  it('jitter spreads renewals between 40 % and 60 % of the lifetime', async () => {
    const clock = realClock();
    const ca = await openCa({ clock, svidLifetimeMs: 10_000 });
    const delays: number[] = [];
    for (const r of [0, 0.5, 0.999999]) {
      const identity = await holder(ca, 'photo', { clock, random: () => r });
      delays.push(identity.renewAt - clock.now());
      identity.close();
    }
    assert.deepEqual(
      delays.map((d) => Math.round(d)),
      [4_000, 5_000, 6_000],
    );
  });

  it('retries a failed renewal with backoff, reports expiry, and recovers', async () => {
    const clock = realClock();
    const ca = await openCa({ clock, svidLifetimeMs: 4_000 });
    let down = false;
    const identity = await holder(ca, 'photo', {
      clock,
      random: () => 0.5,
      renewRetryBaseMs: 500,
      renewRetryMaxMs: 1_000,
      issue: async (csr) => {
        if (down) throw new Error('control plane unreachable');
        return ca.issue(csr, { namespace: 'default', serviceAccount: 'photo' });
      },
    });
    const failures: { attempt: number; retryInMs: number }[] = [];
    identity.on('renewalFailed', (_err, info) => failures.push(info));
    const first = identity.current;
    down = true;

    const failed = once(identity, 'renewalFailed');
    clock.advance(2_000); // half of 4 s
    await failed;
    assert.deepEqual(failures, [{ attempt: 1, retryInMs: 500 }]);
    for (const expected of [
      { attempt: 2, retryInMs: 1_000 },
      { attempt: 3, retryInMs: 1_000 },
    ]) {
      const next = once(identity, 'renewalFailed');
      clock.advance(failures.at(-1)?.retryInMs ?? 0);
      await next;
      assert.deepEqual(failures.at(-1), expected);
    }
    const expired = once(identity, 'expired');
    clock.advance(first.notAfter.getTime() - clock.now());
    assert.equal(((await expired) as [IdentityMaterial])[0], first);

    down = false;
    const rotated = once(identity, 'rotated');
    clock.advance(1_000);
    await rotated;
    assert.notEqual(identity.current.serial, first.serial);
    assert.equal(identity.current.notAfter.getTime() - clock.now(), 4_000);
  });

  it('refuses a certificate that is not for its key or not for the identity it expects', async () => {
    const ca = await openCa();
    const other = await WorkloadIdentity.start({
      issue: (csr) => ca.issue(csr, { namespace: 'default', serviceAccount: 'other' }),
    });
    other.close();
    await assert.rejects(WorkloadIdentity.start({ issue: async () => other.current }), /not for this key/);
    await assert.rejects(
      WorkloadIdentity.start({
        issue: (csr) => ca.issue(csr, { namespace: 'default', serviceAccount: 'other' }),
        expectedSpiffeId: idOf('photo'),
      }),
      /is for spiffe:\/\/cluster\.local\/ns\/default\/sa\/other, not/,
    );
    const foreign = await openCa();
    await assert.rejects(
      WorkloadIdentity.start({
        issue: async (csr) => ({
          ...(await ca.issue(csr, { namespace: 'default', serviceAccount: 'photo' })),
          bundlePem: foreign.bundle().pem,
        }),
      }),
      /does not chain to the trust bundle/,
    );
  });

  it('keeps a server serving through real renewals of 2-second certificates', async () => {
    // Real time here: TLS checks validity against the wall clock, so this shows that renewal and
    // setSecureContext keep a server's certificate valid, not merely that timers fire.
    const ca = await openCa({ svidLifetimeMs: 2_000 });
    const a = await holder(ca, 'service-a');
    const b = await holder(ca, 'service-b');
    const srv = await serve(a);
    a.on('rotated', () => srv.server.setSecureContext(a.secureContextOptions()));
    const firstExpiry = a.current.notAfter.getTime();
    const serials = new Set<string>();
    let calls = 0;
    // New connections, one after another, until well past the first certificate's expiry.
    while (Date.now() < firstExpiry + 2_500) {
      const result = await call(srv.port, b.current, [idOf('service-a')]);
      assert.equal(result.peer, idOf('service-b'));
      serials.add(result.serverSerial);
      calls++;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(serials.size >= 3, `the server presented ${serials.size} certificates over ${calls} calls`);
    assert.equal(srv.refused.length, 0);
  });
});
