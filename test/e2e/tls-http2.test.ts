/**
 * TLS termination and HTTP/2 towards clients, checked with the real tools: `openssl s_client` for the
 * certificate chosen per SNI name and for client certificates, h2load for HTTP/2 over TLS and h2c,
 * node:http2 and undici as clients; and `protocol: auto` towards TLS upstreams (ALPN h2 or http/1.1).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createSecureServer, type Http2SecureServer, connect as http2Connect } from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { Agent, request } from 'undici';
import { type CertFiles, TestPki } from '../helpers/certs.ts';
import { MeshgateProcess } from '../helpers/process.ts';
import { rawRequest } from '../helpers/raw.ts';
import { startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/servers.ts';

/** Runs a command with `input` on stdin; resolves with stdout+stderr whatever the exit code. */
function run(cmd: string, args: string[], input = '', timeoutMs = 15_000): Promise<string> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: timeoutMs }, (_e, stdout, stderr) => resolve(stdout + stderr));
    child.stdin?.end(input);
  });
}

/** The subject CN of the certificate the server presents for `servername` (undefined: none sent). */
async function presentedCn(port: number, servername: string | undefined, extra: string[] = []): Promise<string> {
  const sni = servername === undefined ? ['-noservername'] : ['-servername', servername];
  const out = await run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, ...sni, ...extra]);
  const m = /subject=\s*CN\s*=\s*([^\s,/]+)/.exec(out);
  return m?.[1] ?? `(no certificate: ${out.slice(0, 300)})`;
}

function portOf(url: string): number {
  return Number(new URL(url).port);
}

