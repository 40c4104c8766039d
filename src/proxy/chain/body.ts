/**
 * Filters that read and rewrite bodies (Filter.onRequestBody, Filter.rewriteResponseBody). Only a
 * request whose filters declared one of these hooks comes here; every other request keeps the
 * zero-copy path (the client's body piped to undici, the upstream's chunks written as they come).
 *
 * Two forms per direction, chosen by the filters: streaming (chunks in, chunks out, backpressure kept
 * by the stream machinery) and buffered up to a declared limit (the filter gets the whole body). When
 * any filter of a direction buffers, the whole body is collected once and every filter of that
 * direction sees it whole, in order. The proxy owns the framing: a rewritten body goes out with its
 * new Content-Length when buffered, chunked (no Content-Length) when streamed.
 */
import { performance } from 'node:perf_hooks';
import { Transform, type TransformCallback } from 'node:stream';
import type { BodyOutput, Filter, LocalReply } from '../../core/plugin.ts';
import type { StreamContext } from '../context.ts';
import { removeHeader, setHeader } from '../headers.ts';
import { FlatResponseHead, runBodyTaps, runCompleteFilters } from './filters.ts';

const EMPTY = Buffer.alloc(0);

type Hook = 'onRequestBody' | 'rewriteResponseBody';

function isLocalReply(value: unknown): value is LocalReply {
  return typeof value === 'object' && value !== null && !Buffer.isBuffer(value) && !Array.isArray(value);
}

/** Appends a hook's output to `out`; `undefined` stands for the input chunk itself. */
function collect(out: Buffer[], output: BodyOutput, input: Buffer): void {
  if (output === undefined) {
    if (input.length > 0) out.push(input);
  } else if (output === null) return;
  else if (typeof output === 'string') out.push(Buffer.from(output));
  else if (Buffer.isBuffer(output)) out.push(output);
  else for (const part of output) out.push(typeof part === 'string' ? Buffer.from(part) : part);
}

/** The smallest limit among filters that buffer, or -1 when they all stream. */
function bufferLimit(filters: readonly Filter[], limitOf: (f: Filter) => number | undefined): number {
  let limit = -1;
  for (const f of filters) {
    const l = limitOf(f);
    if (l !== undefined && (limit === -1 || l < limit)) limit = l;
  }
  return limit;
}

/**
 * One streaming pass: `chunks` through every filter in order; with `end`, each filter also gets its end
 * call after the last of its input. Synchronous: a streaming hook that returns a promise is a bug in
 * the filter and fails the request.
 */
function streamThrough(
  ctx: StreamContext,
  filters: readonly Filter[],
  hook: Hook,
  input: Buffer[],
  end: boolean,
): Buffer[] {
  let chunks = input;
  for (const filter of filters) {
    const fn = filter[hook]!;
    const out: Buffer[] = [];
    for (const chunk of chunks) collect(out, checkSync(fn.call(filter, ctx, chunk, false)), chunk);
    if (end) collect(out, checkSync(fn.call(filter, ctx, EMPTY, true)), EMPTY);
    chunks = out;
  }
  return chunks;
}

function checkSync(output: unknown): BodyOutput {
  if (output instanceof Promise)
    throw new Error('a streaming body hook returned a promise; declare a body limit to buffer');
  if (isLocalReply(output)) throw new Error('a streaming body hook returned a reply; only buffered request hooks may');
  return output as BodyOutput;
}

/**
 * The whole body through every filter in order: buffering filters once with `end` true, streaming ones
 * as one chunk and then their end call. Resolves to the new body, or to a LocalReply a request filter
 * answered with.
 */
async function rewriteWhole(
  ctx: StreamContext,
  filters: readonly Filter[],
  hook: Hook,
  limitOf: (f: Filter) => number | undefined,
  body: Buffer,
): Promise<Buffer | LocalReply> {
  let current = body;
  for (const filter of filters) {
    const fn = filter[hook]!;
    const out: Buffer[] = [];
    if (limitOf(filter) !== undefined) {
      let result = fn.call(filter, ctx, current, true) as BodyOutput | LocalReply | Promise<BodyOutput | LocalReply>;
      if (result instanceof Promise) result = await result;
      if (ctx.done) return EMPTY;
      if (isLocalReply(result)) return result;
      collect(out, result, current);
    } else {
      collect(out, checkSync(fn.call(filter, ctx, current, false)), current);
      collect(out, checkSync(fn.call(filter, ctx, EMPTY, true)), EMPTY);
    }
    current = out.length === 1 ? out[0]! : Buffer.concat(out);
  }
  return current;
}

const requestLimit = (f: Filter) => f.requestBodyLimit;
const responseLimit = (f: Filter) => f.responseBodyLimit;

function failBodyHook(ctx: StreamContext, e: unknown): void {
  ctx.owner.onFilterError?.(ctx, 'body hook', e);
  if (ctx.done) return;
  if (ctx.res.headersSent) {
    ctx.abortResponse();
    ctx.finish();
  } else ctx.reply({ status: 500, code: 'MG_INTERNAL', detail: 'a plugin failed on this request’s body' });
}

