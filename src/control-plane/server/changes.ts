/**
 * Change records: every change to what proxies should hold (a new model, an instance joining or
 * leaving) gets an id, and its record says which proxies it was pushed to, which applied it, which
 * rejected it and why, and how long it took to reach each (`GET /changes/{id}`, `meshgate status`).
 */
import type { ChangeRecord, ChangeResult, ConfigIssue, RolloutView } from '../../api/mesh.ts';
import { DEFAULT_CHANGE_HISTORY } from '../../core/defaults.ts';

export interface Result {
  proxy: string;
  status: ChangeResult['status'];
  version: string;
  nonce: string;
  pushedAt: number;
  answeredAt: number | null;
  error?: { message: string; issues?: ConfigIssue[] };
}

/** One control plane's part of a change record (with etcd, each writes its own; readers merge them). */
export interface Change {
  id: number;
  kind: ChangeRecord['kind'];
  cause: string;
  at: number;
  modelVersion: string;
  /** False until the change has been pushed (it may wait for the debounce or the warm-up). */
  flushed: boolean;
  unaffected: number;
  results: Map<string, Result>;
  /** Set when the change is rolled out to canary proxies first. */
  rollout?: RolloutView;
}

export type Outcome =
  | { status: 'applied'; at: number }
  | { status: 'rejected'; at: number; error: { message: string; issues?: ConfigIssue[] } }
  | { status: 'disconnected'; at: number };

export class ChangeLog {
  protected readonly changes = new Map<number, Change>();
  private nextId = 1;
  protected readonly limit: number;

  constructor(limit = DEFAULT_CHANGE_HISTORY) {
    this.limit = limit;
  }

  /**
   * Records a change. `id`: given when the change has an id outside this process (with etcd: the
   * revision that made it, the same on every control plane); otherwise the next of a counter.
   */
  create(kind: Change['kind'], cause: string, modelVersion: string, at: number, id?: number): number {
    id ??= this.nextId;
    this.nextId = Math.max(this.nextId, id + 1);
    this.changes.set(id, { id, kind, cause, at, modelVersion, flushed: false, unaffected: 0, results: new Map() });
    // Maps iterate in insertion order: the first key is the oldest.
    while (this.changes.size > this.limit) this.changes.delete(this.changes.keys().next().value!);
    this.touched(id);
    return id;
  }

  /** Called after every update of a record (a store that persists them writes it). */
  protected touched(_id: number): void {}

  /** The change was pushed to `proxy` as (`version`, `nonce`). */
  pushed(id: number, proxy: string, version: string, nonce: string, at: number): void {
    const change = this.changes.get(id);
    if (!change) return;
    change.results.set(proxy, { proxy, status: 'pending', version, nonce, pushedAt: at, answeredAt: null });
    this.touched(id);
  }

  /**
   * A flush that carried the change is done, with `connected` proxies connected: those it was never
   * pushed to were sent nothing (a rollout's change is flushed twice: to its canaries, then to all).
   */
  flushed(id: number, connected: number): void {
    const change = this.changes.get(id);
    if (!change) return;
    change.flushed = true;
    change.unaffected = Math.max(0, connected - change.results.size);
    this.touched(id);
  }

  /** Sets how a rolled-out change is going (its record's `rollout`). */
  rollout(id: number, rollout: RolloutView): void {
    const change = this.changes.get(id);
    if (!change) return;
    change.rollout = rollout;
    this.touched(id);
  }

  /**
   * The proxy answered the push that carried these changes (or went away before it did). Returns,
   * for an `applied` outcome, each change's propagation time to this proxy (ms).
   */
  answered(ids: readonly number[], proxy: string, outcome: Outcome): number[] {
    const propagation: number[] = [];
    for (const id of ids) {
      const change = this.changes.get(id);
      const result = change?.results.get(proxy);
      if (result?.status !== 'pending') continue;
      result.status = outcome.status;
      result.answeredAt = outcome.at;
      if (outcome.status === 'rejected') result.error = outcome.error;
      else if (outcome.status === 'applied') propagation.push(outcome.at - change!.at);
      this.touched(id);
    }
    return propagation;
  }

  get(id: number): ChangeRecord | undefined {
    const change = this.changes.get(id);
    return change && view(change);
  }

  /** The most recent records, newest first. */
  recent(limit: number): ChangeRecord[] {
    return [...this.changes.values()].slice(-limit).reverse().map(view);
  }

  get lastId(): number {
    return this.nextId - 1;
  }

  /** `get`, from wherever records are kept (with etcd: merged from every control plane). */
  async read(id: number): Promise<ChangeRecord | undefined> {
    return this.get(id);
  }

  /** `recent`, from wherever records are kept. */
  async readRecent(limit: number): Promise<ChangeRecord[]> {
    return this.recent(limit);
  }

  /** Writes what is pending and stops (a store that persists records). */
  async close(): Promise<void> {}
}

export function view(change: Change): ChangeRecord {
  const results = [...change.results.values()].sort((a, b) => (a.proxy < b.proxy ? -1 : 1));
  const times = results
    .filter((r) => r.status === 'applied')
    .map((r) => r.answeredAt! - change.at)
    .sort((a, b) => a - b);
  let status: ChangeRecord['status'];
  if (change.rollout?.state === 'rolled-back') status = 'rolled-back';
  else if (!change.flushed || change.rollout?.state === 'canary' || results.some((r) => r.status === 'pending'))
    status = 'propagating';
  else if (results.length === 0) status = 'no-op';
  else if (results.some((r) => r.status === 'rejected')) status = 'rejected';
  else if (results.some((r) => r.status === 'disconnected')) status = 'incomplete';
  else status = 'applied';
  return {
    id: change.id,
    kind: change.kind,
    cause: change.cause,
    at: new Date(change.at).toISOString(),
    modelVersion: change.modelVersion,
    status,
    unaffected: change.unaffected,
    results: results.map((r) => ({
      proxy: r.proxy,
      status: r.status,
      version: r.version,
      nonce: r.nonce,
      pushedAt: new Date(r.pushedAt).toISOString(),
      answeredAt: r.answeredAt === null ? null : new Date(r.answeredAt).toISOString(),
      propagationMs: r.status === 'applied' ? r.answeredAt! - change.at : null,
      ...(r.error ? { error: r.error } : {}),
    })),
    propagation: {
      applied: times.length,
      p50Ms: percentile(times, 0.5),
      p99Ms: percentile(times, 0.99),
      maxMs: times.length ? times[times.length - 1]! : null,
    },
    ...(change.rollout ? { rollout: change.rollout } : {}),
  };
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}