describe('TLS listener', () => {
  let pki: TestPki;
  let certs: Record<string, CertFiles>;
  let upstream: Upstream;
  let gw: TestGateway;
  let config: Record<string, unknown>;

  before(async () => {
    pki = new TestPki();
    certs = {
      fallback: pki.leaf('fallback', ['default.test']),
      a: pki.leaf('a', ['a.test']),
      wild: pki.leaf('wild', ['*.b.test']),
      named: pki.leaf('named', ['ignored-san.test']),
      client: pki.leaf('client', ['client.test']),
    };
    upstream = await startUpstream();
    config = {
      listeners: [
        {
          name: 'tls',
          tls: {
            certificates: [certs.fallback, certs.a, certs.wild, { ...certs.named, serverNames: ['explicit.test'] }],
          },
        },
        { name: 'mtls', tls: { certificates: [certs.a], clientCa: pki.ca.cert } },
        { name: 'modern', tls: { certificates: [certs.a], minVersion: 'TLSv1.3' } },
        { name: 'h2c', http2: true },
        { name: 'redirect', redirectToHttps: true, httpsPort: 8443 },
      ],
      services: [{ name: 'svc', endpoints: [{ url: upstream.url }] }],
      routes: [
        { name: 'secure-only', match: { path: '/account/*' }, service: 'svc', redirectToHttps: true },
        { name: 'all', service: 'svc' },
      ],
    };
    gw = await startGateway(config);
  });

  after(async () => {
    await gw.close();
    await upstream.close();
    pki.remove();
  });

  it('openssl s_client -servername gets the certificate for each name; unknown or no name gets the first', async () => {
    const port = portOf(gw.url('tls'));
    assert.equal(await presentedCn(port, 'a.test'), 'a.test');
    assert.equal(await presentedCn(port, 'A.TEST'), 'a.test', 'names are case-insensitive');
    assert.equal(await presentedCn(port, 'x.b.test'), '*.b.test', 'a wildcard covers one label');
    assert.equal(await presentedCn(port, 'deep.x.b.test'), 'default.test', 'but not two');
    assert.equal(await presentedCn(port, 'explicit.test'), 'ignored-san.test', 'serverNames replace the SAN');
    assert.equal(await presentedCn(port, 'unknown.test'), 'default.test');
    assert.equal(await presentedCn(port, undefined), 'default.test');
  });

  it('serves HTTP/1.1 and HTTP/2 (ALPN) over TLS, and tells the upstream the scheme was https', async () => {
    const agent = new Agent({ connect: { ca: pki.caPem(), servername: 'a.test' } });
    try {
      const res = await request(`https://127.0.0.1:${portOf(gw.url('tls'))}/h1`, {
        dispatcher: agent,
        headers: { host: 'a.test' },
      });
      const body = JSON.parse(await res.body.text());
      assert.equal(res.statusCode, 200);
      assert.equal(body.headers['x-forwarded-proto'], 'https');
    } finally {
      await agent.close();
    }
    const session = http2Connect(`https://127.0.0.1:${portOf(gw.url('tls'))}`, {
      ca: pki.caPem(),
      servername: 'a.test',
    });
    try {
      const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = session.request({ ':path': '/over-h2?x=1' });
        let status = 0;
        let body = '';
        req.on('response', (h) => (status = Number(h[':status'])));
        req.setEncoding('utf8').on('data', (c: string) => (body += c));
        req.on('end', () => resolve({ status, body }));
        req.on('error', reject);
      });
      assert.equal(status, 200);
      const echoed = JSON.parse(body);
      assert.equal(echoed.url, '/over-h2?x=1');
      assert.equal(echoed.headers['x-forwarded-proto'], 'https');
      assert.equal(echoed.headers.host, `a.test:${portOf(gw.url('tls'))}`, ':authority becomes Host');
    } finally {
      session.close();
    }
  });

  it('refuses TLS versions below minVersion', async () => {
    const port = portOf(gw.url('modern'));
    assert.equal(await presentedCn(port, 'a.test', ['-tls1_3']), 'a.test');
    assert.match(await presentedCn(port, 'a.test', ['-tls1_2']), /no certificate/);
  });

  it('requires a valid client certificate where clientCa is set', async () => {
    const port = portOf(gw.url('mtls'));
    const http = 'GET /mtls HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n';
    const withCert = await run(
      'openssl',
      [
        's_client',
        '-connect',
        `127.0.0.1:${port}`,
        '-servername',
        'a.test',
        '-quiet',
        '-cert',
        certs.client!.cert,
        '-key',
        certs.client!.key,
      ],
      http,
    );
    assert.match(withCert, /HTTP\/1\.1 200/);
    const without = await run(
      'openssl',
      ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'a.test', '-quiet'],
      http,
    );
    assert.doesNotMatch(without, /HTTP\/1\.1 200/);
    const foreign = new TestPki('foreign-ca');
    try {
      const stranger = foreign.leaf('stranger', ['client.test']);
      const withForeign = await run(
        'openssl',
        [
          's_client',
          '-connect',
          `127.0.0.1:${port}`,
          '-servername',
          'a.test',
          '-quiet',
          '-cert',
          stranger.cert,
          '-key',
          stranger.key,
        ],
        http,
      );
      assert.doesNotMatch(withForeign, /HTTP\/1\.1 200/);
    } finally {
      foreign.remove();
    }
  });

  it('redirects plain HTTP to HTTPS per listener (308, same path and query)', async () => {
    const before = upstream.seen.length;
    const res = await rawRequest(
      portOf(gw.url('redirect')),
      'POST /x/y?q=1 HTTP/1.1\r\nHost: Shop.Example:80\r\nContent-Length: 0\r\n\r\n',
    );
    assert.equal(res.status, 308);
    assert.equal(res.headers.location, 'https://shop.example:8443/x/y?q=1');
    assert.equal(upstream.seen.length, before);
  });

  it('redirects plain HTTP to HTTPS per route, and serves the route over TLS', async () => {
    const plain = await rawRequest(portOf(gw.url('h2c')), 'GET /account/me HTTP/1.1\r\nHost: shop.example\r\n\r\n');
    assert.equal(plain.status, 308);
    assert.equal(plain.headers.location, 'https://shop.example/account/me');
    const agent = new Agent({ connect: { ca: pki.caPem(), servername: 'a.test' } });
    try {
      const res = await request(`https://127.0.0.1:${portOf(gw.url('tls'))}/account/me`, { dispatcher: agent });
      assert.equal(res.statusCode, 200);
      await res.body.dump();
    } finally {
      await agent.close();
    }
  });

  it('re-reads certificate files on reload: a rotated certificate is served without a restart', async () => {
    const port = portOf(gw.url('tls'));
    assert.equal(await presentedCn(port, 'a.test'), 'a.test');
    const rotated = pki.leaf('a-rotated', ['a.test', 'rotated.a.test']);
    copyFileSync(rotated.cert, certs.a!.cert);
    copyFileSync(rotated.key, certs.a!.key);
    await gw.apply(config);
    const out = await run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'a.test'], '');
    const served = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(out)?.[0];
    assert.equal(served?.trim(), readFileSync(rotated.cert, 'utf8').trim(), 'the new certificate is presented');
    assert.equal(portOf(gw.url('tls')), port, 'the listener was not rebound');
  });

  it('reloads that swap certificates drop no request in flight', async () => {
    const agent = new Agent({ connect: { ca: pki.caPem(), servername: 'a.test' }, connections: 8 });
    const url = `https://127.0.0.1:${portOf(gw.url('tls'))}/load`;
    let ok = 0;
    const failures: string[] = [];
    let stop = false;
    const deadline = performance.now() + 5000;
    const clients = Array.from({ length: 8 }, async () => {
      while (!stop && performance.now() < deadline) {
        try {
          // A fresh connection every few requests, so new handshakes meet each swapped context.
          const res = await request(url, { dispatcher: agent, reset: ok % 4 === 0 });
          await res.body.dump();
          if (res.statusCode === 200) ok++;
          else failures.push(`status ${res.statusCode}`);
        } catch (e) {
          failures.push((e as Error).message);
        }
      }
    });
    try {
      for (let i = 0; i < 5; i++) {
        await new Promise((r) => setTimeout(r, 100));
        const next = pki.leaf(`a-gen${i}`, ['a.test']);
        copyFileSync(next.cert, certs.a!.cert);
        copyFileSync(next.key, certs.a!.key);
        await gw.apply(config);
      }
    } finally {
      stop = true;
      await Promise.all(clients);
      await agent.close();
    }
    assert.deepEqual(failures, []);
    assert.ok(ok > 50, `only ${ok} requests`);
  });

  it('a reload with a missing certificate file is rejected and the running certificates stay', async () => {
    const port = portOf(gw.url('tls'));
    const broken = structuredClone(config) as { listeners: { tls?: { certificates: CertFiles[] } }[] };
    broken.listeners[0]!.tls!.certificates[1]!.cert = `${pki.dir}/missing.pem`;
    await assert.rejects(
      gw.apply(broken),
      /listeners\[0\]\.tls\.certificates\[1\]\.cert: cannot read .*missing\.pem: no such file/,
    );
    assert.equal(await presentedCn(port, 'x.b.test'), '*.b.test');
  });
});

