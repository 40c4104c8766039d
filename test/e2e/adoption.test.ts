/**
 * A service gains its sidecar under load, as docs/adoption.md's step-by-step section tells it: a
 * `meshgate control-plane` whose model reaches photo-service's app directly (a static endpoint,
 * `mtls: DISABLE`, in a STRICT mesh), a `meshgate gateway` in front of it with steady traffic, then
 * photo-service's `meshgate sidecar` starts and registers (the gateway balances over the app and the
 * sidecar), and the model drops the static endpoint (`PUT /config`), so every request goes through
 * the sidecar. Not one request fails, and each response says whether a sidecar served it
 * (`Server-Timing: …;desc="sidecar photo-service"`), so the test sees the traffic move.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Pool, request } from 'undici';
import { eventually } from '../helpers/mesh.ts';
import { freePort } from '../helpers/ports.ts';
import { MeshgateProcess } from '../helpers/process.ts';

const CONNECTIONS = 4;
/** Bounds on the load, whatever happens: the steps below take a few seconds. */
const MAX_LOAD_MS = 60_000;
const MAX_REQUESTS = 200_000;
/** Responses in a row through the sidecar that show the gateway holds the new model. */
const SETTLED_STREAK = 200;
const STEP_TIMEOUT_MS = 20_000;

/** The model at each step: photo-service reached directly, or through the sidecars that registered. */
function photoModel(gatewayPort: number, appUrl: string | null): string {
  return `# ${appUrl ? 'photo-service reached directly: no sidecar yet' : 'photo-service reached through its sidecar'}
mesh: { trustDomain: proptech.local, mtls: { mode: STRICT } }
observability: { serverTiming: true }
listeners:
  - { name: public, port: ${gatewayPort}, address: 127.0.0.1 }
routes:
  - { name: photos, match: { path: /photos, methods: [GET] }, service: photo-service }
services:
  - name: photo-service
${appUrl ? `    endpoints: [{ url: "${appUrl}" }]\n` : ''}    mtls: { mode: DISABLE }
    timeouts: { connect: 1s, request: 2s }
`;
}

interface Outcome {
  ok: boolean;
  viaSidecar: boolean;
  detail: string;
}

/** Closed-loop load through the gateway until `stop()`, recording each response in order. */
function steadyLoad(origin: string) {
  const pool = new Pool(origin, { connections: CONNECTIONS, pipelining: 1 });
  const outcomes: Outcome[] = [];
  let stopped = false;
  const deadline = performance.now() + MAX_LOAD_MS;
  const loops = Array.from({ length: CONNECTIONS }, async () => {
    while (!stopped && performance.now() < deadline && outcomes.length < MAX_REQUESTS) {
      try {
        const res = await pool.request({ method: 'GET', path: '/photos?property=42' });
        const body = await res.body.text();
        const timing = String(res.headers['server-timing'] ?? '');
        outcomes.push({
          ok: res.statusCode === 200,
          viaSidecar: timing.includes('desc="sidecar photo-service"'),
          detail: res.statusCode === 200 ? '' : `${res.statusCode} ${body.slice(0, 300)}`,
        });
      } catch (e) {
        outcomes.push({ ok: false, viaSidecar: false, detail: (e as Error).message });
      }
    }
  });
  return {
    outcomes,
    async stop() {
      stopped = true;
      await Promise.all(loops);
      await pool.close();
    },
  };
}

describe('a service gains its sidecar under load', () => {
  let dir: string;
  const processes: MeshgateProcess[] = [];
  let app: Server;
  let appUrl = '';
  let cpUrl = '';
  let gatewayPort = 0;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshgate-adoption-'));
    app = createServer((req, res) => {
      const body = JSON.stringify({ property: '42', photos: [{ url: 'https://photos.example/42/1.jpg' }] });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
    app.keepAliveTimeout = 65_000;
    app.listen(0, '127.0.0.1');
    await once(app, 'listening');
    appUrl = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;

    gatewayPort = await freePort();
    const cpPort = await freePort();
    cpUrl = `http://127.0.0.1:${cpPort}`;
    writeFileSync(join(dir, 'mesh.yaml'), photoModel(gatewayPort, appUrl));
    const cp = new MeshgateProcess([
      'control-plane',
      ...['--config', join(dir, 'mesh.yaml'), '--port', String(cpPort), '--warmup', '0'],
      ...['--state-dir', join(dir, 'state')],
    ]);
    processes.push(cp);
    await cp.waitFor('control plane started', 20_000);
    processes.push(
      new MeshgateProcess([
        'gateway',
        ...['--id', 'gateway', '--workers', '0', '--admin-port', '0', '--drain', '2s', '--control-plane', cpUrl],
      ]),
    );
    await eventually(
      async () => {
        const res = await request(`http://127.0.0.1:${gatewayPort}/photos?property=1`);
        await res.body.dump();
        return res.statusCode === 200;
      },
      STEP_TIMEOUT_MS,
      'the gateway to answer through the static endpoint',
    );
  });

  after(async () => {
    await Promise.all(processes.reverse().map((p) => p.stop()));
    app.closeAllConnections();
    app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('zero failed requests while photo-service moves from its static endpoint to its sidecar', async () => {
    const load = steadyLoad(`http://127.0.0.1:${gatewayPort}`);
    const { outcomes } = load;
    try {
      // Stage 1: the gateway alone in front of the plain app.
      await eventually(() => outcomes.length >= 100, STEP_TIMEOUT_MS, 'traffic through the static endpoint');

      // Stage 2: the sidecar starts beside the app and registers; the gateway now balances over both.
      const sidecar = new MeshgateProcess([
        'sidecar',
        ...['--service', 'photo-service', '--id', 'photo-1', '--app', appUrl, '--control-plane', cpUrl],
        ...['--inbound-port', '0', '--outbound-port', '0', '--admin-port', '0', '--upstreams=', '--drain', '1s'],
      ]);
      processes.push(sidecar);
      await sidecar.waitFor('instance registered', STEP_TIMEOUT_MS);
      await eventually(
        () => outcomes.some((o) => o.viaSidecar),
        STEP_TIMEOUT_MS,
        'a response through the sidecar while the static endpoint still serves',
      );
      const beforeSwitch = outcomes.length;

      // Stage 3: the model drops the static endpoint: the sidecar's registration is the only way in.
      const put = await request(`${cpUrl}/config`, { method: 'PUT', body: photoModel(gatewayPort, null) });
      assert.equal(put.statusCode, 200, await put.body.text());
      await eventually(
        () =>
          outcomes.length - beforeSwitch > SETTLED_STREAK && outcomes.slice(-SETTLED_STREAK).every((o) => o.viaSidecar),
        STEP_TIMEOUT_MS,
        `${SETTLED_STREAK} responses in a row through the sidecar`,
      );
    } finally {
      await load.stop();
    }

    const failed = outcomes.filter((o) => !o.ok);
    assert.deepEqual(
      failed.slice(0, 5).map((o) => o.detail),
      [],
      `${failed.length} of ${outcomes.length} requests failed`,
    );
    assert.ok(!outcomes[0]!.viaSidecar, 'the first requests reached the app directly');
    assert.ok(
      outcomes.slice(-SETTLED_STREAK).every((o) => o.viaSidecar),
      'the last requests went through the sidecar',
    );
  });
});