// --- Request bodies ---------------------------------------------------------------------------------

/**
 * Prepares the request body for the route's body filters, then calls `next` (the route's action):
 * at once when they stream (ctx.requestBodyTransform is then piped into what goes upstream), or once
 * the whole body is in and rewritten (ctx.bufferedBody). Only called for requests with a body.
 */
export function prepareRequestBody(ctx: StreamContext, next: (ctx: StreamContext) => void): void {
  const filters = ctx.requestBodyFilters!;
  // The rewritten body's length is not the client's: the proxy frames it afresh.
  removeHeader(ctx.headers, 'content-length');
  removeHeader(ctx.headers, 'transfer-encoding');
  const limit = bufferLimit(filters, requestLimit);
  if (limit === -1) {
    ctx.contentLength = -1;
    ctx.requestBodyTransform = new RequestBodyTransform(ctx, filters);
    next(ctx);
    return;
  }
  if (ctx.contentLength > limit) {
    ctx.failAndClose(
      'MG_BODY_TOO_LARGE',
      `the body is ${ctx.contentLength} bytes; a plugin of route ${ctx.routeName} reads at most ${limit}`,
    );
    return;
  }
  new RequestBodyCollector(ctx, filters, limit, next).start();
}

/** Reads a whole request body up to a limit, rewrites it, and hands the request on. */
class RequestBodyCollector {
  private readonly ctx: StreamContext;
  private readonly filters: readonly Filter[];
  private readonly limit: number;
  private readonly next: (ctx: StreamContext) => void;
  private readonly chunks: Buffer[] = [];
  private size = 0;

  constructor(ctx: StreamContext, filters: readonly Filter[], limit: number, next: (ctx: StreamContext) => void) {
    this.ctx = ctx;
    this.filters = filters;
    this.limit = limit;
    this.next = next;
  }

  start(): void {
    const req = this.ctx.req;
    req.on('data', (chunk: Buffer) => this.data(chunk));
    req.once('end', () => void this.end());
  }

  private data(chunk: Buffer): void {
    const ctx = this.ctx;
    if (ctx.done) return;
    this.size += chunk.length;
    // The route's own limit (a chunked body is counted as it comes) and the filters' buffer limit.
    if (ctx.bodyAllowance >= 0 && this.size > ctx.bodyAllowance) {
      ctx.failAndClose(
        'MG_BODY_TOO_LARGE',
        `the body exceeds ${ctx.bodyLimit} bytes, the limit of route ${ctx.routeName}`,
      );
      return;
    }
    if (this.size > this.limit) {
      ctx.failAndClose(
        'MG_BODY_TOO_LARGE',
        `the body exceeds ${this.limit} bytes, the most a plugin of route ${ctx.routeName} reads`,
      );
      return;
    }
    this.chunks.push(chunk);
  }

  private async end(): Promise<void> {
    const ctx = this.ctx;
    if (ctx.done) return;
    const body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size);
    let result: Buffer | LocalReply;
    try {
      result = await rewriteWhole(ctx, this.filters, 'onRequestBody', requestLimit, body);
    } catch (e) {
      failBodyHook(ctx, e);
      return;
    }
    if (ctx.done) return;
    if (!Buffer.isBuffer(result)) {
      ctx.reply(result);
      return;
    }
    ctx.bufferedBody = result;
    ctx.contentLength = result.length;
    ctx.bodyAllowance = -1;
    setHeader(ctx.headers, 'content-length', String(result.length));
    this.next(ctx);
  }
}

/** The streaming form: each chunk of the client's body through the filters on its way upstream. */
class RequestBodyTransform extends Transform {
  private readonly ctx: StreamContext;
  private readonly filters: readonly Filter[];

  constructor(ctx: StreamContext, filters: readonly Filter[]) {
    super();
    this.ctx = ctx;
    this.filters = filters;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.pass([chunk], false, callback);
  }

  override _flush(callback: TransformCallback): void {
    this.pass([], true, callback);
  }

  private pass(input: Buffer[], end: boolean, callback: TransformCallback): void {
    let out: Buffer[];
    try {
      out = streamThrough(this.ctx, this.filters, 'onRequestBody', input, end);
    } catch (e) {
      this.ctx.upstream?.abort();
      failBodyHook(this.ctx, e);
      callback();
      return;
    }
    for (const chunk of out) this.push(chunk);
    callback();
  }
}

// --- Response bodies --------------------------------------------------------------------------------

/** What `ResponseBodyRewriter.chunk` says about the write. */
export const BODY_WRITTEN = 0;
/** The client's socket is full: pause the upstream until 'drain'. */
export const BODY_BACKPRESSURE = 1;
/** A buffered body outgrew its limit: the response fails with MG_RESPONSE_TOO_LARGE. */
export const BODY_TOO_LARGE = 2;
export type BodyWrite = typeof BODY_WRITTEN | typeof BODY_BACKPRESSURE | typeof BODY_TOO_LARGE;

