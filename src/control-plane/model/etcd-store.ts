/**
 * The model in etcd: one key, `config` under the prefix, holding the validated config as JSON with
 * its version (hash), source, texts and the cause of the change. Its etcd revision orders changes
 * and is the change record's id on every control plane.
 *
 * A commit is a transaction that writes only if the key is still at the revision this control plane
 * last saw, so two control planes never overwrite each other unseen; a commit of the model the key
 * already holds writes nothing (several control planes following the same files all try to write
 * the same content: the first one wins, the others find it there).
 *
 * Every control plane watches the key and applies what it sees, after validating it again with the
 * same validator (the key may have been written by hand, or by a newer version): a model it cannot
 * validate is logged and not applied.
 */
import type { Config } from '../../api/config.ts';
import type { ConfigText, LoadOptions } from '../../config/load.ts';
import { checkConfig } from '../../config/pipeline.ts';
import type { Logger } from '../../observability/logger.ts';
import { type EtcdConnection, type KeyEvent, PrefixFollower, revisionOf } from '../etcd/etcd.ts';
import type { MeshModel } from './model.ts';
import type { ApplyModel, ModelStore } from './store.ts';

const KEY = 'config';

interface StoredModel {
  version: string;
  source: string;
  texts: ConfigText[];
  config: Config;
  cause: string;
  /** ISO time it was committed. */
  at: string;
}

export class ModelConflictError extends Error {
  override readonly name = 'ModelConflictError';
}

export class EtcdModelStore implements ModelStore {
  initial: MeshModel | null = null;
  private readonly etcd: EtcdConnection;
  private readonly load: Pick<LoadOptions, 'catalog' | 'extraChecks'>;
  private readonly log: Pick<Logger, 'info' | 'error'>;
  private readonly follower: PrefixFollower;
  private apply: ApplyModel | null = null;
  /** The key's revision and version as last handled here (0: no key). */
  private revision = 0;
  private version: string | null = null;
  /** Models are validated asynchronously, then applied in revision order. */
  private chain: Promise<unknown> = Promise.resolve();
  /** The change id each revision got when applied, until its committer here takes it. */
  private readonly applied = new Map<number, number | null>();

  private constructor(
    etcd: EtcdConnection,
    options: { load: Pick<LoadOptions, 'catalog' | 'extraChecks'>; log: Pick<Logger, 'info' | 'error'> },
  ) {
    this.etcd = etcd;
    this.load = options.load;
    this.log = options.log;
    this.follower = new PrefixFollower(etcd.ns, KEY, (e, revision) => this.onKeyEvent(e, revision));
  }

  /** Reads (and validates) the stored model, and follows the key from there. */
  static async open(
    etcd: EtcdConnection,
    options: { load: Pick<LoadOptions, 'catalog' | 'extraChecks'>; log: Pick<Logger, 'info' | 'error'> },
  ): Promise<EtcdModelStore> {
    const store = new EtcdModelStore(etcd, options);
    const { kvs } = await store.follower.start();
    const kv = kvs.find((k) => k.key.toString() === KEY);
    if (kv) {
      store.revision = Number(kv.mod_revision);
      const model = await store.validate(kv.value, store.revision);
      if (model) {
        store.initial = model;
        store.version = model.version;
      }
    }
    return store;
  }

  follow(apply: ApplyModel): void {
    this.apply = apply;
  }

  async commit(model: MeshModel, cause: string): Promise<number | null> {
    await this.chain;
    if (model.version === this.version) return null;
    const stored: StoredModel = {
      version: model.version,
      source: model.source,
      texts: [...model.texts],
      config: model.config,
      cause,
      at: new Date().toISOString(),
    };
    const ns = this.etcd.ns;
    const res = await ns
      .if(KEY, 'Mod', '==', this.revision)
      .then(ns.put(KEY).value(JSON.stringify(stored)))
      .else(ns.get(KEY))
      .commit();
    if (!res.succeeded) {
      const current = res.responses[0]?.response_range?.kvs[0];
      const theirs = current ? read(current.value)?.version : undefined;
      // Someone else committed the same model first (control planes following the same files).
      if (theirs === model.version) {
        await this.follower.caughtUp(Number(current!.mod_revision));
        await this.chain;
        return null;
      }
      throw new ModelConflictError(
        `the model was changed by another control plane meanwhile (now ${theirs ?? 'unreadable'}, revision ${current?.mod_revision ?? 'deleted'}); nothing was changed, apply again`,
      );
    }
    const revision = revisionOf(res);
    let id: number | null = null;
    // Applied here at once (the model is validated already), unless the watch got there first.
    this.chain = this.chain.then(() => {
      if (revision <= this.revision) {
        id = this.applied.get(revision) ?? null;
        return;
      }
      this.revision = revision;
      this.version = model.version;
      id = this.apply?.(model, cause, revision) ?? null;
    });
    await this.chain;
    this.applied.clear();
    return id;
  }

  async close(): Promise<void> {
    await this.follower.close();
    await this.chain;
  }

  private onKeyEvent(event: KeyEvent, revision: number) {
    if (event.key !== '') return;
    this.chain = this.chain.then(async () => {
      if (revision <= this.revision) return;
      if (event.type === 'delete') {
        // The model stays in force; the next commit creates the key again.
        this.revision = 0;
        this.version = null;
        this.log.error(
          { key: `${this.etcd.prefix}${KEY}` },
          'the model key was deleted from etcd; the model in force is kept',
        );
        return;
      }
      const model = await this.validate(event.kv.value, revision);
      this.revision = revision;
      if (model === null || model.version === this.version) return;
      this.version = model.version;
      const id = this.apply?.(model, read(event.kv.value)?.cause ?? 'config changed in etcd', revision) ?? null;
      this.applied.set(revision, id);
      // Only a commit in flight here reads it; never more than a few.
      if (this.applied.size > 16) this.applied.delete(this.applied.keys().next().value!);
    });
  }

  /** The stored model, validated again; null (logged) when it is not valid here. */
  private async validate(value: Buffer, revision: number): Promise<MeshModel | null> {
    const stored = read(value);
    if (stored === null) {
      this.log.error({ revision }, 'the model in etcd is not readable; the model in force is kept');
      return null;
    }
    const checked = await checkConfig({ kind: 'object', data: stored.config, source: stored.source }, 'etcd', {
      load: this.load,
    });
    if (!checked.ok) {
      this.log.error(
        { revision, issues: checked.issues.map((i) => `${i.path}: ${i.message}`) },
        'the model in etcd is not valid here; the model in force is kept',
      );
      return null;
    }
    return Object.freeze({
      config: checked.value.loaded.config,
      version: checked.value.loaded.hash,
      source: stored.source,
      texts: Object.freeze(stored.texts.map((t) => Object.freeze({ ...t }))),
      loadedAt: new Date(stored.at),
    });
  }
}

function read(value: Buffer): StoredModel | null {
  try {
    const stored = JSON.parse(value.toString()) as StoredModel;
    return typeof stored?.version === 'string' && stored.config && typeof stored.config === 'object' ? stored : null;
  } catch {
    return null;
  }
}
