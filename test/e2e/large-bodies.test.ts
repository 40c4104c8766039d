/**
 * Acceptance: a 1 GiB upload and a 1 GiB download pass through with the proxy's peak RSS under
 * 150 MiB: bodies stream with backpressure, never buffered whole. The proxy is the worker process
 * that carries the bytes; the primary (config loading and validation) is reported beside it. And an
 * upstream that reads slower than the client sends holds the client back: the proxy stops reading.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { it } from 'node:test';
import { request } from 'undici';
import { MeshgateProcess } from '../helpers/process.ts';
import { startUpstream, testClientYaml, testEngineYaml } from '../helpers/servers.ts';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const CHUNK = Buffer.alloc(64 * 1024, 0x61);

function bytes(total: number, taken?: (sent: number) => void): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= total) this.push(null);
      else {
        sent += CHUNK.length;
        taken?.(sent);
        this.push(CHUNK);
      }
    },
  });
}

function gibibyte(): Readable {
  return bytes(GiB);
}

/** A gateway process (one worker) in front of `upstream` while `use` runs; both are stopped after. */
async function throughGateway(
  upstream: { url: string; close(): Promise<void> },
  use: (origin: string, gw: MeshgateProcess, worker: number) => Promise<void>,
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-'));
  const file = join(dir, 'gateway.yaml');
  writeFileSync(
    file,
    `listeners: [{ name: main, port: 0, address: 127.0.0.1${testEngineYaml()} }]
admin: { port: 0 }
services: [{ name: svc, endpoints: [{ url: ${upstream.url} }], timeouts: { request: 60s, idle: 30s }${testClientYaml()} }]
routes: [{ name: all, service: svc }]
`,
  );
  const gw = new MeshgateProcess(['gateway', '--config', file, '--workers', '1']);
  try {
    const started = await gw.waitFor('gateway started');
    const [worker] = started.workers as number[];
    await use(`http://127.0.0.1:${(started.listeners as Record<string, number>).main}`, gw, worker!);
  } finally {
    await gw.stop();
    await upstream.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

it('streams 1 GiB each way with the proxy under 150 MiB peak RSS', { timeout: 180_000 }, async () => {
  const upstream = await startUpstream((req, res) => {
    if (req.method === 'POST') {
      let received = 0;
      req.on('data', (c: Buffer) => (received += c.length));
      req.on('end', () => res.end(String(received)));
    } else {
      res.writeHead(200, { 'content-length': String(GiB) });
      gibibyte().pipe(res);
    }
  });
  await throughGateway(upstream, async (origin, gw, worker) => {
    const down = await request(`${origin}/download`);
    let downloaded = 0;
    for await (const chunk of down.body) downloaded += (chunk as Buffer).length;
    assert.equal(downloaded, GiB);

    const up = await request(`${origin}/upload`, {
      method: 'POST',
      body: gibibyte(),
      headers: { 'content-length': String(GiB) },
    });
    assert.equal(await up.body.text(), String(GiB));

    const peak = gw.peakRssMiB(worker);
    const primary = gw.peakRssMiB();
    assert.ok(peak < 150, `proxy (worker) peak RSS ${peak.toFixed(1)} MiB; primary ${primary.toFixed(1)} MiB`);
    console.log(`# peak RSS: worker ${peak.toFixed(1)} MiB, primary ${primary.toFixed(1)} MiB`);
  });
});

it('an upstream that reads slowly holds the client back: the proxy stops reading, it does not buffer', {
  timeout: 120_000,
}, async () => {
  const total = 256 * MiB;
  let received = 0;
  const upstream = await startUpstream((req, res) => {
    // ~50 MB/s: a pause of 20 ms after each MiB read.
    let sinceBreak = 0;
    req.on('data', (c: Buffer) => {
      received += c.length;
      sinceBreak += c.length;
      if (sinceBreak >= MiB) {
        sinceBreak = 0;
        req.pause();
        setTimeout(() => req.resume(), 20);
      }
    });
    req.on('end', () => res.end(String(received)));
  });
  await throughGateway(upstream, async (origin) => {
    // Sent but not yet read by the upstream: socket buffers on both hops (a few MiB each on loopback)
    // and the proxy's own. Read without pause, the proxy would hold most of the 256 MiB.
    let mostInFlight = 0;
    const up = await request(`${origin}/upload`, {
      method: 'POST',
      body: bytes(total, (sent) => (mostInFlight = Math.max(mostInFlight, sent - received))),
      headers: { 'content-length': String(total) },
    });
    assert.equal(await up.body.text(), String(total));
    assert.ok(mostInFlight < 64 * MiB, `up to ${(mostInFlight / MiB).toFixed(1)} MiB sent and not yet received`);
    console.log(`# most in flight: ${(mostInFlight / MiB).toFixed(1)} MiB`);
  });
});
