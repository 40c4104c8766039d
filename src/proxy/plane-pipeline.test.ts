/**
 * The config pipeline in front of a real in-process proxy (real listeners on 127.0.0.1, real requests,
 * a real access log file): a burst of changes ends on the last, one change at a time; a config that is
 * invalid, or valid but refused in prepare, or prepared and then discarded, leaves the config in force
 * and its telemetry settings (the access log in use) as they were.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { eventually } from '../../test/helpers/mesh.ts';
import type { Config } from '../api/config.ts';
import { validateConfigObject } from '../config/load.ts';
import type { ConfigTarget, Outcome } from '../config/pipeline.ts';
import { ConfigPipeline } from '../config/pipeline.ts';
import { silentLogger } from '../observability/logger.ts';
import { InProcessDataPlane, type PreparedConfig } from './data-plane.ts';
import { dataPlaneTarget, GATEWAY_MESSAGES, type PlaneReport } from './plane-pipeline.ts';

function config(body: string, extra: Partial<Config> = {}): Config {
  return {
    listeners: [{ name: 'main', port: 0, address: '127.0.0.1' }],
    routes: [{ name: 'hello', match: { path: '/hello' }, directResponse: { status: 200, body } }],
    ...extra,
  } as Config;
}

const change = (data: unknown, key = 'test') => ({
  trigger: 'test',
  key,
  read: async () => ({ kind: 'object' as const, data, source: 'test' }),
});

describe('config pipeline on a proxy', () => {
  let dir: string;
  let plane: InProcessDataPlane;
  let pipeline: ConfigPipeline<PreparedConfig, PlaneReport>;
  /** Changes inside prepare…commit/discard at once, and the most ever seen. */
  let active = 0;
  let maxActive = 0;
  const committed: string[] = [];
  let logA: string;

  const hello = async () => {
    const res = await request(`http://127.0.0.1:${plane.ports().main}/hello`, {
      headers: { 'x-request-id': `r-${Math.random()}` },
    });
    return { body: await res.body.text(), id: res.headers['x-request-id'] as string };
  };
  /** The request's line reaches the file in force (polled: the access log flushes on a timer). */
  const loggedTo = (file: string, id: string) =>
    eventually(() => existsSync(file) && readFileSync(file, 'utf8').includes(id), 5_000, `${id} in ${file}`);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshgate-pipeline-'));
    logA = join(dir, 'a.log');
    const first = validateConfigObject(config('a', { observability: { accessLog: { output: logA } } }), 'test');
    assert.ok(first.ok);
    plane = await InProcessDataPlane.start(first.value);
    const real = dataPlaneTarget(plane);
    const target: ConfigTarget<PreparedConfig, PlaneReport> = {
      async prepare(c) {
        maxActive = Math.max(maxActive, ++active);
        try {
          return await real.prepare(c);
        } catch (e) {
          active--;
          throw e;
        }
      },
      async commit(p, c) {
        try {
          const report = await real.commit(p, c);
          committed.push(c.loaded.hash);
          return report;
        } finally {
          active--;
        }
      },
      async discard(p) {
        active--;
        await real.discard(p);
      },
    };
    pipeline = new ConfigPipeline({ target, log: silentLogger(), messages: GATEWAY_MESSAGES });
    pipeline.started({ loaded: first.value, texts: [], trigger: 'start' });
  });

  after(async () => {
    await plane.close(0);
    rmSync(dir, { recursive: true, force: true });
  });

  it('a burst of changes runs one at a time and ends on the last', async () => {
    const extra = { observability: { accessLog: { output: logA } } };
    const outcomes = await Promise.all(
      ['b1', 'b2', 'b3', 'b4', 'b5'].map((b) => pipeline.submit(change(config(b, extra)))),
    );
    assert.deepEqual(
      outcomes.map((o) => o.status),
      ['applied', 'superseded', 'superseded', 'superseded', 'applied'],
    );
    assert.equal(maxActive, 1, 'never two changes between prepare and commit');
    assert.equal((await hello()).body, 'b5');
    assert.equal(pipeline.hash, (outcomes[4] as { hash: string }).hash);
    assert.equal(committed.at(-1), pipeline.hash);
    // Changes without a key are each their own: none is superseded.
    const unkeyed = await Promise.all(
      ['c1', 'c2'].map((b) => pipeline.submit({ ...change(config(b, extra)), key: undefined })),
    );
    assert.deepEqual(
      unkeyed.map((o) => o.status),
      ['applied', 'applied'],
    );
    assert.equal((await hello()).body, 'c2');
    assert.equal((await pipeline.submit(change(config('c2', extra)))).status, 'unchanged');
    assert.equal((await pipeline.submit({ ...change(config('c2', extra)), force: true })).status, 'applied');
  });

  it('an invalid config is rejected: the config in force and its access log stay', async () => {
    const before = plane.proxy.telemetry.accessLog;
    const logB = join(dir, 'invalid.log');
    const outcome = await pipeline.submit(
      change({
        ...config('invalid', { observability: { accessLog: { output: logB } } }),
        routes: [{ name: 'r', service: 'nowhere' }],
      }),
    );
    assert.equal(outcome.status, 'rejected');
    assert.match((outcome as Extract<Outcome<unknown>, { status: 'rejected' }>).issues[0]!.message, /nowhere/);
    assert.equal(plane.proxy.telemetry.accessLog, before, 'the same access log');
    const { body, id } = await hello();
    assert.equal(body, 'c2');
    await loggedTo(logA, id);
    assert.equal(existsSync(logB), false);
    const status = pipeline.status();
    assert.equal(status.lastRefusal?.status, 'rejected');
    assert.equal(status.counts.rejected, 1);
  });

  it('a config the proxy refuses in prepare (its port is taken) changes nothing, telemetry included', async () => {
    const taken: Server = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      const before = plane.proxy.telemetry.accessLog;
      const logC = join(dir, 'refused.log');
      const outcome = await pipeline.submit(
        change(
          config('refused', {
            listeners: [
              { name: 'main', port: 0, address: '127.0.0.1' },
              { name: 'second', port, address: '127.0.0.1' },
            ],
            observability: { accessLog: { output: logC, sampleRatio: 0.5 } },
          }),
        ),
      );
      assert.equal(outcome.status, 'failed');
      assert.match((outcome as Extract<Outcome<unknown>, { status: 'failed' }>).error.message, /EADDRINUSE/);
      assert.equal(plane.proxy.telemetry.accessLog, before);
      assert.deepEqual(Object.keys(plane.ports()), ['main']);
      const { body, id } = await hello();
      assert.equal(body, 'c2');
      await loggedTo(logA, id);
      assert.equal(existsSync(logC) && readFileSync(logC, 'utf8').length > 0, false);
      assert.equal(pipeline.status().lastRefusal?.status, 'failed');
    } finally {
      taken.close();
    }
  });

  it('a prepared change that is discarded (another worker refused it) leaves telemetry as it was', async () => {
    const before = plane.proxy.telemetry.accessLog;
    const logD = join(dir, 'discarded.log');
    const next = validateConfigObject(config('discarded', { observability: { accessLog: { output: logD } } }), 'test');
    assert.ok(next.ok);
    const prepared = await plane.prepare(next.value);
    assert.equal(plane.proxy.telemetry.accessLog, before, 'prepare builds, but does not swap');
    await plane.discard(prepared);
    assert.equal(plane.proxy.telemetry.accessLog, before);
    const { body, id } = await hello();
    assert.equal(body, 'c2');
    await loggedTo(logA, id);
    assert.equal(existsSync(logD) && readFileSync(logD, 'utf8').length > 0, false);
    // And the proxy takes the next change normally.
    assert.equal((await pipeline.submit(change(config('after', { observability: {} })))).status, 'applied');
    assert.equal(plane.proxy.telemetry.accessLog, null, 'the access log turned off on commit');
    assert.equal((await hello()).body, 'after');
  });
});
