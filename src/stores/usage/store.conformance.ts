/**
 * The behaviour every UsageStore must have (house rule 9). Run it against each implementation:
 * `runUsageStoreConformance('sqlite', () => new SqliteUsageStore(file))`; `create` must return an
 * empty store each time, and `second` (when given) another writer on the same storage as the last
 * store `create` made.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HOUR_MS, type UsageRow, type UsageStore } from './store.ts';

const h0 = 1_800_000_000_000 - (1_800_000_000_000 % HOUR_MS);

const row = (over: Partial<UsageRow> = {}): UsageRow => ({
  hour: h0,
  consumer: 'alice',
  route: 'props-v1',
  api: 'property-api',
  version: 'v1',
  statusClass: '2xx',
  requests: 1,
  bytes: 10,
  ...over,
});

export function runUsageStoreConformance(
  name: string,
  create: () => Promise<UsageStore>,
  second: () => Promise<UsageStore>,
) {
  describe(`usage store conformance: ${name}`, () => {
    it('starts empty', async () => {
      const store = await create();
      assert.deepEqual(await store.query({}), []);
      await store.close();
    });

    it('adds counts of the same key together, and keeps different keys apart', async () => {
      const store = await create();
      await store.add([row(), row({ statusClass: '4xx', bytes: 0 })]);
      await store.add([row({ requests: 2, bytes: 5 }), row({ consumer: 'bob' })]);
      assert.deepEqual(await store.query({}), [
        row({ requests: 3, bytes: 15 }),
        row({ statusClass: '4xx', bytes: 0 }),
        row({ consumer: 'bob' }),
      ]);
      await store.close();
    });

    it('sorts by hour, consumer, route, api, version, status class', async () => {
      const store = await create();
      const rows = [
        row({ hour: h0 + HOUR_MS }),
        row({ consumer: 'bob', route: 'b' }),
        row({ consumer: 'bob', route: 'a', version: 'v2', statusClass: '5xx' }),
        row({ consumer: 'bob', route: 'a', version: 'v2', statusClass: '2xx' }),
        row({ consumer: 'bob', route: 'a', api: '', version: '' }),
      ];
      await store.add(rows);
      assert.deepEqual(await store.query({}), [rows[4], rows[3], rows[2], rows[1], rows[0]]);
      await store.close();
    });

    it('filters by hours [from, to), consumer and api', async () => {
      const store = await create();
      await store.add([
        row({ hour: h0 - HOUR_MS }),
        row(),
        row({ hour: h0 + HOUR_MS }),
        row({ consumer: 'bob' }),
        row({ api: 'search-api', route: 'search' }),
      ]);
      const hours = (rows: UsageRow[]) => rows.map((r) => (r.hour - h0) / HOUR_MS);
      assert.deepEqual(hours(await store.query({ from: h0, to: h0 + HOUR_MS, consumer: 'alice' })), [0, 0]);
      assert.deepEqual(hours(await store.query({ from: h0 })), [0, 0, 0, 1]);
      assert.deepEqual(hours(await store.query({ to: h0 })), [-1]);
      // An instant inside an hour: that hour starts before it.
      assert.deepEqual(hours(await store.query({ from: h0 + 1, consumer: 'alice' })), [1]);
      assert.deepEqual(await store.query({ api: 'search-api' }), [row({ api: 'search-api', route: 'search' })]);
      assert.deepEqual(await store.query({ consumer: 'nobody' }), []);
      await store.close();
    });

    it('keeps names with separators and non-ASCII apart and intact', async () => {
      const store = await create();
      const odd = row({ consumer: 'a:b|"c"\u0000', route: 'r,1', version: 'vé' });
      await store.add([odd, row()]);
      assert.deepEqual(await store.query({ consumer: odd.consumer }), [odd]);
      await store.close();
    });

    it('counts large totals exactly', async () => {
      const store = await create();
      await store.add([row({ requests: 2 ** 40, bytes: 2 ** 50 })]);
      await store.add([row({ requests: 1, bytes: 1 })]);
      const [only] = await store.query({});
      assert.equal(only!.requests, 2 ** 40 + 1);
      assert.equal(only!.bytes, 2 ** 50 + 1);
      await store.close();
    });

    it('loses no count when two writers add to the same keys at once', async () => {
      const a = await create();
      const b = await second();
      const batch = (n: number) => [row({ requests: n, bytes: n }), row({ consumer: 'bob', requests: n, bytes: 0 })];
      await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? a : b).add(batch(i + 1))));
      const total = (40 * 41) / 2;
      assert.deepEqual(await a.query({}), [
        row({ requests: total, bytes: total }),
        row({ consumer: 'bob', requests: total, bytes: 0 }),
      ]);
      await a.close();
      await b.close();
    });
  });
}