describe('HTTP/2 load with h2load', () => {
  let pki: TestPki;
  let upstream: Upstream;
  let gw: TestGateway;

  before(async () => {
    pki = new TestPki();
    const cert = pki.leaf('load', ['load.test']);
    upstream = await startUpstream();
    gw = await startGateway({
      listeners: [
        { name: 'tls', tls: { certificates: [cert] } },
        { name: 'h2c', http2: true },
      ],
      services: [{ name: 'svc', endpoints: [{ url: upstream.url }] }],
      routes: [
        { name: 'direct', match: { path: '/direct' }, directResponse: { status: 200, body: 'ok' } },
        { name: 'all', service: 'svc' },
      ],
    });
  });

  after(async () => {
    await gw.close();
    await upstream.close();
    pki.remove();
  });

  for (const [name, scheme] of [
    ['tls', 'https'],
    ['h2c', 'http'],
  ] as const) {
    it(`h2load over ${name === 'tls' ? 'TLS (ALPN h2)' : 'h2c'} completes with no errors`, async () => {
      const port = portOf(gw.url(name));
      for (const path of ['/direct', '/proxied']) {
        const out = await run(
          'h2load',
          ['-n', '3000', '-c', '4', '-m', '16', '-D', '0', `${scheme}://127.0.0.1:${port}${path}`],
          '',
          60_000,
        );
        assert.match(
          out,
          /requests: 3000 total, 3000 started, 3000 done, 3000 succeeded, 0 failed, 0 errored, 0 timeout/,
          out,
        );
        assert.match(out, /status codes: 3000 2xx/, out);
        if (name === 'tls') assert.match(out, /Application protocol: h2/, out);
      }
    });
  }

  it('plain HTTP/1.1 still works on the h2c port (the preface decides)', async () => {
    const res = await request(`${gw.url('h2c')}/direct`);
    assert.equal(res.statusCode, 200);
    assert.equal(await res.body.text(), 'ok');
  });

  it('limits concurrent streams per connection (maxConcurrentStreams)', async () => {
    const g = await startGateway({
      listeners: [{ name: 'h2c', http2: true, limits: { maxConcurrentStreams: 3 } }],
      routes: [{ name: 'direct', directResponse: { status: 200 } }],
    });
    const session = http2Connect(g.url('h2c'));
    try {
      const settings = await new Promise<{ maxConcurrentStreams?: number }>((resolve) =>
        session.once('remoteSettings', resolve),
      );
      assert.equal(settings.maxConcurrentStreams, 3);
    } finally {
      session.close();
      await g.close();
    }
  });
});

