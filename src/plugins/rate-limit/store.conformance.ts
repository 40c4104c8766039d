/**
 * The behaviour every RateLimitStore must have (house rule 9). Run it against each implementation:
 * `runStoreConformance('memory', () => new MemoryStore())`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MONTH_MS, type RateLimitStore, type Window, YEAR_MS } from './store.ts';

const minute = (limit: number, algorithm: Window['algorithm'] = 'sliding'): Window => ({
  limit,
  windowMs: 60_000,
  algorithm,
});

export function runStoreConformance(name: string, create: () => RateLimitStore | Promise<RateLimitStore>) {
  describe(`rate-limit store conformance: ${name}`, () => {
    const t0 = 1_800_000_000_000; // aligned to a minute

    it('allows exactly the limit in a fresh window, counting remaining down to 0', async () => {
      const store = await create();
      const remaining: number[] = [];
      for (let i = 0; i < 7; i++) {
        const d = await store.consume('k-exact', [minute(5)], t0 + i);
        if (d.allowed) remaining.push(d.windows[0]!.remaining);
        else assert.equal(d.windows[0]!.remaining, 0);
      }
      assert.deepEqual(remaining, [4, 3, 2, 1, 0]);
    });

    it('keeps keys apart', async () => {
      const store = await create();
      for (let i = 0; i < 3; i++) assert.ok((await store.consume('k-a', [minute(3)], t0)).allowed);
      assert.equal((await store.consume('k-a', [minute(3)], t0)).allowed, false);
      assert.ok((await store.consume('k-b', [minute(3)], t0)).allowed);
    });

    it('is atomic over several windows: a full window means no window counts the request', async () => {
      const store = await create();
      const windows: Window[] = [
        { limit: 2, windowMs: 1_000, algorithm: 'fixed' },
        { limit: 10, windowMs: 60_000, algorithm: 'fixed' },
      ];
      assert.ok((await store.consume('k-multi', windows, t0)).allowed);
      assert.ok((await store.consume('k-multi', windows, t0)).allowed);
      const denied = await store.consume('k-multi', windows, t0);
      assert.equal(denied.allowed, false);
      assert.equal(denied.windows[1]!.remaining, 8, 'the denied request did not count in the hour window');
    });

    it('fixed windows reset at the window edge and report the time left', async () => {
      const store = await create();
      for (let i = 0; i < 2; i++) await store.consume('k-fixed', [minute(2, 'fixed')], t0 + 30_000);
      const denied = await store.consume('k-fixed', [minute(2, 'fixed')], t0 + 30_000);
      assert.equal(denied.allowed, false);
      assert.equal(denied.windows[0]!.resetMs, 30_000);
      assert.equal(denied.windows[0]!.remaining, 0);
      assert.ok((await store.consume('k-fixed', [minute(2, 'fixed')], t0 + 60_000)).allowed);
    });

    it('sliding windows do not let 2x the limit through at a window edge', async () => {
      const store = await create();
      let allowed = 0;
      // 10 requests at the end of one window, 10 right after the edge: a fixed window would allow 20.
      for (let i = 0; i < 10; i++) if ((await store.consume('k-slide', [minute(10)], t0 + 59_000)).allowed) allowed++;
      for (let i = 0; i < 10; i++) if ((await store.consume('k-slide', [minute(10)], t0 + 61_000)).allowed) allowed++;
      assert.equal(allowed, 10);
    });

    it('sliding windows recover gradually as the previous window ages out', async () => {
      const store = await create();
      for (let i = 0; i < 10; i++) await store.consume('k-recover', [minute(10)], t0 + 30_000);
      const halfway = await store.consume('k-recover', [minute(10)], t0 + 90_000);
      assert.ok(halfway.allowed, 'half of the previous window has aged out');
      let more = 0;
      for (let i = 0; i < 10; i++) if ((await store.consume('k-recover', [minute(10)], t0 + 90_000)).allowed) more++;
      assert.equal(more, 4, 'half the limit is free halfway into the next window (1 + 4 = 5)');
    });

    it('a denied sliding request says when to retry, and it is then allowed', async () => {
      const store = await create();
      for (let i = 0; i < 4; i++) await store.consume('k-retry', [minute(4)], t0 + 50_000);
      const denied = await store.consume('k-retry', [minute(4)], t0 + 70_000);
      assert.equal(denied.allowed, false);
      const wait = denied.windows[0]!.resetMs;
      assert.ok(wait > 0 && wait <= 60_000, `resetMs ${wait}`);
      assert.ok((await store.consume('k-retry', [minute(4)], t0 + 70_000 + wait)).allowed);
    });

    it('a fixed day window is the UTC calendar day: full until midnight, resetMs to it, fresh after', async () => {
      const store = await create();
      const day: Window = { limit: 3, windowMs: 86_400_000, algorithm: 'fixed' };
      const evening = Date.UTC(2027, 2, 14, 23, 59, 30); // 30 s before midnight UTC
      for (let i = 0; i < 3; i++) assert.ok((await store.consume('k-day', [day], evening)).allowed);
      const denied = await store.consume('k-day', [day], evening);
      assert.equal(denied.allowed, false);
      assert.equal(denied.windows[0]!.resetMs, 30_000);
      const next = await store.consume('k-day', [day], Date.UTC(2027, 2, 15));
      assert.ok(next.allowed, 'a new day at 00:00 UTC');
      assert.equal(next.windows[0]!.remaining, 2);
    });

    it('calendar-month windows end on the first of the next month (UTC), however long the month', async () => {
      const store = await create();
      const month: Window = { limit: 2, windowMs: MONTH_MS, algorithm: 'calendar-month' };
      // January has 31 days, as long as MONTH_MS: nothing of it may carry into February.
      assert.ok((await store.consume('k-month', [month], Date.UTC(2028, 0, 10, 12))).allowed);
      const second = await store.consume('k-month', [month], Date.UTC(2028, 0, 31, 23));
      assert.ok(second.allowed, 'the 31st is still January');
      assert.equal(second.windows[0]!.resetMs, 3_600_000, 'one hour to February 1st');
      const denied = await store.consume('k-month', [month], Date.UTC(2028, 0, 31, 23, 30));
      assert.equal(denied.allowed, false);
      assert.equal(denied.windows[0]!.resetMs, 1_800_000);
      const feb = await store.consume('k-month', [month], Date.UTC(2028, 1, 1));
      assert.ok(feb.allowed, 'a new month at 00:00 UTC on the 1st');
      assert.equal(feb.windows[0]!.remaining, 1);
      assert.equal(feb.windows[0]!.resetMs, 29 * 86_400_000, 'February 2028 has 29 days');
      const march = await store.peek('k-month', [month], Date.UTC(2028, 2, 1));
      assert.equal(march.windows[0]!.remaining, 2, 'and March starts empty');
    });

    it('calendar-year windows end on 1 January (UTC), beside a month window of the same key', async () => {
      const store = await create();
      const windows: Window[] = [
        { limit: 5, windowMs: MONTH_MS, algorithm: 'calendar-month' },
        { limit: 2, windowMs: YEAR_MS, algorithm: 'calendar-year' },
      ];
      const first = await store.consume('k-year', windows, Date.UTC(2027, 0, 10));
      assert.deepEqual(
        first.windows.map((w) => w.remaining),
        [4, 1],
        'the month and the year count apart',
      );
      const last = await store.consume('k-year', windows, Date.UTC(2027, 11, 31, 23));
      assert.ok(last.allowed, 'December 31st is still 2027');
      assert.deepEqual(
        last.windows.map((w) => [w.remaining, w.resetMs]),
        [
          [4, 3_600_000],
          [0, 3_600_000],
        ],
      );
      const denied = await store.consume('k-year', windows, Date.UTC(2027, 11, 31, 23, 30));
      assert.equal(denied.allowed, false, 'the year is full though December has room');
      assert.equal(denied.windows[1]!.resetMs, 1_800_000);
      const next = await store.consume('k-year', windows, Date.UTC(2028, 0, 1));
      assert.ok(next.allowed, 'a new year at 00:00 UTC on 1 January');
      assert.deepEqual(
        next.windows.map((w) => [w.remaining, w.resetMs]),
        [
          [4, 31 * 86_400_000],
          [1, 366 * 86_400_000],
        ],
        '2028 has 366 days',
      );
    });

    it('peek reports remaining and reset without counting, and sees a new window as empty', async () => {
      const store = await create();
      const windows: Window[] = [
        { limit: 5, windowMs: 86_400_000, algorithm: 'fixed' },
        { limit: 10, windowMs: MONTH_MS, algorithm: 'calendar-month' },
      ];
      const at = Date.UTC(2027, 5, 30, 18);
      const fresh = await store.peek('k-peek', windows, at);
      assert.ok(fresh.allowed);
      assert.deepEqual(
        fresh.windows.map((w) => w.remaining),
        [5, 10],
      );
      for (let i = 0; i < 5; i++) await store.consume('k-peek', windows, at);
      for (let i = 0; i < 2; i++) {
        const seen = await store.peek('k-peek', windows, at);
        assert.equal(seen.allowed, false, 'the day is full');
        assert.deepEqual(
          seen.windows.map((w) => [w.remaining, w.resetMs]),
          [
            [0, 6 * 3_600_000],
            [5, 6 * 3_600_000],
          ],
          'a peek counts nothing, so two read the same',
        );
      }
      const july = await store.peek('k-peek', windows, Date.UTC(2027, 6, 1, 1));
      assert.ok(july.allowed);
      assert.deepEqual(
        july.windows.map((w) => w.remaining),
        [5, 10],
        'a new day and a new month',
      );
    });
  });
}
