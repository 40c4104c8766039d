/**
 * The primary-held rate-limit store across a real process boundary: this process is the worker, a
 * forked process (primary-host.fixture.ts) the primary, the IPC channel node:cluster uses between
 * them. The gateway itself with its workers is in test/e2e/exact-limits.test.ts.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runStoreConformance } from '../plugins/rate-limit/store.conformance.ts';
import type { Window } from '../plugins/rate-limit/store.ts';
import { type LimitDecided, PrimaryRateLimitStore } from './primary.ts';

let child: ChildProcess;
let store: PrimaryRateLimitStore;

before(async () => {
  child = fork(fileURLToPath(new URL('./primary-host.fixture.ts', import.meta.url)), [], {
    execPath: process.execPath,
  });
  await once(child, 'spawn');
  store = new PrimaryRateLimitStore((m) => child.send(m));
  child.on('message', (m: LimitDecided) => {
    if (m.type === 'limit-decided') store.decided(m);
  });
});

after(async () => {
  const exited = once(child, 'exit');
  child.disconnect();
  await exited;
});

// One store for every case: batch numbers are per store, and the keys of the cases differ.
runStoreConformance('primary over IPC', () => store);

/** How many batches the stand-in primary has answered so far. */
function batchesSent(): Promise<number> {
  return new Promise((resolve) => {
    const on = (m: { type: string; batches?: number }) => {
      if (m.type !== 'batches') return;
      child.off('message', on);
      resolve(m.batches!);
    };
    child.on('message', on);
    child.send({ type: 'batches' });
  });
}

describe('primary-held store: concurrency', () => {
  it('decides 700 concurrent requests against 500 exactly, batched per event-loop turn', async () => {
    const minute: Window[] = [{ limit: 500, windowMs: 60_000, algorithm: 'sliding' }];
    const before = await batchesSent();
    const now = Date.now();
    const decisions = await Promise.all(Array.from({ length: 700 }, () => store.consume('k-700', minute, now)));
    assert.equal(decisions.filter((d) => d.allowed).length, 500);
    const denied = decisions.filter((d) => !d.allowed);
    assert.equal(denied.length, 200);
    for (const d of denied) assert.ok(d.windows[0]!.resetMs > 0, 'a denied request says when to retry');
    assert.equal((await batchesSent()) - before, 1, 'one message for the 700 decisions of one turn');
  });

  it('fails what waits, and what asks later, once the channel to the primary is gone', async () => {
    const lone = new PrimaryRateLimitStore(() => {});
    const waiting = lone.consume('k-gone', [{ limit: 1, windowMs: 1_000, algorithm: 'fixed' }], Date.now());
    lone.close(new Error('the primary process is gone'));
    await assert.rejects(waiting, /primary process is gone/);
    await assert.rejects(
      Promise.resolve(lone.consume('k-gone', [{ limit: 1, windowMs: 1_000, algorithm: 'fixed' }], Date.now())),
      /primary process is gone/,
    );
  });
});
