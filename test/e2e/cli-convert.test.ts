/**
 * `meshgate convert`, `meshgate validate` and `meshgate proxy-config` on Istio files, as a user runs
 * them: real child processes on the pinned Node, real files; the converted output goes back through
 * `validate`, and a proxy serving it shows each object's origin.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { parse } from 'yaml';
import { MeshgateProcess, runMeshgate } from '../helpers/process.ts';
import { startGateway, startUpstream, testListenerEngine } from '../helpers/servers.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FIXTURES = join(ROOT, 'test', 'fixtures', 'istio');

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'meshgate-convert-'));
});
after(() => rm(dir, { recursive: true, force: true }));

const UNSUPPORTED = [
  'apiVersion: networking.istio.io/v1beta1',
  'kind: VirtualService',
  'metadata: { name: shop }',
  'spec:',
  '  http:',
  '  - route: [{ destination: { host: shop } }]',
  '    corsPolicy: { allowOrigins: [{ exact: "*" }] }',
  '---',
  'apiVersion: networking.istio.io/v1beta1',
  'kind: ServiceEntry',
  'metadata: { name: shop }',
  'spec: { hosts: [shop], ports: [{ number: 80, name: http }], resolution: DNS }',
  '',
].join('\n');

describe('meshgate convert', { concurrency: true }, () => {
  test('prints valid meshgate config with a comment naming each source object', async () => {
    const out = join(dir, 'reviews.meshgate.yaml');
    const run = await runMeshgate(['convert', join(FIXTURES, 'reviews.yaml'), '--output', out]);
    assert.equal(run.code, 0, run.stderr);
    const text = await readFile(out, 'utf8');
    assert.match(
      text,
      /^ {2}# from istio:VirtualService\/default\/reviews http\[0\] \(.*reviews\.yaml:28\)\n {2}- name: reviews-api$/m,
    );
    assert.match(text, /^ {2}# from istio:Gateway\/default\/public servers\[0\]/m);
    assert.match(text, /^ {2}# from istio:ServiceEntry\/default\/reviews \+ istio:DestinationRule\/default\/reviews/m);
    assert.match(text, /^ {2}# from istio:AuthorizationPolicy\/default\/reviews-readers/m);
    const config = parse(text) as { routes: { name: string }[] };
    assert.equal(config.routes.length, 6);
    const check = await runMeshgate(['validate', out]);
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /valid \(1 listeners, 1 services, 6 routes\)/);
  });

  test('refuses unsupported fields with their file, line and column; --allow-unsupported lists them and converts the rest', async () => {
    const file = join(dir, 'unsupported.yaml');
    await writeFile(file, UNSUPPORTED);
    const refused = await runMeshgate(['convert', file]);
    assert.equal(refused.code, 1);
    assert.equal(refused.stdout, '');
    assert.match(
      refused.stderr,
      new RegExp(`${file}:7:5: istio:VirtualService/default/shop spec\\.http\\[0\\]\\.corsPolicy: `),
    );
    const allowed = await runMeshgate(['convert', file, '--allow-unsupported', '--listen', '127.0.0.1:18080']);
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.match(
      allowed.stdout,
      /^# Left out \(not supported, loaded with --allow-unsupported\):\n# {3}.*:7:5: .*corsPolicy/m,
    );
    const config = parse(allowed.stdout) as { listeners: { address: string; port: number }[] };
    assert.deepEqual(
      config.listeners.map((l) => [l.address, l.port]),
      [['127.0.0.1', 18080]],
    );
  });

  test('converts RequestAuthentications to the jwt plugin, and refuses rules a workload cannot hold at their place', async () => {
    const file = join(dir, 'request-auth.yaml');
    const lines = [
      'apiVersion: networking.istio.io/v1',
      'kind: ServiceEntry',
      'metadata: { name: reviews }',
      'spec: { hosts: [reviews], ports: [{ number: 80, name: http }], resolution: DNS }',
      '---',
      'apiVersion: security.istio.io/v1',
      'kind: RequestAuthentication',
      'metadata: { name: mesh, namespace: istio-system }',
      'spec:',
      '  jwtRules: [{ issuer: "https://idp.example", jwksUri: "https://idp.example/jwks.json" }]',
      '---',
      'apiVersion: security.istio.io/v1beta1',
      'kind: RequestAuthentication',
      'metadata: { name: reviews }',
      'spec:',
      '  selector: { matchLabels: { app: reviews } }',
      '  jwtRules:',
      '  - issuer: partner',
      '    jwksUri: https://partner.example/jwks.json',
      '',
    ];
    await writeFile(file, lines.join('\n'));
    const out = join(dir, 'request-auth.meshgate.yaml');
    const run = await runMeshgate(['convert', file, '--output', out]);
    assert.equal(run.code, 0, run.stderr);
    const text = await readFile(out, 'utf8');
    assert.match(
      text,
      /^ {2}# from istio:ServiceEntry\/default\/reviews \+ istio:RequestAuthentication\/default\/reviews /m,
    );
    const config = parse(text) as {
      plugins: { name: string; config: { issuers: { issuer: string }[]; optional: boolean } }[];
      services: { name: string; plugins: { config: { issuers: { issuer: string }[] } }[] }[];
    };
    assert.deepEqual(
      config.plugins.map((p) => [p.name, p.config.optional, p.config.issuers.map((i) => i.issuer)]),
      [['jwt', true, ['https://idp.example']]],
    );
    assert.deepEqual(
      config.services[0]!.plugins[0]!.config.issuers.map((i) => i.issuer),
      ['https://idp.example', 'partner'],
    );
    const check = await runMeshgate(['validate', out]);
    assert.equal(check.code, 0, check.stderr);

    lines.splice(19, 0, '    fromHeaders: [{ name: x-jwt }]');
    await writeFile(file, lines.join('\n'));
    const refused = await runMeshgate(['convert', file]);
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      new RegExp(
        `${file}:20:5: istio:RequestAuthentication/default/reviews spec\\.jwtRules\\[0\\]\\.fromHeaders: tokenFrom: `,
      ),
    );
  });

  test('--from istio on a file without Istio resources is an error; bad usage exits 2', async () => {
    const native = join(dir, 'native.yaml');
    await writeFile(native, 'services: []\n');
    const run = await runMeshgate(['convert', '--from', 'istio', native]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /not istio config/);
    assert.equal((await runMeshgate(['convert'])).code, 2);
    assert.equal((await runMeshgate(['convert', '--from', 'nginx', native])).code, 2);
    assert.equal((await runMeshgate(['convert', native, '--listen', 'nowhere'])).code, 2);
  });
});

describe('meshgate validate on Istio files', { concurrency: true }, () => {
  test('checks a directory mixing Istio resources and a native file, as the control plane reads it', async () => {
    const mixed = await mkdtemp(join(dir, 'mixed-'));
    for (const name of ['property-service-virtualservice.yaml', 'property-service-destinationrule.yaml'])
      await copyFile(join(FIXTURES, name), join(mixed, name));
    await writeFile(
      join(mixed, 'services.yaml'),
      'services:\n  - name: property-service\n    endpoints: [{ url: "http://127.0.0.1:9", labels: { version: v1 } }]\n',
    );
    const run = await runMeshgate(['validate', mixed]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /valid \(1 listeners, 1 services, 2 routes\)/);
  });

  test('reports an unsupported field at its position and exits 1, or warns with --allow-unsupported', async () => {
    const file = join(dir, 'validate-unsupported.yaml');
    await writeFile(file, UNSUPPORTED);
    const refused = await runMeshgate(['validate', file]);
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      /:7:5: istio:VirtualService\/default\/shop spec\.http\[0\]\.corsPolicy: corsPolicy is not supported/,
    );
    const allowed = await runMeshgate(['validate', file, '--allow-unsupported']);
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.match(allowed.stderr, /^warning: .*:7:5: .*corsPolicy.*\(left out\)$/m);
  });
});

describe('meshgate proxy-config on converted config', () => {
  test('shows each route’s and service’s origin', async () => {
    const out = join(dir, 'canary.meshgate.yaml');
    const run = await runMeshgate([
      'convert',
      join(FIXTURES, 'property-service-virtualservice.yaml'),
      join(FIXTURES, 'property-service-destinationrule.yaml'),
      '--output',
      out,
    ]);
    assert.equal(run.code, 0, run.stderr);
    const config = parse(await readFile(out, 'utf8')) as Record<string, unknown>;
    delete config.listeners;
    const gateway = await startGateway(config);
    try {
      const routes = await runMeshgate(['proxy-config', 'routes', '--admin', gateway.adminUrl]);
      assert.equal(routes.code, 0, routes.stderr);
      assert.match(routes.stdout, /ORIGIN/);
      assert.match(routes.stdout, /property-service-1 .*istio:VirtualService\/default\/property-service http\[1\]/);
      const services = await runMeshgate(['proxy-config', 'services', '--admin', gateway.adminUrl, '-o', 'json']);
      const view = JSON.parse(services.stdout) as { services: { name: string; origin?: string }[] };
      assert.deepEqual(
        view.services.map((s) => [s.name, s.origin]),
        [['property-service', 'istio:DestinationRule/default/property-service']],
      );
      // The engine serving each listener's HTTP/1.1: lean for a plain one (unless the suite names node).
      const listeners = await runMeshgate(['proxy-config', 'listeners', '--admin', gateway.adminUrl]);
      assert.equal(listeners.code, 0, listeners.stderr);
      assert.match(listeners.stdout, /^LISTENER +ADDRESS +PORT +ENGINE +ROUTES/m);
      assert.match(listeners.stdout, new RegExp(`^main .* ${testListenerEngine()} +property-service-0`, 'm'));
    } finally {
      await gateway.close();
    }
  });
});

describe('meshgate gateway on Istio files', () => {
  test('serves a directory of Istio resources beside a native file, on --listen', async () => {
    const v1 = await startUpstream(undefined, 'v1');
    const v2 = await startUpstream(undefined, 'v2');
    const deploy = await mkdtemp(join(dir, 'deploy-'));
    for (const name of ['property-service-virtualservice.yaml', 'property-service-destinationrule.yaml'])
      await copyFile(join(FIXTURES, name), join(deploy, name));
    await writeFile(
      join(deploy, 'services.yaml'),
      [
        'admin: { port: 0 }',
        'services:',
        '  - name: property-service',
        '    endpoints:',
        `      - { url: "${v1.url}", labels: { version: v1 } }`,
        `      - { url: "${v2.url}", labels: { version: v2 } }`,
        '',
      ].join('\n'),
    );
    const gw = new MeshgateProcess(['gateway', '--config', deploy, '--listen', '127.0.0.1:0', '--workers', '0']);
    try {
      const started = await gw.waitFor('gateway started');
      const port = (started.listeners as Record<string, number>)['istio-ingress'];
      assert.ok(port, JSON.stringify(started));
      const canary = await request(`http://127.0.0.1:${port}/api/v1/properties/1`, { headers: { canary: 'true' } });
      await canary.body.dump();
      assert.equal(canary.headers['x-upstream'], 'v2');
      const plain = await request(`http://127.0.0.1:${port}/api/v1/properties/1`);
      await plain.body.dump();
      assert.equal(plain.statusCode, 200);
    } finally {
      await gw.stop();
      await v1.close();
      await v2.close();
    }
  });
});

describe('the control plane on Istio files', () => {
  test('takes a directory of Istio resources beside a native file as its model, each object with its origin', async () => {
    const models = await mkdtemp(join(dir, 'control-plane-'));
    for (const name of ['property-service-virtualservice.yaml', 'property-service-destinationrule.yaml'])
      await copyFile(join(FIXTURES, name), join(models, name));
    await writeFile(
      join(models, 'search.yaml'),
      [
        'services: [{ name: search-service }]',
        'routes: [{ name: search, match: { path: /api/v1/search/* }, service: search-service }]',
        '',
      ].join('\n'),
    );
    const cp = new MeshgateProcess([
      ...['control-plane', '--config', models, '--port', '0', '--warmup', '0'],
      ...['--state-dir', join(models, 'state')],
    ]);
    try {
      const started = await cp.waitFor('control plane started', 20_000);
      const res = await request(`http://127.0.0.1:${started.port}/config`);
      assert.equal(res.statusCode, 200);
      type Model = Record<string, { name: string; origin?: string; subsets?: unknown }[] | undefined>;
      const model = ((await res.body.json()) as { config: Model }).config;
      assert.deepEqual(
        model.services!.map((s) => [s.name, s.origin ?? null]),
        [
          ['property-service', 'istio:DestinationRule/default/property-service'],
          ['search-service', null],
        ],
      );
      assert.deepEqual(model.services![0]!.subsets, { v1: { version: 'v1' }, v2: { version: 'v2' } });
      assert.deepEqual(
        model.routes!.map((r) => [r.name, r.origin ?? null]),
        [
          ['property-service-0', 'istio:VirtualService/default/property-service http[0]'],
          ['property-service-1', 'istio:VirtualService/default/property-service http[1]'],
          ['search', null],
        ],
      );
      assert.equal(model.listeners, undefined, 'the control plane’s listeners are its model’s own');
    } finally {
      await cp.stop();
    }
  });
});
