/**
 * Purges by URL and by path prefix reach every worker of a gateway (the admin API asks each worker
 * over IPC). Spawns `meshgate gateway --workers 2` from dist/.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { MeshgateProcess } from '../../../test/helpers/process.ts';
import { startUpstream, type Upstream } from '../../testing/servers.ts';

describe('cache purge with workers', () => {
  let upstream: Upstream;
  let gw: MeshgateProcess;
  let base = '';
  let admin = '';
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-cache-workers-test-'));

  before(async () => {
    upstream = await startUpstream((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`body of ${req.url}`);
    });
    const file = join(dir, 'gw.yaml');
    writeFileSync(
      file,
      `listeners: [{ name: main, port: 0, address: 127.0.0.1 }]
admin: { port: 0 }
services: [{ name: up, endpoints: [{ url: "${upstream.url}" }] }]
routes:
  - { name: cached, service: up, plugins: [{ name: cache, config: { ttl: 300s } }] }
`,
    );
    gw = new MeshgateProcess(['gateway', '--no-watch', '--config', file, '--workers', '2']);
    const started = await gw.waitFor('gateway started', 30_000);
    base = `http://127.0.0.1:${(started.listeners as Record<string, number>).main}`;
    admin = `http://127.0.0.1:${started.admin as number}`;
  });
  after(async () => {
    await gw?.stop();
    await upstream.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function get(path: string) {
    // A fresh connection each time, so both workers take requests.
    const res = await request(`${base}${path}`, { reset: true });
    await res.body.dump();
    return res.headers['x-cache-status'];
  }

  async function purge(query: string) {
    const res = await request(`${admin}/cache/cached?${query}`, { method: 'DELETE' });
    assert.equal(res.statusCode, 200);
    return ((await res.body.json()) as { removed: number }).removed;
  }

  it('removes one URL, then a path prefix, in every worker', async () => {
    // Each worker that takes a URL misses it once: the misses count the workers holding it.
    let heldA = 0;
    let heldB = 0;
    for (let i = 0; i < 10; i++) {
      if ((await get('/w/a?x=1&y=2')) === 'MISS') heldA++;
      if ((await get('/w/b/1')) === 'MISS') heldB++;
      if ((await get('/w/b/1')) === 'MISS') heldB++;
    }
    assert.ok(heldA >= 1 && heldB >= 1);
    assert.equal(await purge(`key=${encodeURIComponent('/w/a?y=2&x=1')}`), heldA, 'one entry per worker holding it');
    assert.equal(await get('/w/a?x=1&y=2'), 'MISS');
    assert.equal(await purge('prefix=/w/b/'), heldB);
  });
});
