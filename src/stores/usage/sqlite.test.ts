import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { SqliteUsageStore } from './sqlite.ts';
import { runUsageStoreConformance } from './store.conformance.ts';

const dir = mkdtempSync(join(tmpdir(), 'meshgate-usage-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
let last = '';

runUsageStoreConformance(
  'sqlite',
  async () => {
    last = join(dir, `usage-${files++}.db`);
    return new SqliteUsageStore(last);
  },
  async () => new SqliteUsageStore(last),
);

/** A child process that adds `batches` one-row batches to the file. */
async function writer(file: string, batches: number, consumer: string): Promise<void> {
  const script = `
    const { SqliteUsageStore } = await import(${JSON.stringify(new URL('./sqlite.ts', import.meta.url).href)});
    const store = new SqliteUsageStore(${JSON.stringify(file)});
    for (let i = 0; i < ${batches}; i++)
      await store.add([
        { hour: 0, consumer: 'shared', route: 'r', api: '', version: '', statusClass: '2xx', requests: 1, bytes: 3 },
        { hour: 0, consumer: ${JSON.stringify(consumer)}, route: 'r', api: '', version: '', statusClass: '2xx', requests: 1, bytes: 0 },
      ]);
    await store.close();`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const [code] = await once(child, 'exit');
  assert.equal(code, 0, stderr);
}

describe('sqlite usage store', () => {
  it('loses no count when several processes write the same file at once', async () => {
    const file = join(dir, 'processes.db');
    new SqliteUsageStore(file).close();
    await Promise.all([writer(file, 300, 'a'), writer(file, 300, 'b'), writer(file, 300, 'c')]);
    const store = new SqliteUsageStore(file, { readOnly: true });
    const rows = await store.query({});
    await store.close();
    assert.deepEqual(
      rows.map((r) => [r.consumer, r.requests, r.bytes]),
      [
        ['a', 300, 0],
        ['b', 300, 0],
        ['c', 300, 0],
        ['shared', 900, 2700],
      ],
    );
  });

  it('reads an empty result from a file no one has written yet, and read-only never creates one', async () => {
    const file = join(dir, 'never.db');
    assert.throws(() => new SqliteUsageStore(file, { readOnly: true }));
    assert.equal(existsSync(file), false);
    await new SqliteUsageStore(file).close();
    const store = new SqliteUsageStore(file, { readOnly: true });
    assert.deepEqual(await store.query({}), []);
    await assert.rejects(
      store.add([
        { hour: 0, consumer: 'a', route: 'r', api: '', version: '', statusClass: '2xx', requests: 1, bytes: 0 },
      ]),
    );
    await store.close();
  });
});
