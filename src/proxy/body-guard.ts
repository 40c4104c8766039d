/**
 * Slow request bodies: a body that stalls (no byte for `bodyIdleTimeout`) or trickles (below
 * `bodyMinBytesPerSecond` once `bodyMinRateGrace` has passed) is cut off with 408 MG_REQUEST_TIMEOUT,
 * the upstream call aborted and the connection closed (HTTP/2: the stream is reset, the connection
 * stays). Like nginx's client_body_timeout and Apache mod_reqtimeout's MinRate, but only the client's
 * own slowness counts: while the proxy is not reading (its buffer is full because the upstream reads
 * slowly), the clock stops.
 *
 * Only requests with a body pay: one timer while the body is being received, and a counting `push`
 * on the request (the one place both node:http's parser and the HTTP/2 compatibility layer hand body
 * bytes to the request stream), so the body is never put into flowing mode by an observer.
 *
 * The rate is kept as a deadline with credit: it starts `grace` ahead, each byte received moves it
 * 1/rate seconds later, and it never runs more than `grace` ahead of now. A client that keeps up the
 * rate never reaches it; one that falls below it (from the start, or after a fast beginning) reaches
 * it at most `grace` later.
 */
import type { Http2ServerRequest } from 'node:http2';
import { constants as http2Constants } from 'node:http2';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import type { StreamContext } from './context.ts';

const kGuard = Symbol('meshgate.bodyGuard');
type GuardedRequest = Readable & { [kGuard]?: BodyGuard | undefined };

const push = Readable.prototype.push;

/** Installed as the request's own `push`: counts body bytes for its guard, then pushes as usual. */
function countingPush(this: GuardedRequest, chunk: unknown, encoding?: BufferEncoding): boolean {
  const guard = this[kGuard];
  if (guard !== undefined) {
    if (chunk === null) guard.stop();
    else guard.bytes += (chunk as { length: number }).length;
  }
  return push.call(this, chunk, encoding);
}

/** Check interval: a quarter of the shortest limit, between 25 ms and 1 s. */
function tickMsOf(idleMs: number, graceMs: number): number {
  const shortest = Math.min(idleMs || Number.POSITIVE_INFINITY, graceMs || Number.POSITIVE_INFINITY);
  return Math.max(25, Math.min(1000, Math.floor(shortest / 4)));
}

export class BodyGuard {
  /** Body bytes received so far (counted by `countingPush`). */
  bytes = 0;
  private readonly ctx: StreamContext;
  private readonly idleMs: number;
  private readonly minBytesPerSecond: number;
  private readonly graceMs: number;
  private timer: NodeJS.Timeout | null;
  private seen = 0;
  private lastTick: number;
  private lastByteAt: number;
  /** performance.now() by which the rate deadline is reached. */
  private rateDeadline: number;

  constructor(ctx: StreamContext, idleMs: number, minBytesPerSecond: number, graceMs: number) {
    this.ctx = ctx;
    this.idleMs = idleMs;
    this.minBytesPerSecond = minBytesPerSecond;
    // With no grace the credit is still one second, or the first tick would already be late.
    this.graceMs = graceMs > 0 ? graceMs : 1000;
    const now = performance.now();
    this.lastTick = now;
    this.lastByteAt = now;
    this.rateDeadline = now + this.graceMs;
    this.timer = setInterval(onTick, tickMsOf(idleMs, minBytesPerSecond > 0 ? graceMs : 0), this);
    this.timer.unref();
  }

  /** The body is complete, or the request is over: nothing more to watch. */
  stop(): void {
    if (this.timer === null) return;
    clearInterval(this.timer);
    this.timer = null;
    (this.ctx.req as unknown as GuardedRequest)[kGuard] = undefined;
  }

  tick(): void {
    const ctx = this.ctx;
    if (ctx.done) {
      this.stop();
      return;
    }
    const now = performance.now();
    const elapsed = now - this.lastTick;
    this.lastTick = now;
    const req = ctx.req;
    // The proxy's buffer is full: it is the upstream that is slow, not the client. Stop the clocks.
    if (req.readableLength >= req.readableHighWaterMark) {
      this.lastByteAt = now;
      this.rateDeadline += elapsed;
    }
    const received = this.bytes - this.seen;
    if (received > 0) {
      this.seen = this.bytes;
      this.lastByteAt = now;
      if (this.minBytesPerSecond > 0)
        this.rateDeadline = Math.min(
          this.rateDeadline + (received * 1000) / this.minBytesPerSecond,
          now + this.graceMs,
        );
    }
    if (this.idleMs > 0 && now - this.lastByteAt >= this.idleMs)
      this.cut(`no byte of the request body arrived for ${this.idleMs} ms (listener limits.bodyIdleTimeout)`);
    else if (this.minBytesPerSecond > 0 && now >= this.rateDeadline)
      this.cut(
        `the request body arrived slower than ${this.minBytesPerSecond} bytes/s ` +
          '(listener limits.bodyMinBytesPerSecond)',
      );
  }

  /**
   * 408 with Connection: close (or an abort, when the response has started), then the upstream call
   * is aborted, so the upstream sees an aborted request, never a complete one. HTTP/2 cannot close the
   * connection for one stream: after the reply the stream is reset (NO_ERROR asks the client to stop
   * sending, RFC 9113 §8.1).
   */
  private cut(detail: string): void {
    this.stop();
    const ctx = this.ctx;
    ctx.failAndClose('MG_REQUEST_TIMEOUT', detail);
    ctx.upstream?.abort();
    if (ctx.h2) {
      const stream = (ctx.req as unknown as Http2ServerRequest).stream;
      if (!stream.destroyed && !stream.closed) stream.close(http2Constants.NGHTTP2_NO_ERROR);
    }
  }
}

function onTick(guard: BodyGuard): void {
  guard.tick();
}

/**
 * Watches the body of `ctx` if the listener limits it and it is still to come. Called once the request
 * head is read and the request is known to have a body.
 */
export function guardBody(ctx: StreamContext): void {
  const { bodyIdleTimeoutMs, bodyMinBytesPerSecond, bodyMinRateGraceMs } = ctx.listener.config.limits;
  if (bodyIdleTimeoutMs === 0 && bodyMinBytesPerSecond === 0) return;
  const req = ctx.req as unknown as GuardedRequest & { complete: boolean; headers: Record<string, unknown> };
  if (req.complete) return;
  // A gRPC request body is a stream of messages that may rightly pause for minutes (client and bidi
  // streaming); gRPC bounds it with its own deadline. gRPC-Web has no client streaming: it is guarded.
  if (ctx.h2) {
    const type = req.headers['content-type'];
    if (typeof type === 'string' && type.startsWith('application/grpc') && !type.startsWith('application/grpc-web'))
      return;
  }
  const guard = new BodyGuard(ctx, bodyIdleTimeoutMs, bodyMinBytesPerSecond, bodyMinRateGraceMs);
  req[kGuard] = guard;
  req.push = countingPush;
  ctx.bodyGuard = guard;
}
