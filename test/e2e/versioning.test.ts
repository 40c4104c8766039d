/**
 * docs/versioning.md's example config, as written, through the real CLI: each of the three ways of
 * selecting a version (path prefix, Accept-Version header, query parameter) reaches the right route and
 * upstream, with its version's lifecycle headers and no others.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { MeshgateProcess, repoRoot } from '../helpers/process.ts';
import { startUpstream, type Upstream } from '../helpers/servers.ts';

/** The first ```yaml block of docs/versioning.md that is a whole config. */
function exampleConfig(): string {
  const doc = readFileSync(join(repoRoot, 'docs/versioning.md'), 'utf8');
  const block = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => b.startsWith('listeners:'));
  assert.ok(block, 'docs/versioning.md has an example config');
  return `${block}admin: { port: 0 }\n`;
}

describe('API version selection (docs/versioning.md)', () => {
  let dir: string;
  let v1: Upstream;
  let v2: Upstream;
  let gw: MeshgateProcess;
  let base: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshgate-versioning-'));
    v1 = await startUpstream(undefined, 'v1');
    v2 = await startUpstream(undefined, 'v2');
    const file = join(dir, 'gateway.yaml');
    writeFileSync(file, exampleConfig());
    gw = new MeshgateProcess(['gateway', '--config', file, '--workers', '0', '--no-watch'], {
      PORT: '0',
      PROPERTY_V1_URL: v1.url,
      PROPERTY_V2_URL: v2.url,
    });
    const started = await gw.waitFor('gateway started');
    base = `http://127.0.0.1:${(started.listeners as Record<string, number>).public}`;
  });
  after(async () => {
    await gw?.stop();
    await v1.close();
    await v2.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function get(path: string, headers: Record<string, string> = {}) {
    const res = await request(`${base}${path}`, { headers });
    await res.body.dump();
    assert.equal(res.statusCode, 200, path);
    const h = res.headers;
    return { upstream: h['x-upstream'], deprecation: h.deprecation, sunset: h.sunset, link: h.link };
  }

  it('by path prefix: /api/v1 is the deprecated v1 with all its headers, /api/v2 is v2 with none', async () => {
    assert.deepEqual(await get('/api/v1/properties/42'), {
      upstream: 'v1',
      deprecation: '@1767225600',
      sunset: 'Thu, 31 Dec 2026 23:59:59 GMT',
      link: '</api/v2/properties>; rel="successor-version", <https://developer.example.com/property-api/v1>; rel="deprecation"; type="text/html"',
    });
    assert.deepEqual(await get('/api/v2/properties/42'), {
      upstream: 'v2',
      deprecation: undefined,
      sunset: undefined,
      link: undefined,
    });
  });

  it('by Accept-Version header: v2 with the header, v1 without it or with another value', async () => {
    assert.deepEqual(await get('/listings/7', { 'accept-version': 'v2' }), {
      upstream: 'v2',
      deprecation: undefined,
      sunset: undefined,
      link: undefined,
    });
    for (const headers of [{}, { 'accept-version': 'v1' }] as Record<string, string>[])
      assert.deepEqual(await get('/listings/7', headers), {
        upstream: 'v1',
        deprecation: '@1772323200',
        sunset: undefined,
        link: '</listings>; rel="successor-version"',
      });
  });

  it('by query parameter: ?version=2 is v2, anything else v1', async () => {
    assert.equal((await get('/search?q=loft&version=2')).upstream, 'v2');
    const one = await get('/search?q=loft&version=1');
    assert.equal(one.upstream, 'v1');
    assert.equal(one.sunset, 'Fri, 01 Jan 2027 00:00:00 GMT');
    assert.equal((await get('/search')).upstream, 'v1');
  });
});