describe('HTTP/2 clients: failures', () => {
  function h2Get(url: string, path: string, headers: Record<string, string> = {}) {
    const session = http2Connect(url);
    return new Promise<{ status: number; body: string; headers: Record<string, unknown>; error?: string }>(
      (resolve) => {
        const req = session.request({ ':path': path, ...headers });
        let status = 0;
        let body = '';
        let head: Record<string, unknown> = {};
        req.on('response', (h) => {
          status = Number(h[':status']);
          head = h;
        });
        req.setEncoding('utf8').on('data', (c: string) => (body += c));
        req.on('end', () => {
          session.close();
          resolve({ status, body, headers: head });
        });
        req.on('error', (e: Error) => {
          session.close();
          resolve({ status, body, headers: head, error: (e as NodeJS.ErrnoException).code ?? e.message });
        });
      },
    );
  }

  it('an upstream that dies mid-response resets the stream (never a complete-looking response)', async () => {
    const dying = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-length': '1000' });
      res.write('x'.repeat(100));
      setTimeout(() => res.socket?.destroy(), 50);
    });
    const g = await startGateway({
      listeners: [{ name: 'h2c', http2: true }],
      services: [{ name: 'svc', endpoints: [{ url: dying.url }] }],
      routes: [{ name: 'all', service: 'svc' }],
    });
    try {
      const r = await h2Get(g.url('h2c'), '/x');
      assert.equal(r.status, 200);
      assert.ok(r.error !== undefined, `the stream ended cleanly with ${r.body.length} bytes`);
    } finally {
      await g.close();
      await dying.close();
    }
  });

  it('problem replies reach HTTP/2 clients; a body over the route limit gets 413', async () => {
    const upstream = await startUpstream();
    const g = await startGateway({
      listeners: [{ name: 'h2c', http2: true }],
      services: [{ name: 'svc', endpoints: [{ url: upstream.url }] }],
      routes: [{ name: 'small', match: { path: '/small' }, service: 'svc', limits: { maxBodyBytes: 4 } }],
    });
    try {
      const missing = await h2Get(g.url('h2c'), '/none');
      assert.equal(missing.status, 404);
      assert.equal(JSON.parse(missing.body).code, 'MG_ROUTE_NOT_FOUND');
      const session = http2Connect(g.url('h2c'));
      const status = await new Promise<number>((resolve) => {
        const req = session.request({ ':path': '/small', ':method': 'POST' });
        req.on('response', (h) => resolve(Number(h[':status'])));
        req.on('error', () => {});
        req.end('more than four bytes');
      });
      session.destroy();
      assert.equal(status, 413);
      assert.equal(upstream.seen.filter((s) => s.url === '/small').length, 0, 'nothing complete reached the upstream');
    } finally {
      await g.close();
      await upstream.close();
    }
  });
});

