/**
 * Acceptance: a 1 GiB upload and a 1 GiB download pass through with the proxy's peak RSS under
 * 150 MiB: bodies stream with backpressure, never buffered whole. The proxy is the worker process
 * that carries the bytes; the primary (config loading and validation) is reported beside it.
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

const GiB = 1024 ** 3;
const CHUNK = Buffer.alloc(64 * 1024, 0x61);

function gibibyte(): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= GiB) this.push(null);
      else {
        sent += CHUNK.length;
        this.push(CHUNK);
      }
    },
  });
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
    const origin = `http://127.0.0.1:${(started.listeners as Record<string, number>).main}`;

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
  } finally {
    await gw.stop();
    await upstream.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
