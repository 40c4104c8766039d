/**
 * Request coalescing: concurrent misses for one key make one upstream call. The first miss leads
 * (its response streams to its client as usual); later misses for the key follow: they wait, at most
 * `coalesceTimeout` from when the leader started, for the entry the leader stores, and are answered
 * from it. When the leader's response cannot be stored (uncacheable, too large, another status) or
 * fails (upstream error, client gone), or the wait runs out, each follower goes upstream itself.
 *
 * A key whose response turned out uncacheable is remembered for `hitForMiss` (Varnish's hit-for-miss):
 * its next misses go upstream at once, side by side, instead of queueing behind a leader whose answer
 * no one can share. A later cacheable response is still stored.
 *
 * One `Flights` per proxy process (plugin state), whatever the store: workers and gateways sharing a
 * Redis each coalesce their own misses.
 */

/** What a leader hands its followers: the entry it stored and the variant it is (Vary), or null: go upstream. */
export interface Landing<E> {
  entry: E;
  /** The variant key suffix of the leader's request ('' when the response does not vary). */
  variant: string;
  /** The request headers the response varies on (empty when it does not). */
  vary: readonly string[];
}

type Waiter<E> = (landing: Landing<E> | null) => void;

export class Flight<E> {
  private waiters: Waiter<E>[] = [];
  private readonly timer: NodeJS.Timeout | null;
  /** False once the wait ran out or the leader settled: later misses do not wait on it. */
  accepting = true;
  /** What the leader stored, while its write to a shared store is still on its way. */
  landed: Landing<E> | null = null;

  constructor(timeoutMs: number) {
    this.timer = setTimeout(() => this.release(), timeoutMs);
    this.timer.unref();
  }

  /** Resolves with the leader's entry, or null when the follower should go upstream itself. */
  wait(): Promise<Landing<E> | null> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Followers waiting now (for tests and the admin view). */
  get waiting(): number {
    return this.waiters.length;
  }

  /** The leader is done: with the entry every follower is answered from, or null. */
  settle(landing: Landing<E> | null): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.accepting = false;
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve(landing);
  }

  private release(): void {
    this.accepting = false;
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve(null);
  }
}

export class Flights<E> {
  private readonly inFlight = new Map<string, Flight<E>>();
  /** Keys whose response was uncacheable, until when (ms since the epoch); oldest first. */
  private readonly uncacheable = new Map<string, number>();
  private readonly maxRemembered: number;

  /** `maxRemembered`: hit-for-miss keys kept at most (the oldest is forgotten first). */
  constructor(maxRemembered = 10_000) {
    this.maxRemembered = maxRemembered;
  }

  /** The flight of `id` in progress, if any. */
  get(id: string): Flight<E> | undefined {
    return this.inFlight.get(id);
  }

  /** True while `id` is remembered as uncacheable at `now`. */
  isUncacheable(id: string, now: number): boolean {
    const until = this.uncacheable.get(id);
    if (until === undefined) return false;
    if (until > now) return true;
    this.uncacheable.delete(id);
    return false;
  }

  /** Starts a flight for `id`: the caller leads it and must `land` it exactly once. */
  lead(id: string, timeoutMs: number): Flight<E> {
    const flight = new Flight<E>(timeoutMs);
    this.inFlight.set(id, flight);
    return flight;
  }

  /**
   * Ends the leader's flight: followers get the landing (or go upstream on null); `uncacheableUntil`
   * (> 0) remembers the key as hit-for-miss until then.
   */
  land(
    id: string,
    flight: Flight<E>,
    landing: Landing<E> | null,
    uncacheableUntil = 0,
    written?: Promise<unknown>,
  ): void {
    if (uncacheableUntil > 0) this.rememberUncacheable(id, uncacheableUntil);
    else if (landing !== null) this.uncacheable.delete(id);
    flight.settle(landing);
    if (landing !== null && written !== undefined) {
      // A miss that read the shared store before this write lands would lead a second call: until the
      // write is done, misses are answered from the landing.
      flight.landed = landing;
      // After the microtasks of the reply that completed the write: a read answered in the same batch of
      // replies still finds the landing.
      const done = () =>
        setImmediate(() => {
          if (this.inFlight.get(id) === flight) this.inFlight.delete(id);
        });
      written.then(done, done);
      return;
    }
    if (this.inFlight.get(id) === flight) this.inFlight.delete(id);
  }

  /** Remembers `id` as uncacheable (a response that was not storable), without a flight. */
  rememberUncacheable(id: string, until: number): void {
    this.uncacheable.delete(id);
    if (this.uncacheable.size >= this.maxRemembered) this.uncacheable.delete(this.uncacheable.keys().next().value!);
    this.uncacheable.set(id, until);
  }

  /** A stored response makes the key cacheable again. */
  forgetUncacheable(id: string): void {
    this.uncacheable.delete(id);
  }

  get size(): number {
    return this.inFlight.size;
  }
}
