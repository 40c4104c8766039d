/**
 * The request body as it goes upstream: the client's stream itself (the zero-copy path), counted
 * against the route's limit when its length was not declared, passed through the body filters that
 * stream, or the whole rewritten body when a filter buffered it.
 */
import type { Readable } from 'node:stream';
import { Transform, type TransformCallback } from 'node:stream';
import type { StreamContext } from '../context.ts';

/** What undici sends as this request's body (a Buffer when a filter rewrote it whole). */
export function bodySource(ctx: StreamContext): Readable | Buffer {
  if (ctx.bufferedBody !== null) return ctx.bufferedBody;
  let source: Readable = ctx.req;
  if (ctx.bodyAllowance >= 0) source = source.pipe(new BodyLimit(ctx));
  if (ctx.requestBodyTransform !== null) source = source.pipe(ctx.requestBodyTransform);
  return source;
}

/**
 * Counts a chunked request body against the route's limit as it streams; past the limit the upstream
 * request is aborted and the client gets 413 (the connection closes: the rest of its body is unread).
 * Only chunked bodies on routes with a limit pass through here.
 */
class BodyLimit extends Transform {
  private readonly ctx: StreamContext;

  constructor(ctx: StreamContext) {
    super();
    this.ctx = ctx;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const ctx = this.ctx;
    ctx.bodyAllowance -= chunk.length;
    if (ctx.bodyAllowance >= 0) {
      callback(null, chunk);
      return;
    }
    if (!ctx.done) {
      ctx.upstream?.abort();
      ctx.failAndClose(
        'MG_BODY_TOO_LARGE',
        `the body exceeds ${ctx.bodyLimit} bytes, the limit of route ${ctx.route!.name}`,
      );
    }
    callback();
  }
}
