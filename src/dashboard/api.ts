/**
 * The page's link to its server: JSON requests and the event stream, both with the operator token
 * when one is needed. The stream is read with fetch() rather than EventSource because EventSource
 * cannot send an Authorization header.
 */

import type { LookupResult, LookupSpan, WeightedRoute, WeightsOutcome } from '../admin/dashboard/api.ts';
import type { Overview } from '../admin/dashboard/telemetry-store.ts';
import type { ChangeRecord } from '../api/mesh.ts';

export type { ChangeRecord, LookupResult, LookupSpan, Overview, WeightedRoute, WeightsOutcome };

export interface Info {
  kind: 'control-plane' | 'gateway';
  intervalMs: number;
  windowMs: number;
  canWeights: boolean;
}

export interface ProxyRow {
  id: string;
  kind: string;
  service: string | null;
  labels: Record<string, string>;
  state: string;
  connected: boolean;
  ackedVersion: string | null;
  expectedVersion: string | null;
  lastAckAt: string | null;
  lastNack: { at: string; version: string; message: string } | null;
  certificate: { spiffeId: string; notAfter: string } | null;
  telemetry: { lastReportAt: string; rps: number; inflight: number } | null;
}

const TOKEN_KEY = 'meshgate.token';
const BASE = '/dashboard/api';

export class Unauthorized extends Error {}

export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value: string | null): void {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const t = token();
  return t ? { ...extra, authorization: `Bearer ${t}` } : extra;
}

export async function getJson<T>(path: string): Promise<T> {
  const res = await fetch(BASE + path, { headers: headers(), cache: 'no-store' });
  if (res.status === 401 || res.status === 403) throw new Unauthorized(await res.text());
  const body = (await res.json()) as T & { error?: string };
  if (!res.ok) throw new Error(body.error ?? `status ${res.status}`);
  return body;
}

export async function postJson<T>(path: string, body: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(BASE + path, {
    method: 'POST',
    headers: headers({ 'content-type': 'application/json' }),
    body: JSON.stringify(body),
  });
  if (res.status === 401 || res.status === 403) throw new Unauthorized(await res.text());
  return { status: res.status, body: (await res.json()) as T };
}

/** What the page knows now: the dashboard's identity and the latest of each live feed. */
export interface Live {
  info: Info;
  overview: Overview | null;
  proxies: ProxyRow[];
  changes: ChangeRecord[];
}

export interface StreamHandlers {
  onEvent(event: string, data: unknown): void;
  onState(state: 'live' | 'reconnecting' | 'unauthorized'): void;
}

/** Follows `/events` until `stop()`; reconnects with backoff. */
export function follow(handlers: StreamHandlers): { stop(): void } {
  let stopped = false;
  let controller: AbortController | null = null;
  let attempt = 0;
  const run = async () => {
    while (!stopped) {
      controller = new AbortController();
      try {
        const res = await fetch(`${BASE}/events`, { headers: headers(), signal: controller.signal, cache: 'no-store' });
        if (res.status === 401 || res.status === 403) {
          handlers.onState('unauthorized');
          return;
        }
        if (!res.ok || res.body === null) throw new Error(`status ${res.status}`);
        handlers.onState('live');
        attempt = 0;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffered = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffered += value;
          let end = buffered.indexOf('\n\n');
          while (end !== -1) {
            const block = buffered.slice(0, end);
            buffered = buffered.slice(end + 2);
            dispatch(block, handlers);
            end = buffered.indexOf('\n\n');
          }
        }
      } catch {
        if (stopped) return;
      }
      handlers.onState('reconnecting');
      attempt = Math.min(attempt + 1, 5);
      await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
    }
  };
  void run();
  return {
    stop() {
      stopped = true;
      controller?.abort();
    },
  };
}

function dispatch(block: string, handlers: StreamHandlers) {
  let event = 'message';
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue;
    if (line.startsWith('event:')) event = line.slice(6).trim();
    else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
  }
  if (data.length === 0) return;
  try {
    handlers.onEvent(event, JSON.parse(data.join('\n')));
  } catch {
    // A broken event changes nothing; the next one is whole again.
  }
}
