/**
 * The model store contract, against memory and a real etcd; then what only a shared store does:
 * another control plane applies the same change under the same id, a writer that did not see the
 * latest model is refused, the same content from two writers is written once, a reopened store reads
 * the model back; and change records in etcd keep their retention bound.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { EtcdServer } from '../../../test/helpers/etcd.ts';
import { model } from '../../../test/helpers/mesh.ts';
import { silentLogger } from '../../observability/logger.ts';
import { connectEtcd, type EtcdConnection } from '../etcd/etcd.ts';
import { EtcdChangeLog } from '../server/etcd-changes.ts';
import { EtcdModelStore } from './etcd-store.ts';
import { checkMeshRules, type MeshModel } from './model.ts';
import { MemoryModelStore, type ModelStore } from './store.ts';

const v1 = model('routes: [{ name: a, directResponse: { status: 200, body: one } }]\n');
const v2 = model('routes: [{ name: a, directResponse: { status: 200, body: two } }]\n');
const v3 = model('routes: [{ name: a, directResponse: { status: 200, body: three } }]\n');

/** A follower like the control plane's: records what it applied, ids from the store or a counter. */
function follower(store: ModelStore) {
  const applied: { version: string; cause: string; id: number }[] = [];
  let current: string | null = null;
  let next = 1;
  store.follow((m: MeshModel, cause: string, id?: number) => {
    if (m.version === current) return null;
    current = m.version;
    const change = id ?? next++;
    applied.push({ version: m.version, cause, id: change });
    return change;
  });
  return applied;
}

let etcd: EtcdServer;
const connections: EtcdConnection[] = [];
before(async () => {
  etcd = await EtcdServer.start();
});
after(async () => {
  for (const c of connections) c.close();
  await etcd?.stop();
});
const connection = async (prefix: string) => {
  const c = await connectEtcd([etcd.url], prefix);
  connections.push(c);
  return c;
};
const openEtcdStore = async (prefix: string) =>
  EtcdModelStore.open(await connection(prefix), { load: { extraChecks: checkMeshRules }, log: silentLogger() });

for (const [name, open] of [
  ['memory', async () => new MemoryModelStore()],
  ['etcd', () => openEtcdStore(`/store-${randomBytes(4).toString('hex')}/`)],
] as const) {
  describe(`model store: ${name}`, () => {
    it('a commit is applied with a change id; the model in force again is no change', async () => {
      const store: ModelStore = await open();
      const applied = follower(store);
      const id = await store.commit(v1, 'first');
      assert.ok(typeof id === 'number' && id > 0);
      assert.deepEqual(applied, [{ version: v1.version, cause: 'first', id }]);
      assert.equal(await store.commit(v1, 'again'), null);
      const second = await store.commit(v2, 'second');
      assert.ok(second! > id);
      assert.deepEqual(
        applied.map((a) => a.version),
        [v1.version, v2.version],
      );
      await store.close();
    });
  });
}

describe('model store: etcd, shared', () => {
  it('another store on the prefix applies each commit under the same id; a reopened one reads it back', async () => {
    const prefix = `/shared-${randomBytes(4).toString('hex')}/`;
    const a = await openEtcdStore(prefix);
    const b = await openEtcdStore(prefix);
    const appliedA = follower(a);
    const appliedB = follower(b);
    const id = await a.commit(v1, 'through a');
    await waitFor(() => appliedB.length === 1);
    assert.deepEqual(appliedB, [{ version: v1.version, cause: 'through a', id }]);
    assert.deepEqual(appliedA, appliedB);
    const c = await openEtcdStore(prefix);
    assert.equal(c.initial?.version, v1.version);
    assert.deepEqual(c.initial?.config, v1.config);
    for (const s of [a, b, c]) await s.close();
  });

  it('a writer that has not seen the latest model is refused; the same model from two writers is written once', async () => {
    const prefix = `/conflict-${randomBytes(4).toString('hex')}/`;
    const a = await openEtcdStore(prefix);
    const b = await openEtcdStore(prefix);
    follower(a);
    const appliedB = follower(b);
    await a.commit(v1, 'a');
    await waitFor(() => appliedB.length === 1);
    // b commits v2 while a has not heard of it yet (a's watch is cancelled, so it never will).
    await (a as unknown as { follower: { close(): Promise<void> } }).follower.close();
    await b.commit(v2, 'b');
    await assert.rejects(a.commit(v3, 'a again'), /changed by another control plane meanwhile .*apply again/);
    // The same content as is stored: nothing written, no error.
    assert.equal(await a.commit(v2, 'a, same as b'), null);
    assert.deepEqual(
      appliedB.map((x) => x.version),
      [v1.version, v2.version],
    );
    for (const s of [a, b]) await s.close();
  });
});

describe('change records in etcd', () => {
  it('keep at most the retention bound, oldest deleted first, and read back from another control plane', async () => {
    const conn = await connection(`/changes-${randomBytes(4).toString('hex')}/`);
    const log = await EtcdChangeLog.open(conn, 'cp-a', { limit: 3, persistDelayMs: 0, log: silentLogger() });
    for (let i = 1; i <= 5; i++) log.create('registry', `change ${i}`, 'm', Date.now(), 100 + i);
    log.pushed(105, 'gw-1', 'v', 'n', Date.now());
    log.flushed(105, 0);
    await log.close();
    const reader = await EtcdChangeLog.open(conn, 'cp-b', { log: silentLogger() });
    const ids = await waitFor(async () => {
      const recent = (await reader.readRecent(10)).map((r) => r.id);
      return recent.length === 3 ? recent : undefined;
    });
    assert.deepEqual(ids, [105, 104, 103]);
    // cp-a is gone (its lease revoked at close): its unanswered push reads as disconnected.
    const record = await reader.read(105);
    assert.deepEqual(
      record?.results.map((r) => [r.proxy, r.status]),
      [['gw-1', 'disconnected']],
    );
    assert.equal(record?.status, 'incomplete');
    await reader.close();
  });
});

async function waitFor<T>(check: () => T | Promise<T>, timeoutMs = 5_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false && value !== null) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
