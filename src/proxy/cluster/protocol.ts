/** Messages between the gateway's primary process and its workers (Node IPC, JSON). */
import type { LoadedConfig } from '../../config/load.ts';
import type { ProxyView } from '../describe.ts';

export type ToWorker =
  | { type: 'apply'; id: number; loaded: LoadedConfig }
  | { type: 'query'; id: number; view: ProxyView }
  | { type: 'drain'; drainMs: number };

export type FromWorker =
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
