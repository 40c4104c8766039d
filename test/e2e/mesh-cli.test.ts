/**
 * The mesh commands as a user runs them: `meshgate analyze` on a seeded file and on a running control
 * plane, `meshgate status`, `meshgate control-plane` on a directory it watches, and the usage and
 * exit-code contract of every new command.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import type { ChangeRecord } from '../../src/api/mesh.ts';
import { MeshgateProcess, repoRoot, runMeshgate } from '../helpers/process.ts';
import { at } from '../helpers/text.ts';

const SEEDED_FILE = `${repoRoot}test/fixtures/analyze-seeded.yaml`;
const SEEDED = readFileSync(SEEDED_FILE, 'utf8').trimEnd().split('\n');

const meshgate = runMeshgate;

async function put(url: string, body: unknown) {
  const res = await request(url, {
    method: 'PUT',
    body: typeof body === 'string' ? body : JSON.stringify(body),
    headers: { 'content-type': 'application/json' },
  });
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
}

describe('meshgate analyze (files)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'meshgate-analyze-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('finds each seeded mistake with file:line:col, code and fix; exit 1', async () => {
    const file = SEEDED_FILE;
    const run = await meshgate(['analyze', file]);
    assert.equal(run.code, 1, run.stderr);
    const lines = run.stdout.split('\n');
    const expect = (code: string, where: string, text: RegExp) => {
      const i = lines.findIndex((l) => l.startsWith(`${file}:${where}: `) && l.includes(` ${code}: `));
      assert.ok(i !== -1, `${code} at ${where} in:\n${run.stdout}`);
      assert.match(lines[i]!, text);
      assert.match(lines[i + 1]!, /^ {4}fix: \S/);
    };
    const L = SEEDED;
    expect('MGA001', at(L, 'billing-service'), /error MGA001: routes\[4\]\.service: unknown service "billing-service"/);
    expect('MGA003', at(L, '{ version: v2 }'), /error MGA003: services\[0\]\.subsets\.v2: subset "v2"/);
    expect(
      'MGA004',
      at(L, '- { service: photo-service, subset: v1'),
      /error MGA004: routes\[2\]\.destinations: weights sum to 90/,
    );
    expect(
      'MGA005',
      at(L, '{ path: /photos/* }', 2),
      /warning MGA005: routes\[3\]\.match: route "photos-again" is never matched/,
    );
    expect(
      'MGA006',
      at(L, '{ path: /api/v1/properties/*, headers'),
      /warning MGA006: routes\[1\]\.match: route "property-canary" never sees GET, POST, PUT, DELETE/,
    );
    expect(
      'MGA007',
      at(L, '{ attempts: 3 }'),
      /warning MGA007: services\[0\]\.retries: .*without retries\.perTryTimeout/,
    );
    expect('MGA009', at(L, '{ consecutiveErrors'), /warning MGA009: services\[1\]\.outlierDetection: .*one instance/);
    expect('MGA011', at(L, 'photo-servce'), /warning MGA011: routes\[5\]\.match\.hosts\[0\]: host "photo-servce"/);
    expect('MGA012', at(L, 'http://127.0.0.1:8081', 2), /warning MGA012: services\[0\]\.endpoints\[2\]\.url/);
    expect('MGA014', at(L, 'pubic'), /error MGA014: routes\[4\]\.listeners\[0\]: unknown listener "pubic"/);
    assert.match(lines.at(-2)!, /^\d+ errors, \d+ warnings in .*analyze-seeded\.yaml$/);
  });

  it('--output json gives every finding as data', async () => {
    const run = await meshgate(['analyze', SEEDED_FILE, '--output', 'json']);
    assert.equal(run.code, 1);
    const { findings } = JSON.parse(run.stdout) as {
      findings: { code: string; line: number; column: number; fix: string }[];
    };
    const codes = new Set(findings.map((f) => f.code));
    for (const code of [
      'MGA001',
      'MGA003',
      'MGA004',
      'MGA005',
      'MGA006',
      'MGA007',
      'MGA009',
      'MGA011',
      'MGA012',
      'MGA014',
    ])
      assert.ok(codes.has(code), code);
    assert.ok(findings.every((f) => f.line > 0 && f.column > 0 && f.fix));
  });

  it('the example mesh model in examples/mesh/ is clean (notes only: its instances register at run time)', async () => {
    const run = await meshgate(['analyze', `${repoRoot}examples/mesh`, '-o', 'json']);
    assert.equal(run.code, 0, run.stdout);
    const { findings } = JSON.parse(run.stdout) as { findings: { severity: string; code: string }[] };
    assert.deepEqual([...new Set(findings.map((f) => `${f.severity} ${f.code}`))], ['info MGA010']);
  });

  it('exit codes: 0 clean (warnings do not fail unless --fail-on warning), 2 usage, 3 unreadable', async () => {
    const warnOnly = join(dir, 'warn.yaml');
    writeFileSync(
      warnOnly,
      'routes:\n  - { name: a, match: { path: /x }, directResponse: { status: 200 } }\n  - { name: b, match: { path: /x }, directResponse: { status: 204 } }\n',
    );
    assert.equal((await meshgate(['analyze', warnOnly])).code, 0);
    assert.equal((await meshgate(['analyze', warnOnly, '--fail-on', 'warning'])).code, 1);
    const clean = join(dir, 'clean.yaml');
    writeFileSync(clean, 'routes: [{ name: a, directResponse: { status: 200 } }]\n');
    const ok = await meshgate(['analyze', clean]);
    assert.equal(ok.code, 0);
    assert.match(ok.stdout, /clean\.yaml: no findings/);
    assert.equal((await meshgate(['analyze'])).code, 2);
    assert.equal((await meshgate(['analyze', clean, '--fail-on', 'never'])).code, 2);
    const missing = await meshgate(['analyze', join(dir, 'nope.yaml')]);
    assert.equal(missing.code, 3);
    assert.match(missing.stderr, /file or directory not found/);
    const down = await meshgate(['analyze', '--control-plane', 'http://127.0.0.1:1']);
    assert.equal(down.code, 3);
    assert.match(down.stderr, /cannot reach http:\/\/127\.0\.0\.1:1: ECONNREFUSED/);
  });
});

describe('meshgate control-plane, status and analyze --control-plane', () => {
  let dir: string;
  let cp: MeshgateProcess;
  let url: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshgate-cp-'));
    writeFileSync(
      join(dir, '10-services.yaml'),
      [
        'services:',
        '  - name: photo-service',
        '    endpoints: []',
        '    subsets: { v1: { version: v1 }, v2: { version: v2 } }',
      ].join('\n') + '\n',
    );
    writeFileSync(
      join(dir, '20-routes.yaml'),
      [
        'routes:',
        '  - name: photos',
        '    match: { hosts: [photo-service] }',
        '    destinations:',
        '      - { service: photo-service, subset: v1, weight: 90 }',
        '      - { service: photo-service, subset: v2, weight: 10 }',
        '  - name: typo',
        '    match: { hosts: [photo-servic] }',
        '    service: photo-service',
      ].join('\n') + '\n',
    );
    cp = new MeshgateProcess(['control-plane', '--config', dir, '--port', '0', '--warmup', '0']);
    const started = await cp.waitFor('control plane started');
    url = `http://127.0.0.1:${started.port}`;
  });
  after(async () => {
    await cp.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('analyze --control-plane judges the model against the registered instances, located in the model’s files', async () => {
    // A minute of TTL: the next test reads it too, and nothing here sends heartbeats.
    const reg = await put(`${url}/instances/photo-1`, {
      service: 'photo-service',
      address: '127.0.0.1',
      port: 21001,
      labels: { version: 'v1' },
      ttlMs: 60_000,
    });
    assert.equal(reg.status, 200);
    const run = await meshgate(['analyze', '--control-plane', url, '--output', 'json']);
    const out = JSON.parse(run.stdout) as {
      findings: { code: string; file: string; line: number; column: number; message: string }[];
    };
    const find = (code: string) => out.findings.find((f) => f.code === code);
    assert.equal(run.code, 1);
    assert.deepEqual((({ file, line, column }) => ({ file, line, column }))(find('MGA003')!), {
      file: join(dir, '10-services.yaml'),
      line: 4,
      column: 41,
    });
    assert.match(
      find('MGA003')!.message,
      /subset "v2" of "photo-service" \(version=v2\) matches none of its 1 instance, and a route/,
    );
    assert.deepEqual((({ file, line, column }) => ({ file, line, column }))(find('MGA011')!), {
      file: join(dir, '20-routes.yaml'),
      line: 8,
      column: 22,
    });
  });

  it('status CHANGE reports what became of a change; the directory is watched', async () => {
    const summary = await meshgate(['status', '--control-plane', url]);
    assert.equal(summary.code, 0, summary.stderr);
    assert.match(summary.stdout, /^control plane [0-9a-f]{12} at http/m);
    assert.match(summary.stdout, /^instances: 1 \(healthy\/registered: photo-service 1\/1\)$/m);
    assert.match(summary.stdout, /photo-service instance photo-1 \(127\.0\.0\.1:21001\) registered/);

    writeFileSync(
      join(dir, '30-more.yaml'),
      'services:\n  - name: search-service\n    endpoints: [{ url: "http://127.0.0.1:23001" }]\n',
    );
    const updated = await cp.waitForNext('model updated');
    const change = await meshgate(['status', String(updated.change), '--control-plane', url, '--wait', '2s']);
    assert.equal(change.code, 0, change.stdout + change.stderr);
    assert.match(change.stdout, new RegExp(`^change ${updated.change} \\(config\\): config reloaded from ${dir}`, 'm'));
    assert.match(change.stdout, /: no-op$/m, 'no proxy is connected, so nothing was pushed');

    writeFileSync(join(dir, '40-broken.yaml'), 'routes:\n  - name: broken\n    service: nowhere\n');
    const rejected = await cp.waitForNext('config rejected; the model in force is kept');
    assert.deepEqual(rejected.issues, [
      `${join(dir, '40-broken.yaml')}:3:14: routes[0].service: unknown service "nowhere"`,
    ]);
    const json = await meshgate(['status', String(updated.change), '--control-plane', url, '-o', 'json']);
    assert.equal((JSON.parse(json.stdout) as ChangeRecord).id, updated.change);
    const missing = await meshgate(['status', '9999', '--control-plane', url]);
    assert.equal(missing.code, 3);
    assert.match(missing.stderr, /no change 9999/);
  });

  it('proxy-status with no proxy; proxy-config of an unknown proxy suggests one', async () => {
    const status = await meshgate(['proxy-status', '--control-plane', url]);
    assert.equal(status.code, 0);
    assert.match(status.stdout, /no proxy is connected/);
    const config = await meshgate(['proxy-config', 'routes', 'ghost', '--control-plane', url]);
    assert.equal(config.code, 3);
    assert.match(config.stderr, /no proxy "ghost"/);
  });

  it('the registry over HTTP: heartbeat, deregister', async () => {
    const reg = { service: 'photo-service', address: '127.0.0.1', port: 21001, ttlMs: 60_000 };
    assert.equal((await put(`${url}/instances/photo-1`, reg)).status, 200);
    const beat = await put(`${url}/instances/photo-1/heartbeat`, { health: 'unhealthy' });
    assert.equal(beat.status, 200);
    assert.equal(beat.body.health, 'unhealthy');
    const res = await request(`${url}/instances/photo-1`, { method: 'DELETE' });
    assert.equal(res.statusCode, 200);
    await res.body.dump();
    assert.equal((await put(`${url}/instances/photo-1/heartbeat`, {})).status, 404);
  });
});

describe('usage and exit codes of the mesh commands', () => {
  it('bad usage exits 2 with the reason and the usage', async () => {
    const cases: [string[], RegExp][] = [
      [['sidecar'], /--service is required/],
      [['sidecar', '--service', 'a_b', '--app', 'http://127.0.0.1:1'], /is not a host name/],
      [['sidecar', '--service', 'a', '--app', 'localhost:8080'], /is not an origin/],
      [
        ['sidecar', '--service', 'a', '--app', 'http://127.0.0.1:1', '--labels', 'v2'],
        /--labels: "v2" is not key=value/,
      ],
      [
        ['sidecar', '--service', 'a', '--app', 'http://127.0.0.1:1', '--ttl', '10ms'],
        /--ttl "10ms" is not a duration from 1s to 5m/,
      ],
      [
        ['sidecar', '--service', 'a', '--app', 'http://127.0.0.1:1', '--egress', 'photo-service,photo_service'],
        /--egress "photo_service" is not a service name/,
      ],
      [
        ['sidecar', '--service', 'a', '--app', 'http://127.0.0.1:1', '--upstreams', 'b,-c'],
        /--egress "-c" is not a service name/,
      ],
      [['control-plane', '--warmup', 'soon'], /--warmup "soon" is not a duration/],
      [['gateway', '--config', 'x.yaml', '--control-plane', 'http://127.0.0.1:1'], /not both/],
      [['proxy-config', 'clusters', 'x'], /Usage: meshgate proxy-config/],
      [['status', 'abc'], /Usage: meshgate status/],
    ];
    for (const [args, message] of cases) {
      const run = await meshgate(args);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, message);
    }
  });

  it('an invalid model: exit 1 with every problem, nothing started', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshgate-bad-'));
    try {
      writeFileSync(join(dir, 'mesh.yaml'), 'services:\n  - name: photo_service\n    endpoints: []\n');
      const run = await meshgate(['control-plane', '--config', join(dir, 'mesh.yaml'), '--port', '0']);
      assert.equal(run.code, 1);
      assert.match(run.stderr, /mesh\.yaml:2:11: services\[0\]\.name: "photo_service" cannot be a host name/);
      assert.match(run.stderr, /is not valid; nothing started/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('plugin entries in a model are checked against the built-in plugins and their schemas', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshgate-plugins-'));
    try {
      const model = (plugins: string) =>
        `services:\n  - { name: search, endpoints: [] }\nroutes:\n  - name: s\n    service: search\n    plugins: ${plugins}\n`;
      writeFileSync(join(dir, 'mesh.yaml'), model('[{ name: cahce }, { name: rate-limit, config: { hour: -1 } }]'));
      const bad = await meshgate(['control-plane', '--config', join(dir, 'mesh.yaml'), '--port', '0']);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /mesh\.yaml:6:\d+: routes\[0\]\.plugins\[0\]\.name: unknown plugin "cahce".*cache/);
      assert.match(bad.stderr, /mesh\.yaml:6:\d+: routes\[0\]\.plugins\[1\]\.config\.hour/);
      writeFileSync(join(dir, 'mesh.yaml'), model('[{ name: cache, config: { ttl: 60s } }]'));
      const good = await meshgate(['analyze', join(dir, 'mesh.yaml'), '--fail-on', 'warning']);
      assert.equal(good.code, 0, good.stdout);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('--help of every mesh command exits 0', async () => {
    for (const command of ['control-plane', 'sidecar', 'analyze', 'proxy-config', 'proxy-status', 'status']) {
      const run = await meshgate([command, '--help']);
      assert.equal(run.code, 0, command);
      assert.match(run.stdout, new RegExp(`Usage: meshgate ${command}`));
    }
  });
});
