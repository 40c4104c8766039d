/**
 * What a real sidecar process loads (docs/benchmarks.md, "Sidecars"): none of the TypeBox schemas,
 * converters, YAML parser, validator compiler or control-plane code, and no plugin its config does not
 * name; a plugin its config comes to name is imported then, and the config applies. A module-load hook
 * (node:module registerHooks, given with --import) records every module the process loads.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseModel } from '../../src/control-plane/model/model.ts';
import { createPluginCatalog } from '../../src/plugins/index.ts';
import { eventually, startControlPlane, type TestControlPlane } from '../helpers/mesh.ts';
import { MeshgateProcess } from '../helpers/process.ts';

const HOOK = `
import { registerHooks } from 'node:module';
import { appendFileSync } from 'node:fs';
const out = process.env.MESHGATE_TEST_MODULE_LOG;
registerHooks({
  load(url, context, next) {
    appendFileSync(out, url + '\\n');
    return next(url, context);
  },
});
`;

function modelOf(yaml: string) {
  const parsed = parseModel([{ file: 'mesh.yaml', text: yaml }], 'mesh.yaml', null, { catalog: createPluginCatalog() });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
  return parsed.model;
}

describe('a sidecar process loads only what its config uses', () => {
  let dir: string;
  let app: Server;
  let cp: TestControlPlane;
  let sidecar: MeshgateProcess;
  const log = () => join(dir, 'modules.txt');
  const loaded = () => readFileSync(log(), 'utf8').split('\n').filter(Boolean);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshgate-footprint-'));
    writeFileSync(join(dir, 'hook.mjs'), HOOK);
    writeFileSync(log(), '');
    app = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    cp = await startControlPlane({
      model: modelOf('services:\n  - { name: front, dependsOn: [photo] }\n  - { name: photo }\n'),
    });
    sidecar = new MeshgateProcess(
      [
        'sidecar',
        '--service',
        'front',
        '--id',
        'front-1',
        '--app',
        `http://127.0.0.1:${(app.address() as AddressInfo).port}`,
        '--control-plane',
        cp.url,
        '--inbound-port',
        '0',
        '--outbound-port',
        '0',
        '--admin-port',
        '0',
      ],
      { NODE_OPTIONS: `--import=${join(dir, 'hook.mjs')}`, MESHGATE_TEST_MODULE_LOG: log() },
    );
  });
  after(async () => {
    await sidecar?.stop();
    await cp?.close();
    await new Promise((r) => app?.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('registered and serving, it has loaded no schema library, converter, YAML, compiler or plugin', async () => {
    await sidecar.waitFor('instance registered', 30_000);
    const modules = loaded();
    assert.ok(
      modules.some((m) => m.endsWith('/dist/cli/sidecar.js')),
      'the hook saw the process',
    );
    const unwanted = [
      /\/@sinclair\/typebox\//,
      /\/node_modules\/yaml\//,
      /\/node_modules\/ajv\/(?!dist\/runtime\/)/,
      /\/dist\/compat\//,
      /\/dist\/control-plane\//,
      /\/dist\/api\/(config|mesh)\.js$/,
      /\/dist\/plugins\/[^/]+\/plugin\.js$/,
      /\/@opentelemetry\/sdk-/,
    ];
    const found = modules.filter((m) => unwanted.some((u) => u.test(m)));
    assert.deepEqual(found, []);
  });

  it('a plugin its config comes to name is imported then, and the config applies', async () => {
    const before = cp.cp.proxyStatus('front-1')!.ackedVersion;
    cp.cp.setModel(
      modelOf(
        [
          'services:',
          '  - name: front',
          '    dependsOn: [photo]',
          '  - name: photo',
          '    plugins: [{ name: request-id }]',
        ].join('\n'),
      ),
      'test',
    );
    const status = await eventually(
      () => {
        const s = cp.cp.proxyStatus('front-1')!;
        if (s.lastNack) throw new Error(JSON.stringify(s.lastNack));
        return s.state === 'SYNCED' && s.ackedVersion !== before ? s : undefined;
      },
      15_000,
      'the sidecar to apply the model naming request-id',
    );
    assert.ok(
      status.config?.services?.some((s) => s.plugins?.[0]?.name === 'request-id'),
      'its config names it',
    );
    const plugins = loaded().filter((m) => /\/dist\/plugins\/[^/]+\/plugin\.js$/.test(m));
    assert.deepEqual(
      plugins.map((m) => m.replace(/.*\/dist\/plugins\//, '')),
      ['request-id/plugin.js'],
    );
  });
});
