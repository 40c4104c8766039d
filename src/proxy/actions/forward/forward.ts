/**
 * Running the forward action: faults first, then the destination, the upstream path and Host, the
 * timeouts, the body kept for retries or a mirror, and the first try (upstream/try.ts). WebSocket
 * upgrades take the same destination and path through `prepareUpgrade`.
 */
import type { Readable } from 'node:stream';
import { DEFAULT_MIRROR_BODY_BYTES } from '../../../core/defaults.ts';
import { parseDuration } from '../../../core/duration.ts';
import type { ForwardAction } from '../../compiled.ts';
import type { StreamContext } from '../../context.ts';
import { admitTry } from '../../upstream/attempt.ts';
import { type CompiledFault, roll } from '../../upstream/fault.ts';
import { type CompiledMirror, sendMirror } from '../../upstream/mirror.ts';
import { ReplayableBody } from '../../upstream/replay-body.ts';
import { bodySource } from '../../upstream/request-body.ts';
import { refuseTry, startTry } from '../../upstream/try.ts';
import { chooseDestination, requestHash, upstreamPathOf } from './destination.ts';

export function runForward(ctx: StreamContext, action: ForwardAction): void {
  if (action.fault !== null && injectFault(ctx, action, action.fault)) return;
  send(ctx, action);
}

function injectFault(ctx: StreamContext, action: ForwardAction, fault: CompiledFault): boolean {
  if (fault.header !== null && ctx.header(fault.header) === undefined) return false;
  if (fault.delayMs > 0 && roll(fault.delayPercent)) {
    ctx.faultDelayMs = fault.delayMs;
    fault.injected.delays++;
    setTimeout(afterFaultDelay, fault.delayMs, ctx, action);
    return true;
  }
  return abortFault(ctx, fault);
}

function afterFaultDelay(ctx: StreamContext, action: ForwardAction): void {
  if (ctx.done) return; // the client went away while held
  if (!abortFault(ctx, action.fault!)) send(ctx, action);
}

function abortFault(ctx: StreamContext, fault: CompiledFault): boolean {
  if (fault.abortStatus === 0 || !roll(fault.abortPercent)) return false;
  fault.injected.aborts++;
  ctx.refusal = 'fault-abort';
  ctx.reply({
    status: fault.abortStatus,
    code: 'MG_FAULT_INJECTED',
    detail: `route ${ctx.routeName} injected this failure (fault.abort)`,
  });
  return true;
}

/** Destination, timeouts, body handling and mirror for this request; then its first try. */
function send(ctx: StreamContext, action: ForwardAction): void {
  const destination = chooseDestination(ctx, action);
  if (destination === null) return;
  const rw = action.rewrite;
  ctx.upstreamPath = upstreamPathOf(ctx, rw);
  ctx.autoHost = rw !== null && rw.host === undefined && rw.autoHost;
  ctx.timeoutMs =
    ctx.requestTimeoutHeader === null
      ? destination.requestTimeoutMs
      : shorten(destination.requestTimeoutMs, ctx.requestTimeoutHeader);

  const policy = destination.retry;
  if (policy !== null) {
    const now = destination.service.clock.now();
    policy.budget.deposit(now);
    if (ctx.timeoutMs > 0) ctx.deadlineAt = now + ctx.timeoutMs;
  }
  // gRPC's `TE: trailers` says the client takes trailers; an HTTP/2 upstream may then send them.
  if (ctx.teTrailers && (destination.service.config.protocol ?? 'http1') !== 'http1')
    ctx.headers.push('te', 'trailers');
  const mirror = action.mirror !== null && roll(action.mirror.percent) ? action.mirror : null;
  // A body a filter rewrote whole is a Buffer: replayable as it is.
  if (ctx.hasBody && ctx.bufferedBody === null && (mirror !== null || (policy?.replayBufferBytes ?? 0) > 0)) {
    const limit = Math.max(policy?.replayBufferBytes ?? 0, mirror === null ? 0 : DEFAULT_MIRROR_BODY_BYTES);
    ctx.body = new ReplayableBody(bodySource(ctx) as Readable, limit);
  }
  ctx.hashKey = destination.endpoints.hashing ? requestHash(ctx, destination.service.hashKey) : 0;
  startTry(ctx, false);
  if (mirror !== null && !ctx.done) startMirror(ctx, mirror);
}

/** X-Request-Timeout can only shorten the timeout in force; an unreadable or 0 value is ignored. */
export function shorten(timeoutMs: number, header: string): number {
  const ms = parseDuration(header.trim());
  if (ms === undefined || ms === 0) return timeoutMs;
  return timeoutMs === 0 ? ms : Math.min(timeoutMs, ms);
}

function startMirror(ctx: StreamContext, mirror: CompiledMirror): void {
  ctx.mirrored = true;
  if (!ctx.hasBody || ctx.bufferedBody !== null) {
    sendMirror(mirror, ctx.method, ctx.upstreamPath, ctx.headers, ctx.bufferedBody);
    return;
  }
  const method = ctx.method;
  const path = ctx.upstreamPath;
  const headers = ctx.headers.slice();
  ctx.body!.whenComplete((body) => {
    if (body === null) mirror.service.stats.mirrorDropped++;
    else sendMirror(mirror, method, path, headers, body);
  });
}

/**
 * For a WebSocket upgrade (websocket.ts): destination, rewrite and one endpoint the breaker admits, no
 * retries. Returns the upstream path, or null after replying when there is nowhere to send the request.
 */
export function prepareUpgrade(ctx: StreamContext, action: ForwardAction): string | null {
  const destination = chooseDestination(ctx, action);
  if (destination === null) return null;
  const hashKey = destination.endpoints.hashing ? requestHash(ctx, destination.service.hashKey) : 0;
  const endpoint = admitTry(destination, hashKey, null, false);
  if (typeof endpoint === 'string') {
    refuseTry(ctx, endpoint);
    return null;
  }
  ctx.endpoint = endpoint;
  const rw = action.rewrite;
  if (rw?.host === undefined && rw?.autoHost) ctx.setHeader('host', endpoint.authority);
  return upstreamPathOf(ctx, rw);
}