describe('upstream protocol auto', () => {
  // The gateway runs as its own process so that it trusts the test CA the way an operator makes it
  // trust a private one (NODE_EXTRA_CA_CERTS); nothing in the config points at the CA.
  let pki: TestPki;
  let dir: string;
  let gw: MeshgateProcess;
  let base: string;
  const servers: (Server | Http2SecureServer)[] = [];

  /** Tells which HTTP version and ALPN protocol the request arrived with. */
  const whoami = (req: IncomingMessage, res: ServerResponse) => {
    const alpn = (req.socket as TLSSocket).alpnProtocol ?? null;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ httpVersion: req.httpVersion, alpn }));
  };
  const listen = async (server: Server | Http2SecureServer) => {
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return (server.address() as AddressInfo).port;
  };

  before(async () => {
    pki = new TestPki();
    const leaf = pki.leaf('upstream', ['localhost', 'IP:127.0.0.1']);
    const tls = { cert: readFileSync(leaf.cert), key: readFileSync(leaf.key) };
    // Offers h2 and http/1.1 by ALPN, as most TLS servers now do.
    const both = await listen(createSecureServer({ ...tls, allowHTTP1: true }, whoami as never));
    // A TLS server that speaks HTTP/1.1 only (node:https announces no ALPN protocol).
    const h1 = await listen(createHttpsServer(tls, whoami));
    const plain = await listen(createHttpServer(whoami));
    dir = mkdtempSync(join(tmpdir(), 'meshgate-auto-'));
    const file = join(dir, 'gateway.yaml');
    writeFileSync(
      file,
      `listeners: [{ name: main, port: 0, address: 127.0.0.1 }]
admin: { port: 0 }
services:
  - { name: both-auto, protocol: auto, endpoints: [{ url: "https://127.0.0.1:${both}" }] }
  - { name: both-http1, endpoints: [{ url: "https://127.0.0.1:${both}" }] }
  - { name: h1-auto, protocol: auto, endpoints: [{ url: "https://127.0.0.1:${h1}" }] }
  - { name: plain-auto, protocol: auto, endpoints: [{ url: "http://127.0.0.1:${plain}" }] }
routes:
  - { name: both-auto, match: { path: /both-auto }, service: both-auto }
  - { name: both-http1, match: { path: /both-http1 }, service: both-http1 }
  - { name: h1-auto, match: { path: /h1-auto }, service: h1-auto }
  - { name: plain-auto, match: { path: /plain-auto }, service: plain-auto }
`,
    );
    gw = new MeshgateProcess(['gateway', '--config', file, '--workers', '0'], { NODE_EXTRA_CA_CERTS: pki.ca.cert });
    const started = await gw.waitFor('gateway started');
    base = `http://127.0.0.1:${(started.listeners as Record<string, number>).main}`;
  });

  after(async () => {
    await gw.stop();
    for (const s of servers) s.close();
    pki.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  const arrival = async (path: string) => {
    const res = await request(`${base}${path}`);
    const text = await res.body.text();
    assert.equal(res.statusCode, 200, text);
    return JSON.parse(text) as { httpVersion: string; alpn: string | null };
  };

  it('speaks HTTP/2 to a TLS upstream that offers h2 by ALPN, and HTTP/1.1 where it does not', async () => {
    assert.deepEqual(await arrival('/both-auto'), { httpVersion: '2.0', alpn: 'h2' });
    assert.deepEqual(
      await arrival('/both-http1'),
      { httpVersion: '1.1', alpn: 'http/1.1' },
      'the default (http1) offers only HTTP/1.1',
    );
    assert.equal((await arrival('/h1-auto')).httpVersion, '1.1', 'an upstream without h2 gets HTTP/1.1');
    assert.deepEqual(await arrival('/plain-auto'), { httpVersion: '1.1', alpn: null }, 'no h2c guess for http://');
  });
});
