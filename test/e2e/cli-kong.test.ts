/**
 * `meshgate convert`, `meshgate validate` and `meshgate gateway` on Kong declarative files, as a user
 * runs them: real child processes on the pinned Node, real files.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose';
import { request } from 'undici';
import { parse } from 'yaml';
import { MeshgateProcess, runMeshgate } from '../helpers/process.ts';
import { startUpstream } from '../helpers/servers.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FIXTURES = join(ROOT, 'test', 'fixtures', 'kong');

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'meshgate-kong-'));
});
after(() => rm(dir, { recursive: true, force: true }));

const UNSUPPORTED = [
  '_format_version: "3.0"',
  'services:',
  '- name: shop',
  '  url: http://shop.internal:8080',
  '  routes:',
  '  - name: shop-api',
  '    paths: [/api]',
  '    snis: [shop.example.com]',
  '',
].join('\n');

describe('meshgate convert --from kong', { concurrency: true }, () => {
  test('prints valid meshgate config with a comment naming each Kong entity', async () => {
    const out = join(dir, 'shop.meshgate.yaml');
    const run = await runMeshgate(['convert', '--from', 'kong', join(FIXTURES, 'shop.yaml'), '--output', out]);
    assert.equal(run.code, 0, run.stderr);
    const text = await readFile(out, 'utf8');
    assert.match(
      text,
      /^ {2}# from kong:route\/orders-api \(services\[0\]\.routes\[0\]\) \(.*shop\.yaml:\d+\)\n {2}- name: orders-api$/m,
    );
    assert.match(text, /^ {2}# from kong:service\/orders \(services\[0\]\) \+ kong:upstream\/orders-upstream/m);
    assert.match(text, /^ {2}# from kong:consumers\[0\]/m);
    const config = parse(text) as { routes: { name: string }[]; listeners: { port: number }[] };
    assert.equal(config.routes.length, 4);
    assert.deepEqual(
      config.listeners.map((l) => l.port),
      [8000],
      'Kong’s proxy port',
    );
    const check = await runMeshgate(['validate', out]);
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /valid \(1 listeners, 3 services, 4 routes\)/);
  });

  test('validate names an unsupported field with its file, line and column; --allow-unsupported warns and loads the rest', async () => {
    const file = join(dir, 'kong-unsupported.yaml');
    await writeFile(file, UNSUPPORTED);
    const refused = await runMeshgate(['validate', file]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /:8:5: kong:services\[0\]\.routes\[0\]\.snis: routing by snis is not supported/);
    const allowed = await runMeshgate(['validate', file, '--allow-unsupported']);
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.match(allowed.stderr, /^warning: .*:8:5: .*snis.*\(left out\)$/m);
  });
});

describe('meshgate gateway on a Kong file', () => {
  test('serves the issue’s kong.yaml on --listen: a JWT required, Kong’s rate-limit headers; proxy-config shows origins', async () => {
    const upstream = await startUpstream(undefined, 'property-service');
    const deploy = await mkdtemp(join(dir, 'deploy-'));
    const secret = 'cli-test-secret-of-at-least-32-characters';
    const kong = await readFile(join(FIXTURES, 'property-service.yaml'), 'utf8');
    await writeFile(
      join(deploy, 'kong.yaml'),
      [
        kong.trimEnd(),
        'upstreams:',
        '- name: property-service',
        `  targets: [{ target: "127.0.0.1:${upstream.port}" }]`,
        'consumers:',
        '- username: app',
        `  jwt_secrets: [{ key: app-key, secret: "${secret}" }]`,
        '',
      ].join('\n'),
    );
    await writeFile(join(deploy, 'admin.yaml'), 'admin: { port: 0 }\n');
    const gw = new MeshgateProcess(['gateway', '--config', deploy, '--listen', '127.0.0.1:0', '--workers', '0']);
    try {
      const started = await gw.waitFor('gateway started');
      const port = (started.listeners as Record<string, number>)['kong-proxy'];
      assert.ok(port, JSON.stringify(started));
      const denied = await request(`http://127.0.0.1:${port}/api/v1/properties`);
      await denied.body.dump();
      assert.equal(denied.statusCode, 401);
      const token = await new SignJWT({})
        .setProtectedHeader({ alg: 'HS256' })
        .setIssuer('app-key')
        .sign(new TextEncoder().encode(secret));
      const ok = await request(`http://127.0.0.1:${port}/api/v1/properties`, {
        headers: { authorization: `Bearer ${token}` },
      });
      await ok.body.dump();
      assert.equal(ok.statusCode, 200);
      assert.equal(ok.headers['x-ratelimit-limit-minute'], '100');
      assert.equal(ok.headers['x-ratelimit-limit-hour'], '1000');
      assert.equal(upstream.seen.at(-1)?.url, '/');
      const admin = `http://127.0.0.1:${started.admin}`;
      const routes = await runMeshgate(['proxy-config', 'routes', '--admin', admin]);
      assert.equal(routes.code, 0, routes.stderr);
      assert.match(routes.stdout, /property-search .*kong:route\/property-search \(services\[0\]\.routes\[0\]\)/);
      const services = await runMeshgate(['proxy-config', 'services', '--admin', admin, '-o', 'json']);
      assert.equal(services.code, 0, services.stderr);
      assert.deepEqual(
        (JSON.parse(services.stdout) as { services: { name: string; origin?: string }[] }).services.map((v) => [
          v.name,
          v.origin,
        ]),
        [['property-service', 'kong:service/property-service (services[0]) + kong:upstream/property-service']],
      );
    } finally {
      await gw.stop();
      await upstream.close();
    }
  });
});

describe('the control plane on a Kong file', () => {
  test('takes the issue’s kong.yaml from its config directory as its model, each object with its origin', async () => {
    const models = await mkdtemp(join(dir, 'control-plane-'));
    await writeFile(join(models, 'kong.yaml'), await readFile(join(FIXTURES, 'property-service.yaml'), 'utf8'));
    const cp = new MeshgateProcess([
      ...['control-plane', '--config', models, '--port', '0', '--warmup', '0'],
      ...['--state-dir', join(models, 'state')],
    ]);
    try {
      const started = await cp.waitFor('control plane started', 20_000);
      const res = await request(`http://127.0.0.1:${started.port}/config`);
      assert.equal(res.statusCode, 200);
      const model = ((await res.body.json()) as { config: Record<string, { name: string; origin?: string }[]> }).config;
      assert.deepEqual(
        model.services!.map((s) => [s.name, s.origin]),
        [['property-service', 'kong:service/property-service (services[0])']],
      );
      assert.equal(model.routes!.length, 1);
      assert.match(model.routes![0]!.origin ?? '', /^kong:route\/property-search /);
    } finally {
      await cp.stop();
    }
  });
});
