/**
 * `meshgate gateway` as a real process: reload on file change and SIGHUP, rejection of a bad config,
 * requests in flight finishing on the snapshot they started with, drain on SIGTERM, the admin API.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { MeshgateProcess } from '../helpers/process.ts';
import { startUpstream, type Upstream } from '../helpers/servers.ts';

function configYaml(upstreamUrl: string, body: string, extra = ''): string {
  return `listeners:
  - name: main
    port: 0
    address: 127.0.0.1
admin:
  port: 0
services:
  - name: svc
    endpoints:
      - url: ${upstreamUrl}
routes:
  - name: hello
    match: { path: /hello }
    directResponse: { status: 200, body: "${body}" }
  - name: proxied
    match: { path: /api/* }
    service: svc
${extra}`;
}

async function get(url: string) {
  const res = await request(url);
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

describe('gateway process', () => {
  let dir: string;
  let file: string;
  let upstream: Upstream;
  let slowUpstream: Upstream;
  let gw: MeshgateProcess;
  let base: string;
  let admin: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshgate-'));
    file = join(dir, 'gateway.yaml');
    upstream = await startUpstream();
    slowUpstream = await startUpstream((_req, res) => {
      setTimeout(() => res.end('slow-done'), 800);
    }, 'slow');
    writeFileSync(file, configYaml(upstream.url, 'one'));
    gw = new MeshgateProcess(['gateway', '--config', file]);
    const started = await gw.waitFor('gateway started');
    base = `http://127.0.0.1:${(started.listeners as Record<string, number>).main}`;
    admin = `http://127.0.0.1:${started.admin}`;
  });

  after(async () => {
    await gw.stop();
    await upstream.close();
    await slowUpstream.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the config it started with, and the admin API describes it', async () => {
    assert.equal((await get(`${base}/hello`)).text, 'one');
    const live = await get(`${admin}/live`);
    assert.equal(live.status, 200);
    const ready = JSON.parse((await get(`${admin}/ready`)).text);
    assert.equal(ready.status, 'ready');
    const config = JSON.parse((await get(`${admin}/config`)).text);
    assert.equal(config.version, 1);
    assert.equal(config.source, file);
    assert.match(config.hash, /^[0-9a-f]{16}$/);
    assert.ok(Date.parse(config.loadedAt) > 0);
    const routes = JSON.parse((await get(`${admin}/routes`)).text);
    assert.deepEqual(
      routes.routes.map((r: { name: string }) => r.name),
      ['hello', 'proxied'],
    );
    const services = JSON.parse((await get(`${admin}/services`)).text);
    assert.equal(services.services[0].name, 'svc');
    assert.equal(services.services[0].endpoints[0].url, upstream.url);
  });

  it('binds the admin API to 127.0.0.1 only, by default', async () => {
    const port = new URL(admin).port;
    // 127.0.0.2 is loopback too: a socket bound to 0.0.0.0 would accept it, one bound to 127.0.0.1 does not.
    await assert.rejects(
      request(`http://127.0.0.2:${port}/live`),
      (e: NodeJS.ErrnoException) => e.code === 'ECONNREFUSED',
    );
    assert.equal((await get(`${admin}/live`)).status, 200);
  });

  it('reloads when the file changes', async () => {
    const applied = gw.waitForNext('config applied');
    writeFileSync(file, configYaml(upstream.url, 'two'));
    const line = await applied;
    assert.equal(line.trigger, 'file');
    assert.equal((await get(`${base}/hello`)).text, 'two');
    assert.equal(JSON.parse((await get(`${admin}/config`)).text).version, line.version);
  });

  it('rejects an invalid config, logs why with its location, and keeps the running one', async () => {
    const before = JSON.parse((await get(`${admin}/config`)).text).version;
    const rejected = gw.waitForNext('config rejected; the running config is kept');
    writeFileSync(file, configYaml(upstream.url, 'three').replace('service: svc', 'service: scv'));
    const line = await rejected;
    const issues = line.issues as string[];
    assert.equal(issues.length, 1);
    assert.match(
      issues[0]!,
      /gateway\.yaml:\d+:\d+: routes\[1\]\.service: unknown service "scv" \(did you mean "svc"\?\)/,
    );
    assert.equal((await get(`${base}/hello`)).text, 'two');
    assert.equal(JSON.parse((await get(`${admin}/config`)).text).version, before);
  });

  it('finishes a request in flight on the snapshot it started with', async () => {
    writeFileSync(file, configYaml(slowUpstream.url, 'six'));
    for (let i = 0; i < 50 && (await get(`${base}/hello`)).text !== 'six'; i++) await sleep(50);
    const seen = slowUpstream.seen.length;
    const inFlight = get(`${base}/api/slow`);
    // In flight: the upstream has it.
    while (slowUpstream.seen.length === seen) await sleep(5);
    const applied = gw.waitForNext('config applied');
    writeFileSync(file, configYaml(upstream.url, 'seven'));
    await applied;
    assert.equal((await get(`${base}/api/after`)).headers['x-upstream'], 'upstream');
    const slow = await inFlight;
    assert.equal(slow.status, 200);
    assert.equal(slow.text, 'slow-done');
    assert.equal(slow.headers['x-upstream'], 'slow');
  });
});

describe('gateway process: signals', () => {
  it('with --no-watch reloads on SIGHUP only', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshgate-'));
    const file = join(dir, 'gateway.yaml');
    const upstream = await startUpstream();
    writeFileSync(file, configYaml(upstream.url, 'before'));
    // The control: a gateway that watches its own copy of the file. What it does on a change, in
    // the same time, is what the --no-watch one would do if it watched.
    const controlFile = join(dir, 'control.yaml');
    writeFileSync(controlFile, configYaml(upstream.url, 'before'));
    const gw = new MeshgateProcess(['gateway', '--config', file, '--no-watch']);
    const control = new MeshgateProcess(['gateway', '--config', controlFile]);
    try {
      const started = await gw.waitFor('gateway started');
      await control.waitFor('gateway started');
      const base = `http://127.0.0.1:${(started.listeners as Record<string, number>).main}`;
      // Two changes each, at the same moment: the control reloads twice; the other not at all.
      // Each file is replaced whole (a rename), as editors save, so no reload can read half a file.
      const replace = (path: string, text: string) => {
        writeFileSync(`${path}.tmp`, configYaml(upstream.url, text));
        renameSync(`${path}.tmp`, path);
      };
      for (const text of ['after', 'after, again']) {
        const reloaded = control.waitForNext('config applied', 30_000);
        replace(file, text);
        replace(controlFile, text);
        assert.equal((await reloaded).trigger, 'file');
      }
      assert.equal((await get(`${base}/hello`)).text, 'before', 'no reload without the signal');
      assert.equal(gw.logs.filter((l) => l.msg === 'config applied').length, 0);
      const applied = gw.waitForNext('config applied');
      gw.child.kill('SIGHUP');
      assert.equal((await applied).trigger, 'SIGHUP');
      assert.equal((await get(`${base}/hello`)).text, 'after, again');
    } finally {
      await gw.stop();
      await control.stop();
      await upstream.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('on SIGTERM stops accepting, drains requests in flight, and exits 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshgate-'));
    const file = join(dir, 'gateway.yaml');
    const slow = await startUpstream((_req, res) => {
      setTimeout(() => res.end('drained'), 700);
    });
    writeFileSync(file, configYaml(slow.url, 'x'));
    const gw = new MeshgateProcess(['gateway', '--config', file, '--drain', '5s']);
    try {
      const started = await gw.waitFor('gateway started');
      const base = `http://127.0.0.1:${(started.listeners as Record<string, number>).main}`;
      const admin = `http://127.0.0.1:${started.admin}`;
      const inFlight = get(`${base}/api/slow`);
      // In flight: the upstream has it.
      while (slow.seen.length === 0) await sleep(5);
      gw.child.kill('SIGTERM');
      await gw.waitFor('draining');
      assert.equal((await get(`${admin}/ready`)).status, 503);
      await assert.rejects(request(`${base}/hello`), 'new connections are refused while draining');
      const res = await inFlight;
      assert.equal(res.status, 200);
      assert.equal(res.text, 'drained');
      assert.equal(await gw.exited(), 0);
    } finally {
      await gw.stop();
      await slow.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to start on an invalid config, printing every problem', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshgate-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'listeners:\n  - name: a\n    port: eighty\nroutes:\n  - name: r\n    service: nowhere\n');
    const gw = new MeshgateProcess(['gateway', '--config', file]);
    try {
      const code = await new Promise((resolve) => gw.child.once('exit', resolve));
      assert.equal(code, 1);
      assert.match(gw.stderr, /bad\.yaml:3:11: listeners\[0\]\.port: expected integer, got "eighty"/);
      assert.match(gw.stderr, /bad\.yaml:6:14: routes\[0\]\.service: unknown service "nowhere"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
