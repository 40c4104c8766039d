/**
 * The cache's hit ratio per worker count: `store: memory` caches per worker process, so each worker
 * misses once per key and TTL. Starts a real upstream and `meshgate gateway --workers N` (N from the
 * arguments, default `1 2`), sends REQUESTS GETs over fresh connections (so the workers take turns)
 * spread at random over KEYS paths, and prints a Markdown table of X-Cache-Status hits.
 *
 *   node bench/cache-workers.ts            # workers 1 and 2
 *   KEYS=50 REQUESTS=1000 node bench/cache-workers.ts 1 2 4
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { MeshgateProcess } from '../test/helpers/process.ts';

const keys = Number(process.env.KEYS ?? 20);
const requests = Number(process.env.REQUESTS ?? 400);
const counts = process.argv.slice(2).map(Number);

const upstream = createServer((_req, res) => res.end('cached body'));
await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
const upstreamPort = (upstream.address() as AddressInfo).port;
const dir = mkdtempSync(join(tmpdir(), 'meshgate-cache-workers-'));
const file = join(dir, 'gw.yaml');
writeFileSync(
  file,
  `listeners: [{ name: main, port: 0, address: 127.0.0.1 }]
admin: { port: 0 }
services: [{ name: up, endpoints: [{ url: "http://127.0.0.1:${upstreamPort}" }] }]
routes:
  - { name: cached, match: { path: /c/* }, service: up, plugins: [{ name: cache, config: { ttl: 300s } }] }
`,
);

console.log(`| workers | requests | keys | hits | hit ratio | misses per key |`);
console.log(`|--:|--:|--:|--:|--:|--:|`);
for (const workers of counts.length > 0 ? counts : [1, 2]) {
  const gw = new MeshgateProcess(['gateway', '--no-watch', '--config', file, '--workers', String(workers)]);
  try {
    const started = await gw.waitFor('gateway started');
    const base = `http://127.0.0.1:${(started.listeners as Record<string, number>).main}`;
    let hits = 0;
    for (let i = 0; i < requests; i++) {
      // A random key: `i % keys` would send each key to the same worker every time (round-robin accept).
      const res = await request(`${base}/c/${Math.floor(Math.random() * keys)}`, { reset: true });
      await res.body.text();
      if (res.headers['x-cache-status'] === 'HIT') hits++;
    }
    const ratio = ((100 * hits) / requests).toFixed(1);
    console.log(
      `| ${workers} | ${requests} | ${keys} | ${hits} | ${ratio}% | ${((requests - hits) / keys).toFixed(1)} |`,
    );
  } finally {
    await gw.stop();
  }
}
upstream.close();
rmSync(dir, { recursive: true, force: true });
