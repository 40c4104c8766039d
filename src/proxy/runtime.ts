/**
 * The one reference to the Snapshot in force. `apply` compiles a validated config and swaps the
 * reference; a request keeps the snapshot it started with (its StreamContext holds it), so a reload
 * never changes a request mid-flight. A replaced snapshot releases its services when its last request
 * ends; services no snapshot holds close their connections.
 */
import type { LoadedConfig } from '../config/load.ts';
import type { StreamContext, StreamHost } from './context.ts';
import { compileSnapshot, releaseSnapshot, type Snapshot, startServices } from './snapshot.ts';

/** A replaced snapshot still counting requests after this long is released anyway (a leaked count). */
const RELEASE_DEADLINE_MS = 10 * 60_000;

export class Runtime implements StreamHost {
  private current: Snapshot;
  private readonly replaced = new Map<Snapshot, NodeJS.Timeout>();
  private readonly streamEnd: (ctx: StreamContext) => void;

  constructor(loaded: LoadedConfig, onStreamEnd: (ctx: StreamContext) => void = () => {}) {
    this.current = compileSnapshot(loaded, 1);
    startServices(this.current);
    this.streamEnd = onStreamEnd;
  }

  get snapshot(): Snapshot {
    return this.current;
  }

  /** Compiles and swaps in `loaded`. If compiling throws, the current snapshot stays. */
  apply(loaded: LoadedConfig): Snapshot {
    const previous = this.current;
    const next = compileSnapshot(loaded, previous.version + 1, previous);
    this.current = next;
    startServices(next);
    if (previous.inflight.count === 0) releaseSnapshot(previous);
    else {
      const timer = setTimeout(() => this.release(previous), RELEASE_DEADLINE_MS);
      timer.unref();
      this.replaced.set(previous, timer);
    }
    return next;
  }

  onStreamStart(ctx: StreamContext): void {
    ctx.snapshot.inflight.count++;
  }

  onStreamEnd(ctx: StreamContext): void {
    const snapshot = ctx.snapshot;
    if (--snapshot.inflight.count === 0 && snapshot !== this.current) this.release(snapshot);
    this.streamEnd(ctx);
  }

  private release(snapshot: Snapshot) {
    const timer = this.replaced.get(snapshot);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.replaced.delete(snapshot);
    releaseSnapshot(snapshot);
  }

  /** Releases every snapshot, closing all upstream connections (on shutdown, after draining). */
  async close(): Promise<void> {
    for (const snapshot of [...this.replaced.keys()]) this.release(snapshot);
    const services = [...this.current.services.values()];
    releaseSnapshot(this.current);
    await Promise.all(services.map((s) => s.close()));
  }
}