/** True when a response to `method` with `status` carries a body the filters may rewrite. */
export function responseHasBody(method: string, status: number): boolean {
  return method !== 'HEAD' && status !== 204 && status !== 304 && status >= 200;
}

/**
 * The response body filters that want this response (`Filter.wantsResponseBody`, asked with the final
 * head), or null when none does: the response then keeps the zero-copy path. No allocation when no
 * filter asks.
 */
export function responseBodyFiltersFor(
  ctx: StreamContext,
  status: number,
  headers: (string | string[])[],
): readonly Filter[] | null {
  const filters = ctx.responseBodyFilters!;
  let asks = false;
  for (const f of filters) if (f.wantsResponseBody !== undefined) asks = true;
  if (!asks) return filters;
  const head = new FlatResponseHead(status, headers);
  const wanted = filters.filter((f) => f.wantsResponseBody === undefined || f.wantsResponseBody(ctx, head));
  return wanted.length === 0 ? null : wanted;
}

/**
 * Rewrites one upstream response's body for the request's filters. Streaming: the head goes out at
 * once without Content-Length and each chunk through the filters. Buffered: the head is held, the body
 * collected up to the limit, rewritten, and sent whole with its new length.
 */
export class ResponseBodyRewriter {
  readonly limit: number;
  private readonly ctx: StreamContext;
  private readonly filters: readonly Filter[];
  private status = 0;
  private head: (string | string[])[] | null = null;
  private readonly chunks: Buffer[] = [];
  private size = 0;

  constructor(ctx: StreamContext, filters: readonly Filter[]) {
    this.ctx = ctx;
    this.filters = filters;
    this.limit = bufferLimit(filters, responseLimit);
  }

  get buffered(): boolean {
    return this.limit !== -1;
  }

  /**
   * The response head, after the header filters. Streaming: drops Content-Length and returns false (the
   * caller writes the head). Buffered: keeps the head and returns true (written by `end`).
   */
  holdHead(status: number, headers: (string | string[])[]): boolean {
    removeHeader(headers as string[], 'content-length');
    if (!this.buffered) return false;
    this.status = status;
    this.head = headers;
    return true;
  }

  chunk(chunk: Buffer): BodyWrite {
    if (this.buffered) {
      this.size += chunk.length;
      if (this.size > this.limit) return BODY_TOO_LARGE;
      this.chunks.push(chunk);
      return BODY_WRITTEN;
    }
    return this.write(streamThrough(this.ctx, this.filters, 'rewriteResponseBody', [chunk], false));
  }

  /** Writes rewritten chunks; read-only taps (a cache) see these, the bytes the client gets. */
  private write(chunks: Buffer[]): BodyWrite {
    const ctx = this.ctx;
    let ok = true;
    for (const c of chunks) {
      if (ctx.bodyTaps !== null) runBodyTaps(ctx, c);
      ok = ctx.res.write(c) && ok;
    }
    return ok ? BODY_WRITTEN : BODY_BACKPRESSURE;
  }

  /** The upstream's body ended: the last bytes (streaming) or the whole rewritten body go out; then `done`. */
  end(done: () => void): void {
    const ctx = this.ctx;
    if (!this.buffered) {
      try {
        this.write(streamThrough(ctx, this.filters, 'rewriteResponseBody', [], true));
      } catch (e) {
        failBodyHook(ctx, e);
        return;
      }
      ctx.res.end();
      done();
      return;
    }
    const body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size);
    rewriteWhole(ctx, this.filters, 'rewriteResponseBody', responseLimit, body).then(
      (result) => {
        if (ctx.done) return;
        const out = result as Buffer;
        const head = this.head!;
        head.push('content-length', String(out.length));
        if (ctx.bodyTaps !== null && out.length > 0) runBodyTaps(ctx, out);
        ctx.res.writeHead(this.status, head as string[]);
        ctx.res.end(out);
        done();
      },
      (e: unknown) => failBodyHook(ctx, e),
    );
  }
}

/**
 * Ends the client's response once the upstream's last byte is written: through the body rewriter when
 * one holds bytes back (it sends them, then ends), then `completeResponse`.
 */
export function endResponse(ctx: StreamContext, rewriter: ResponseBodyRewriter | null): void {
  if (rewriter !== null) {
    rewriter.end(() => completeResponse(ctx));
    return;
  }
  // No body chunk went out (204, HEAD, an empty body): this write carries the response's last bytes.
  if (ctx.lastWriteMs === 0) ctx.lastWriteMs = performance.now();
  ctx.res.end();
  completeResponse(ctx);
}

/** The upstream's response was delivered whole: the filters' `onResponseComplete`, then the log phase. */
export function completeResponse(ctx: StreamContext): void {
  if (ctx.activeFilters !== null) runCompleteFilters(ctx);
  ctx.finish();
}
