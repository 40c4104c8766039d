/**
 * The gateway on several cores: the primary process holds the config (loads, validates, watches) and
 * the admin API; N worker processes run the data plane and share the listening ports (node:cluster,
 * round-robin accept). A config reaches every worker or none (prepare on all, then commit on all); a crashed worker is replaced and given
 * the config in force; draining drains every worker.
 */
import cluster, { type Worker } from 'node:cluster';
import { fileURLToPath } from 'node:url';
import type { LoadedConfig } from '../../config/load.ts';
import type { Logger } from '../../observability/logger.ts';
import type { MetricsRole } from '../../observability/metrics.ts';
import { RateLimitHost } from '../../stores/primary.ts';
import type { ApplyReport, DataPlane, PreparedConfig } from '../data-plane.ts';
import type { ProxyView } from '../describe.ts';
import type { FromWorker, ToWorker } from './protocol.ts';

/** A worker that does not answer within this long is considered stuck. */
const WORKER_REPLY_TIMEOUT_MS = 10_000;
/** Respawn backoff after a crash: starts here, doubles per crash within a minute, capped. */
const RESPAWN_BASE_DELAY_MS = 100;
const RESPAWN_MAX_DELAY_MS = 10_000;

/** V8 flags for workers: `gc` for upstream/streamed-bytes.ts, which bounds the memory of large bodies. */
const WORKER_EXEC_ARGV = ['--expose-gc'];

type WithoutId<T> = T extends { id: number } ? Omit<T, 'id'> : never;
type WorkerRequest = WithoutId<ToWorker>;

interface Pending {
  resolve: (value: Record<string, unknown>) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

class WorkerHandle {
  readonly worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  constructor(worker: Worker, limits: RateLimitHost) {
    this.worker = worker;
    worker.on('message', (m: FromWorker) => {
      if (m.type === 'limit') {
        // Decided at once, in arrival order: the one count every worker shares.
        if (worker.isConnected()) worker.send(limits.answer(m) satisfies ToWorker);
        return;
      }
      if (m.type !== 'reply') return;
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      clearTimeout(p.timer);
      if (m.ok) p.resolve(m.value);
      else p.reject(Object.assign(new Error(m.error), m));
    });
    worker.on('exit', () => {
      for (const p of this.pending.values()) {
        clearTimeout(p.timer);
        p.reject(Object.assign(new Error(`worker ${worker.process.pid} exited`), {}));
      }
      this.pending.clear();
    });
  }

  get pid(): number {
    return this.worker.process.pid ?? 0;
  }

  request(message: WorkerRequest): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(Object.assign(new Error(`worker ${this.pid} did not answer within ${WORKER_REPLY_TIMEOUT_MS} ms`), {}));
      }, WORKER_REPLY_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      this.worker.send({ ...message, id } as ToWorker);
    });
  }
}

interface WorkerPrepared extends PreparedConfig {
  change: number;
  /** The workers that prepared it. */
  handles: WorkerHandle[];
}

export class WorkerDataPlane implements DataPlane {
  private readonly handles = new Map<number, WorkerHandle>();
  private current: LoadedConfig;
  private listenerPorts: Record<string, number> = {};
  private draining = false;
  private readonly log: Logger;
  private recentCrashes: number[] = [];
  /** Reloads prepared so far: names each one in the workers. */
  private changes = 0;
  /** Every worker's in-memory rate limits, counted here (src/stores/primary.ts); outlives workers and reloads. */
  private readonly limits = new RateLimitHost();

  private constructor(loaded: LoadedConfig, log: Logger) {
    this.current = loaded;
    this.log = log;
  }

  /**
   * Forks `count` workers and starts each on `loaded`; rejects (stopping them) if any cannot start.
   * `role` and `serviceName` are what an in-process ProxyServer takes as options (metrics prefix, the
   * name in spans and Server-Timing).
   */
  static async start(
    loaded: LoadedConfig,
    count: number,
    log: Logger,
    identity: { role?: MetricsRole; serviceName?: string | undefined } = {},
  ): Promise<WorkerDataPlane> {
    const plane = new WorkerDataPlane(loaded, log);
    const here = import.meta.url;
    const env: Record<string, string | undefined> = { ...process.env, MESHGATE_ROLE: identity.role ?? 'gateway' };
    if (identity.serviceName !== undefined) env.MESHGATE_SERVICE = identity.serviceName;
    cluster.setupPrimary({
      exec: fileURLToPath(new URL(here.endsWith('.ts') ? './worker-main.ts' : './worker-main.js', here)),
      execArgv: [...process.execArgv, ...WORKER_EXEC_ARGV],
      // Workers read who they are from their environment (worker-main.ts).
      ...({ env } as object),
    });
    try {
      await Promise.all(Array.from({ length: count }, () => plane.spawn()));
    } catch (e) {
      await plane.close(0);
      throw e;
    }
    cluster.on('exit', (worker, code, signal) => plane.onExit(worker, code, signal));
    return plane;
  }

