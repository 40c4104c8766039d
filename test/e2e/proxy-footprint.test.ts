/**
 * What real proxy processes load (docs/benchmarks.md, "Sidecars" and "The demo's proxies"): a sidecar,
 * and a gateway under a control plane, load none of the TypeBox schemas, converters, YAML parser,
 * validator compiler, control-plane or dashboard code, no OpenTelemetry package (a traced proxy sends
 * its spans itself), no Node-bundled undici, and no plugin their config does not name; a plugin a
 * config comes to name is imported then, and the config applies. A module-load hook (node:module
 * registerHooks, given with --import) records every module the process loads, and on SIGUSR2 the
 * built-in modules Node has loaded so far.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { parseModel } from '../../src/control-plane/model/model.ts';
import { createPluginCatalog } from '../../src/plugins/index.ts';
import { type OtlpReceiver, startOtlpReceiver } from '../../src/testing/otlp.ts';
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
process.on('SIGUSR2', () => {
  const builtins = process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => 'builtin:' + m.slice(13));
  appendFileSync(out, builtins.join('\\n') + '\\nbuiltins listed\\n');
});
`;

/** Code no proxy needs at idle; a match in what a proxy loaded fails the test. */
const UNWANTED = [
  /\/@sinclair\/typebox\//,
  /\/node_modules\/yaml\//,
  /\/node_modules\/ajv\/(?!dist\/runtime\/)/,
  /\/dist\/compat\//,
  /\/dist\/control-plane\//,
  /\/dist\/admin\/dashboard\//,
  /\/dist\/config\/sources\//,
  /\/dist\/proxy\/cluster\//,
  /\/dist\/api\/(config|mesh)\.js$/,
  /\/dist\/plugins\/[^/]+\/plugin\.js$/,
  /\/@opentelemetry\//,
  // node:http's lazy WebSocket, read by an ESM import of node:http (core/node-http.ts).
  /^builtin:internal\/deps\/undici\//,
];

/** The modules `proc` has loaded, with the built-ins it has loaded so far (asked for with SIGUSR2). */
async function modulesOf(proc: MeshgateProcess, log: string): Promise<string[]> {
  const read = () => readFileSync(log, 'utf8').split('\n').filter(Boolean);
  const listed = read().filter((l) => l === 'builtins listed').length;
  proc.child.kill('SIGUSR2');
  return eventually(
    () => {
      const lines = read();
      return lines.filter((l) => l === 'builtins listed').length > listed ? lines : undefined;
    },
    10_000,
    'the process to list its built-in modules',
  );
}

function modelOf(yaml: string) {
  const parsed = parseModel([{ file: 'mesh.yaml', text: yaml }], 'mesh.yaml', null, { catalog: createPluginCatalog() });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
  return parsed.model;
}

/** A directory with the module-load hook, and the environment that makes a process log its modules there. */
function hooked(): { dir: string; log: string; env: Record<string, string> } {
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-footprint-'));
  writeFileSync(join(dir, 'hook.mjs'), HOOK);
  const log = join(dir, 'modules.txt');
  writeFileSync(log, '');
  return { dir, log, env: { NODE_OPTIONS: `--import=${join(dir, 'hook.mjs')}`, MESHGATE_TEST_MODULE_LOG: log } };
}

/** An app on 127.0.0.1 answering `ok`. */
async function okApp(): Promise<Server> {
  const app = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  return app;
}

describe('a sidecar process loads only what its config uses', () => {
  let dir: string;
  let env: Record<string, string>;
  let logFile: string;
  let app: Server;
  let cp: TestControlPlane;
  let sidecar: MeshgateProcess;
  const log = () => logFile;
  const loaded = () => readFileSync(log(), 'utf8').split('\n').filter(Boolean);

  before(async () => {
    ({ dir, env, log: logFile } = hooked());
    app = await okApp();
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
      env,
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
    const modules = await modulesOf(sidecar, log());
    assert.ok(
      modules.some((m) => m.endsWith('/dist/cli/sidecar.js')),
      'the hook saw the process',
    );
    assert.ok(modules.includes('builtin:http'), 'the built-ins were listed');
    const found = modules.filter((m) => UNWANTED.some((u) => u.test(m)));
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

describe('a gateway under a control plane loads only what its config uses', () => {
  let dir: string;
  let env: Record<string, string>;
  let logFile: string;
  let app: Server;
  let receiver: OtlpReceiver;
  let cp: TestControlPlane;
  let gateway: MeshgateProcess;
  const log = () => logFile;

  before(async () => {
    ({ dir, env, log: logFile } = hooked());
    app = await okApp();
    receiver = await startOtlpReceiver();
    cp = await startControlPlane({
      model: modelOf(
        [
          'listeners:',
          '  - { name: public, port: 0, address: 127.0.0.1 }',
          'observability:',
          `  tracing: { endpoint: "${receiver.url}", samplingRatio: 1 }`,
          'services:',
          '  - name: api',
          `    endpoints: [{ url: "http://127.0.0.1:${(app.address() as AddressInfo).port}" }]`,
          'routes:',
          '  - { name: api, match: { path: /api/* }, service: api, plugins: [{ name: request-id, config: { echo: true } }] }',
        ].join('\n'),
      ),
    });
    gateway = new MeshgateProcess(
      ['gateway', '--control-plane', cp.url, '--id', 'gw-1', '--workers', '0', '--admin-port', '0'],
      env,
    );
  });
  after(async () => {
    await gateway?.stop();
    await cp?.close();
    await receiver?.close();
    await new Promise((r) => app?.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('serving and tracing, it has loaded no schema library, compiler, converter, dashboard, SDK or unnamed plugin', async () => {
    const started = await gateway.waitFor('gateway started', 30_000);
    const port = (started.listeners as Record<string, number>).public;
    const res = await request(`http://127.0.0.1:${port}/api/x`);
    assert.equal(res.statusCode, 200);
    assert.equal(await res.body.text(), 'ok');
    assert.ok(res.headers['x-request-id'], 'the plugin ran');
    // Its span reached the collector: the tracing code ran.
    await receiver.waitFor((spans) => spans.some((s) => s.attributes['meshgate.route'] === 'api'));
    const modules = await modulesOf(gateway, log());
    assert.ok(
      modules.some((m) => m.endsWith('/dist/cli/gateway.js')),
      'the hook saw the process',
    );
    assert.ok(modules.includes('builtin:http'), 'the built-ins were listed');
    // Its one plugin, checked by the validator compiled ahead of time (no Ajv compiler), is all it imported.
    assert.ok(modules.some((m) => m.endsWith('/schema/plugins.validate.js')));
    const found = modules.filter(
      (m) =>
        (UNWANTED.some((u) => u.test(m)) && !m.endsWith('/dist/plugins/request-id/plugin.js')) ||
        m.endsWith('/dist/cli/gateway-file.js'),
    );
    assert.deepEqual(found, []);
  });
});
