/**
 * Where the desired config (the model) is committed. The config pipeline's commit writes to the
 * store; the store hands every committed model, in order, to whoever follows it (the control plane's
 * `setModel`), on every control plane that shares it.
 *
 * - memory (the default): this process only; a commit is applied at once.
 * - etcd (`--etcd`): the model's JSON under `<prefix>config`, versioned by the etcd revision; every
 *   control plane on the same etcd and prefix applies every commit (etcd-store.ts).
 */
import type { MeshModel } from './model.ts';

/** Applies a committed model; returns its change id, or null when it already was the model. */
export type ApplyModel = (model: MeshModel, cause: string, id?: number) => number | null;

export interface ModelStore {
  /** The model the store holds at open (null: none yet, e.g. memory, or a new etcd prefix). */
  readonly initial: MeshModel | null;
  /** Sets who applies committed models (once, before the first commit). */
  follow(apply: ApplyModel): void;
  /**
   * Makes `model` the desired config; resolves after it was applied here, with its change id (null
   * when the store already held it). Rejects, changing nothing, when another writer changed the
   * model since this one last saw it (etcd: two control planes cannot overwrite each other unseen).
   */
  commit(model: MeshModel, cause: string): Promise<number | null>;
  close(): Promise<void>;
}

export class MemoryModelStore implements ModelStore {
  readonly initial = null;
  private apply: ApplyModel | null = null;

  follow(apply: ApplyModel): void {
    this.apply = apply;
  }

  async commit(model: MeshModel, cause: string): Promise<number | null> {
    if (this.apply === null) throw new Error('the model store has no follower');
    return this.apply(model, cause);
  }

  async close(): Promise<void> {}
}
