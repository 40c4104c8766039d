/**
 * The upstream decisions of one request, as JSON for the access log and the admin API: where it went,
 * how many tries it took and why each retried try failed, and why it was refused or not retried.
 * Built on demand from the StreamContext (never on the request path).
 */
import type { StreamContext } from '../context.ts';

export interface UpstreamDecisions {
  service: string | null;
  subset: string | null;
  /** `host:port` of the endpoint of the last try. */
  endpoint: string | null;
  tries: number;
  /** The retried tries, oldest first, then the last one's outcome. */
  tryLog: { endpoint: string; outcome: string }[];
  /** Why the request was refused without an upstream answer (see docs/resilience.md). */
  refusal: string | null;
  /** Why a retriable failure was not retried. */
  retryStop: string | null;
  panic: boolean;
  faultDelayMs: number;
  mirrored: boolean;
  /** Overall upstream timeout in force (ms, 0: none), and the client's X-Request-Timeout if sent. */
  timeoutMs: number;
  requestTimeout: string | null;
}

export function upstreamDecisions(ctx: StreamContext): UpstreamDecisions {
  const tryLog = ctx.tryLog === null ? [] : [...ctx.tryLog];
  if (ctx.endpoint !== null && ctx.tries > tryLog.length)
    tryLog.push({ endpoint: ctx.endpoint.authority, outcome: ctx.code ?? `status ${ctx.status}` });
  return {
    service: ctx.destination?.service.name ?? null,
    subset: ctx.destination?.subset ?? null,
    endpoint: ctx.endpoint?.authority ?? null,
    tries: ctx.tries,
    tryLog,
    refusal: ctx.refusal,
    retryStop: ctx.retryStop,
    panic: ctx.panic,
    faultDelayMs: ctx.faultDelayMs,
    mirrored: ctx.mirrored,
    timeoutMs: ctx.timeoutMs,
    requestTimeout: ctx.requestTimeoutHeader,
  };
}
