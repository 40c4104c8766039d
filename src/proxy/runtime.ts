/**
 * The one reference to the Snapshot in force. `apply` compiles a validated config and swaps the
 * reference; a request keeps the snapshot it started with (its StreamContext holds it), so a reload
 * never changes a request mid-flight. A replaced snapshot releases its services when its last request
 * ends; services no snapshot holds close their connections.
 */
import { performance } from 'node:perf_hooks';
import type { LoadedConfig } from '../config/load.ts';
import type { LocalReply } from '../core/plugin.ts';
import { runLogFilters } from './chain/filters.ts';
import type { Snapshot } from './compiled.ts';
import type { StreamContext, StreamHost } from './context.ts';
import { writeLocalReply } from './local-reply.ts';
import type { Shadow } from './shadow/shadow.ts';
import { type CompileDeps, compileSnapshot, releaseSnapshot, startServices } from './snapshot.ts';
import type { Telemetry } from './telemetry.ts';

/** A replaced snapshot still counting requests after this long is released anyway (a leaked count). */
const RELEASE_DEADLINE_MS = 10 * 60_000;

export class Runtime implements StreamHost {
  private current: Snapshot;
  private readonly replaced = new Map<Snapshot, NodeJS.Timeout>();
  private readonly streamEnd: (ctx: StreamContext) => void;
  private readonly deps: CompileDeps;
  private served = 0;

  readonly onFilterError: ((ctx: StreamContext, plugin: string, error: unknown) => void) | undefined;
  /** Set by the proxy that owns this runtime. */
  telemetry: Telemetry | null = null;
  /** The shadow config evaluated beside the snapshot in force (ProxyServer.setShadow); null: none. */
  shadow: Shadow | null = null;

  private constructor(
    first: Snapshot,
    deps: CompileDeps,
    onStreamEnd: (ctx: StreamContext) => void,
    onFilterError?: (ctx: StreamContext, plugin: string, error: unknown) => void,
  ) {
    this.current = first;
    startServices(first);
    this.deps = deps;
    this.streamEnd = onStreamEnd;
    this.onFilterError = onFilterError;
  }

  static async create(
    loaded: LoadedConfig,
    deps: CompileDeps,
    onStreamEnd: (ctx: StreamContext) => void = () => {},
    onFilterError?: (ctx: StreamContext, plugin: string, error: unknown) => void,
  ): Promise<Runtime> {
    return new Runtime(await compileSnapshot(loaded, 1, deps), deps, onStreamEnd, onFilterError);
  }

  get snapshot(): Snapshot {
    return this.current;
  }

  /** Compiles `loaded` into the next snapshot without making it current. */
  prepare(loaded: LoadedConfig): Promise<Snapshot> {
    return compileSnapshot(loaded, this.current.version + 1, this.deps, this.current);
  }

  /** Makes a prepared snapshot current (one reference swap); the previous one retires when idle. */
  commit(next: Snapshot): void {
    const previous = this.current;
    if (next.version <= previous.version) {
      // Another change was committed while this one compiled: never go back to an older config.
      this.discard(next);
      throw new Error('a newer config was applied meanwhile');
    }
    this.current = next;
    startServices(next);
    if (previous.inflight.count === 0) releaseSnapshot(previous);
    else {
      const timer = setTimeout(() => this.release(previous), RELEASE_DEADLINE_MS);
      timer.unref();
      this.replaced.set(previous, timer);
    }
  }

  /** Drops a prepared snapshot that will not be committed. */
  discard(next: Snapshot): void {
    releaseSnapshot(next);
  }

  onStreamStart(ctx: StreamContext): void {
    ctx.snapshot.inflight.count++;
  }

  /** Requests this process has finished (answered, refused or aborted) since it started. */
  get requestsServed(): number {
    return this.served;
  }

  writeReply(ctx: StreamContext, reply: LocalReply): boolean {
    return writeLocalReply(ctx, reply);
  }

  onStreamEnd(ctx: StreamContext): void {
    this.served++;
    if (ctx.activeFilters !== null) runLogFilters(ctx, performance.now() - ctx.startMs);
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
