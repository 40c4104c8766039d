/**
 * Rate limits exact on one machine whatever `--workers` is: the primary process holds the only
 * MemoryStore and every worker asks it.
 *
 * Why this design: the primary decides one request after another in its single thread, so a limit of
 * 500 admits exactly 500 with any number of workers, by construction, and the sliding window, the
 * multi-window atomicity and Retry-After are MemoryStore's own (one implementation, one conformance
 * suite). The cost is one IPC round trip per decision, which batching makes cheap: every decision a
 * worker makes in one event-loop turn goes out as one message (flushed by setImmediate, after the
 * turn's I/O callbacks) and the primary answers the batch in one message. Leasing quota to workers
 * would save the round trip but must shrink to 1 near the limit and return unused leases at window
 * end, which a sliding window makes subtle; the round trip is measured in docs/benchmarks.md instead.
 * Shared memory (SharedArrayBuffer) does not cross node:cluster processes.
 *
 * The messages travel on the cluster's own IPC channel (protocol.ts), next to the config messages.
 */
import type { Decision, RateLimitStore, Window } from '../plugins/rate-limit/store.ts';
import { MemoryStore } from '../plugins/rate-limit/store.ts';

/** Worker → primary: decisions made in one turn, each `[key, windows, now]`, with `1` after a peek. */
export interface LimitBatch {
  type: 'limit';
  batch: number;
  calls: ([string, readonly Window[], number] | [string, readonly Window[], number, 1])[];
}

/** Primary → worker: one decision per call, in the order asked. */
export interface LimitDecided {
  type: 'limit-decided';
  batch: number;
  decisions: Decision[];
}

interface Waiting {
  key: string;
  windows: readonly Window[];
  now: number;
  peek: boolean;
  resolve: (d: Decision) => void;
  reject: (e: Error) => void;
}

/** The worker's side: a RateLimitStore whose decisions the primary makes. */
export class PrimaryRateLimitStore implements RateLimitStore {
  private readonly send: (message: LimitBatch) => void;
  private queue: Waiting[] = [];
  private readonly inFlight = new Map<number, Waiting[]>();
  private nextBatch = 1;
  private scheduled = false;
  private closed: Error | null = null;

  constructor(send: (message: LimitBatch) => void) {
    this.send = send;
  }

  consume(key: string, windows: readonly Window[], now: number): Promise<Decision> {
    return this.ask(key, windows, now, false);
  }

  peek(key: string, windows: readonly Window[], now: number): Promise<Decision> {
    return this.ask(key, windows, now, true);
  }

  private ask(key: string, windows: readonly Window[], now: number, peek: boolean): Promise<Decision> {
    if (this.closed !== null) return Promise.reject(this.closed);
    return new Promise((resolve, reject) => {
      this.queue.push({ key, windows, now, peek, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(this.flush);
      }
    });
  }

  private readonly flush = () => {
    this.scheduled = false;
    const waiting = this.queue;
    this.queue = [];
    if (waiting.length === 0) return;
    const batch = this.nextBatch++;
    this.inFlight.set(batch, waiting);
    const calls = waiting.map((w): LimitBatch['calls'][number] =>
      w.peek ? [w.key, w.windows, w.now, 1] : [w.key, w.windows, w.now],
    );
    try {
      this.send({ type: 'limit', batch, calls });
    } catch (e) {
      this.inFlight.delete(batch);
      for (const w of waiting) w.reject(e as Error);
    }
  };

  /** The primary's answer to a batch. */
  decided(message: LimitDecided): void {
    const waiting = this.inFlight.get(message.batch);
    if (waiting === undefined) return;
    this.inFlight.delete(message.batch);
    for (let i = 0; i < waiting.length; i++) waiting[i]!.resolve(message.decisions[i]!);
  }

  /** The channel to the primary is gone: what waits, and what asks from now on, fails (failOpen decides). */
  close(error: Error): void {
    this.closed = error;
    for (const waiting of this.inFlight.values()) for (const w of waiting) w.reject(error);
    this.inFlight.clear();
    for (const w of this.queue) w.reject(error);
    this.queue = [];
  }
}

/** The primary's side: the one store every worker's decisions are made in, in arrival order. */
export class RateLimitHost {
  readonly store = new MemoryStore();

  answer(message: LimitBatch): LimitDecided {
    const decisions = message.calls.map(([key, windows, now, peek]) =>
      peek === 1 ? this.store.peek(key, windows, now) : this.store.consume(key, windows, now),
    );
    return { type: 'limit-decided', batch: message.batch, decisions };
  }
}

/** Set in a gateway worker (worker-main.ts): the store its `store: memory` limits count in. */
let inWorker: PrimaryRateLimitStore | null = null;

/** Makes this process a worker whose rate limits the primary decides; returns the store to route answers to. */
export function countInPrimary(send: (message: LimitBatch) => void): PrimaryRateLimitStore {
  inWorker = new PrimaryRateLimitStore(send);
  return inWorker;
}

/** The primary-held store when this process is a gateway worker, else null (in process: count here). */
export function primaryRateLimitStore(): PrimaryRateLimitStore | null {
  return inWorker;
}
