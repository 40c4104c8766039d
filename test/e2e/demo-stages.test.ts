/**
 * `npm start -- --stage gateway|partial|mesh` (docs/adoption.md): the same system on its way into the mesh. At
 * each stage a property answered through the gateway carries its photos and valuation from the other
 * services, however they are reached; the banner lists only what runs; Ctrl-C stops it all.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { demoPorts } from '../../examples/proptech/ports.ts';
import { freeDemoOffset } from '../helpers/demo.ts';
import { nodeBin, repoRoot } from '../helpers/process.ts';

async function runStage(stage: string, check: (banner: string, gateway: string, token: string) => Promise<void>) {
  const offset = await freeDemoOffset();
  const env = { ...process.env };
  delete env.PROPTECH_JWT_SECRET;
  const child = spawn(nodeBin, ['examples/proptech/main.ts', '--stage', stage, '--port-offset', String(offset)], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (output += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (output += c));
  const exited = once(child, 'exit');
  try {
    const deadline = Date.now() + 40_000;
    while (!/^Ctrl-C stops everything\.$/m.test(output)) {
      if (child.exitCode !== null) assert.fail(`the demo exited (${child.exitCode}):\n${output}`);
      if (Date.now() > deadline) assert.fail(`no ready banner:\n${output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const token = /^Token .*:\n {2}(\S+)$/m.exec(output)![1]!;
    await check(output, `http://127.0.0.1:${demoPorts(offset).gateway}`, token);
  } finally {
    child.kill('SIGINT');
    const [code] = await exited;
    assert.equal(code, 0, output);
  }
}

async function property(gateway: string, token: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${gateway}/api/v1/properties/42`, {
    headers: { authorization: `Bearer ${token}`, ...headers },
  });
  assert.equal(res.status, 200);
  return (await res.json()) as {
    version: string;
    photos: unknown[] | null;
    valuation: unknown;
    unavailable?: string[];
  };
}

describe('npm start -- --stage', () => {
  it('gateway: the gateway alone, no control plane or sidecar, the apps calling each other directly', async () => {
    await runStage('gateway', async (banner, gateway, token) => {
      assert.match(banner, /^ {2}Stage +gateway:/m);
      assert.doesNotMatch(banner, /^ {2}(Control plane|Dashboard) /m);
      assert.doesNotMatch(banner, / sidecar$|\/status/m);
      const body = await property(gateway, token, { canary: 'true' });
      assert.equal(body.version, 'v2');
      assert.ok(Array.isArray(body.photos) && body.photos.length > 0, JSON.stringify(body));
      assert.ok(body.valuation, JSON.stringify(body));
      assert.equal(body.unavailable, undefined);
    });
  });

  it('partial: sidecars for property and photo only; the others reached directly', async () => {
    await runStage('partial', async (banner, gateway, token) => {
      assert.match(banner, /^ {2}Stage +partial:/m);
      const sidecars = banner.match(/ sidecar$/gm) ?? [];
      assert.equal(sidecars.length, 3, banner);
      assert.match(banner, /photo-service v1 sidecar/);
      assert.doesNotMatch(banner, /valuation-service v1 sidecar/);
      const body = await property(gateway, token);
      assert.ok(Array.isArray(body.photos) && body.photos.length > 0, JSON.stringify(body));
      assert.ok(body.valuation, JSON.stringify(body));
      assert.equal(body.unavailable, undefined);
      const search = await fetch(`${gateway}/api/v1/search/homes?city=austin`);
      const found = (await search.json()) as { neighborhood: unknown };
      assert.ok(found.neighborhood, 'search reached enrichment directly');
    });
  });

  it('mesh: a sidecar beside every instance, the control plane and its dashboard', async () => {
    await runStage('mesh', async (banner, gateway, token) => {
      assert.match(banner, /^ {2}Stage +mesh:/m);
      assert.match(banner, /^ {2}Dashboard +http:\/\/127\.0\.0\.1:\d+\/dashboard\/$/m);
      const sidecars = banner.match(/ sidecar$/gm) ?? [];
      assert.equal(sidecars.length, 6, banner);
      for (const service of ['valuation-service', 'search-service', 'enrichment-service'])
        assert.match(banner, new RegExp(`${service} v1 sidecar`));
      const body = await property(gateway, token);
      assert.ok(Array.isArray(body.photos) && body.photos.length > 0, JSON.stringify(body));
      assert.ok(body.valuation, JSON.stringify(body));
      assert.equal(body.unavailable, undefined);
    });
  });
});