  get isDraining() {
    return this.draining;
  }

  ports() {
    return this.listenerPorts;
  }

  pids(): number[] {
    return [...this.handles.values()].map((h) => h.pid);
  }

  private async spawn(): Promise<void> {
    const handle = new WorkerHandle(cluster.fork(), this.limits);
    this.handles.set(handle.worker.id, handle);
    const value = await handle.request({ type: 'apply', loaded: this.current });
    this.listenerPorts = value.ports as Record<string, number>;
  }

  /**
   * Phase one: every worker prepares `loaded` (compiles it, reads its certificates, binds new
   * listeners). If any refuses or does not answer in time, every worker discards it and this rejects
   * with the first refusal: no worker ever serves a config another refused.
   */
  async prepare(loaded: LoadedConfig): Promise<PreparedConfig> {
    const handles = [...this.handles.values()];
    const change = ++this.changes;
    const results = await Promise.allSettled(handles.map((h) => h.request({ type: 'prepare', change, loaded })));
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) {
      // Also to the workers that refused or timed out: one that answers late drops what it prepared.
      await Promise.allSettled(handles.map((h) => h.request({ type: 'discard', change })));
      const reason = (failed as PromiseRejectedResult).reason as Error;
      const refusedBy = handles.filter((_, i) => results[i]!.status === 'rejected').map((h) => h.pid);
      throw Object.assign(reason, { refusedBy });
    }
    return { loaded, change, handles } as WorkerPrepared;
  }

  /**
   * Phase two: every worker that prepared puts it in force. A worker that died meanwhile is replaced
   * on this config; a worker started during the prepare is caught up.
   */
  async commit(prepared: PreparedConfig): Promise<ApplyReport> {
    const { loaded, change, handles } = prepared as WorkerPrepared;
    this.current = loaded;
    const results = await Promise.allSettled(handles.map((h) => h.request({ type: 'commit', change })));
    const committed = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    results.forEach((r, i) => {
      if (r.status === 'rejected')
        this.log.error({ pid: handles[i]!.pid, err: (r.reason as Error).message }, 'worker did not commit the config');
    });
    const late = [...this.handles.values()].filter((h) => !handles.includes(h));
    await Promise.allSettled(late.map((h) => h.request({ type: 'apply', loaded })));
    const first = committed[0];
    if (first === undefined) throw new Error('no worker committed the config');
    this.listenerPorts = first.ports as Record<string, number>;
    return { version: first.version as number, hash: loaded.hash, applied: committed.length };
  }

  async discard(prepared: PreparedConfig): Promise<void> {
    const { change, handles } = prepared as WorkerPrepared;
    await Promise.allSettled(handles.map((h) => h.request({ type: 'discard', change })));
  }

  async apply(loaded: LoadedConfig): Promise<ApplyReport> {
    return this.commit(await this.prepare(loaded));
  }

  async query(view: ProxyView): Promise<Record<string, unknown>[]> {
    return Promise.all([...this.handles.values()].map((h) => h.request({ type: 'query', view })));
  }

  private onExit(worker: Worker, code: number | null, signal: string | null) {
    if (!this.handles.delete(worker.id) || this.draining) return;
    const now = Date.now();
    this.recentCrashes = [...this.recentCrashes.filter((t) => now - t < 60_000), now];
    const delay = Math.min(RESPAWN_MAX_DELAY_MS, RESPAWN_BASE_DELAY_MS * 2 ** (this.recentCrashes.length - 1));
    this.log.error({ pid: worker.process.pid, code, signal, respawnInMs: delay }, 'worker exited; replacing it');
    setTimeout(() => {
      if (this.draining) return;
      this.spawn().then(
        () => this.log.info({ workers: this.pids() }, 'worker replaced'),
        (e: Error) => this.log.error({ err: e.message }, 'replacement worker failed to start'),
      );
    }, delay).unref();
  }

  /** Tells every worker to drain, waits for them to exit (killing stragglers after the deadline). */
  async close(drainMs: number): Promise<void> {
    this.draining = true;
    const workers = [...this.handles.values()].map((h) => h.worker);
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.isDead()) return resolve();
            const kill = setTimeout(() => w.process.kill('SIGKILL'), drainMs + 2_000);
            w.once('exit', () => {
              clearTimeout(kill);
              resolve();
            });
            try {
              w.send({ type: 'drain', drainMs } satisfies ToWorker);
            } catch {
              w.process.kill('SIGTERM');
            }
          }),
      ),
    );
    this.handles.clear();
  }
}
