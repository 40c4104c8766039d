/** Messages between the gateway's primary process and its workers (Node IPC, JSON). */
import type { LoadedConfig } from '../../config/load.ts';
import type { LimitBatch, LimitDecided } from '../../stores/primary.ts';
import type { ProxyView } from '../describe.ts';

/**
 * `apply` starts a worker on the config in force (or catches a replaced one up). A reload is two-phase:
 * `prepare` on every worker, then `commit` on every worker only if all prepared, else `discard`;
 * `change` names the reload, so a worker commits or discards only what it prepared for it.
 */
export type ToWorker =
  | { type: 'apply'; id: number; loaded: LoadedConfig }
  | { type: 'prepare'; id: number; change: number; loaded: LoadedConfig }
  | { type: 'commit'; id: number; change: number }
  | { type: 'discard'; id: number; change: number }
  | { type: 'query'; id: number; view: ProxyView }
  | { type: 'drain'; drainMs: number }
  /** The primary's decisions on a worker's batch of rate-limit requests (src/stores/primary.ts). */
  | LimitDecided;

export type FromWorker =
  /** A worker's rate-limit requests of one event-loop turn, for the primary to decide. */
  | LimitBatch
  | { type: 'reply'; id: number; ok: true; value: Record<string, unknown> }
  | {
      type: 'reply';
      id: number;
      ok: false;
      error: string;
      code?: string;
      syscall?: string;
      address?: string;
      port?: number;
    };
