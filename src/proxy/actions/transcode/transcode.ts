/**
 * Running the transcode action: the binding that matches the method and path, the request message
 * built from the path variables, the query and the JSON body (proto3 JSON mapping), one gRPC call
 * through the forward path's upstream machinery (balancer, breaker, h2 pool, retries where safe), and
 * the answer as JSON: one object for a unary method; NDJSON or Server-Sent Events, message by message
 * with backpressure, for a server-streaming one.
 */
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import {
  type Binding,
  type Field,
  TEXT_AS_BOOL,
  TEXT_AS_ENUM,
  type TextKind,
  textKindOf,
} from '../../../config/transcode/protos.ts';
import { decodeCapture, matchTemplate } from '../../../config/transcode/template.ts';
import { REQUEST_ID_HEADER } from '../../../core/defaults.ts';
import { type LocalReplyCode, LocalReplyCodes } from '../../../core/errors.ts';
import {
  BODY_BACKPRESSURE,
  BODY_TOO_LARGE,
  completeResponse,
  endResponse,
  ResponseBodyRewriter,
} from '../../chain/body.ts';
import { runBodyTaps, runResponseFilters } from '../../chain/filters.ts';
import type { StreamContext } from '../../context.ts';
import { grpcStatusOf, problemOf } from '../../local-reply.ts';
import type { CircuitBreaker } from '../../upstream/circuit-breaker.ts';
import { classifyUpstreamError } from '../../upstream/classify.ts';
import type { Endpoint } from '../../upstream/endpoint.ts';
import { bodySource } from '../../upstream/request-body.ts';
import type { TryStarter } from '../../upstream/retry-state.ts';
import { noteStreamedBytes } from '../../upstream/streamed-bytes.ts';
import { type TryExchange, tryWith, UpstreamCall } from '../../upstream/try.ts';
import { requestHash } from '../forward/destination.ts';
import { shorten } from '../forward/forward.ts';
import type { TranscodeAction } from './action.ts';
import { decodeGrpcMessage, grpcCodeName, httpStatusOfGrpc } from './status.ts';

export function runTranscode(ctx: StreamContext, action: TranscodeAction): void {
  const path = ctx.path;
  const parts = path === '/' ? [] : path.slice(1).split('/');
  const candidates = action.byMethod.get(ctx.method);
  if (candidates !== undefined)
    for (let i = 0; i < candidates.length; i++) {
      const binding = candidates[i]!;
      const values = matchTemplate(binding.template, parts);
      if (values !== null) {
        start(ctx, action, binding, values);
        return;
      }
    }
  noBinding(ctx, action, parts);
}

/** No binding of this HTTP method takes the path: 405 when another method's does, else 404. */
function noBinding(ctx: StreamContext, action: TranscodeAction, parts: string[]): void {
  const allowed: string[] = [];
  for (const [method, list] of action.byMethod)
    if (list.some((b) => matchTemplate(b.template, parts) !== null)) allowed.push(method);
  if (allowed.length > 0)
    ctx.reply({
      status: 405,
      code: 'MG_METHOD_NOT_ALLOWED',
      detail: `${ctx.path} is mapped for ${allowed.join(', ')}, not ${ctx.method} (route ${ctx.routeName})`,
      headers: [['allow', allowed.join(', ')]],
    });
  else
    ctx.reply({
      status: 404,
      code: 'MG_TRANSCODE_NOT_FOUND',
      detail: `no gRPC method of route ${ctx.routeName} is mapped to ${ctx.method} ${ctx.path}`,
    });
}

function start(ctx: StreamContext, action: TranscodeAction, binding: Binding, values: string[]): void {
  const exchange = new Exchange(ctx, action, binding, values);
  if (binding.body === null || !ctx.hasBody) exchange.send(null);
  else if (ctx.bufferedBody !== null) exchange.send(ctx.bufferedBody);
  else {
    const limit = action.maxRequestBytes;
    if (limit > 0 && ctx.contentLength > limit) {
      ctx.failAndClose(
        'MG_BODY_TOO_LARGE',
        `the body is ${ctx.contentLength} bytes; route ${ctx.routeName} transcodes at most ${limit}`,
      );
      return;
    }
    exchange.readBody(limit);
  }
}

/** A request the client cannot send as it is: 400 with the reason. */
class InvalidRequest extends Error {}

/** One transcoded request: what every try sends, and how each try's call is made. */
class Exchange implements TryExchange {
  readonly method = 'POST';
  readonly headers: string[] = [];
  readonly ctx: StreamContext;
  readonly action: TranscodeAction;
  readonly binding: Binding;
  private readonly values: string[];
  /** Server streaming as Server-Sent Events (the client accepts text/event-stream), else NDJSON. */
  readonly sse: boolean;
  private chunks: Buffer[] = [];
  private size = 0;
  private restarter: TryStarter | null = null;

  constructor(ctx: StreamContext, action: TranscodeAction, binding: Binding, values: string[]) {
    this.ctx = ctx;
    this.action = action;
    this.binding = binding;
    this.values = values;
    this.sse = binding.method.serverStreaming && (ctx.header('accept')?.includes('text/event-stream') ?? false);
  }

  makeCall(
    ctx: StreamContext,
    endpoint: Endpoint,
    breaker: CircuitBreaker,
    isRetry: boolean,
    timeoutMs: number,
    perTryLimited: boolean,
  ): UpstreamCall {
    return new TranscodeCall(this, ctx, endpoint, breaker, isRetry, timeoutMs, perTryLimited);
  }

  /** Starts a retry of the same call. */
  get restart(): TryStarter {
    return (this.restarter ??= (ctx, isRetry) => tryWith(ctx, isRetry, this));
  }

  /** Collects the JSON body (the route's own limit is counted by bodySource for a chunked one). */
  readBody(limit: number): void {
    const source = bodySource(this.ctx) as Readable;
    source.on('data', (chunk: Buffer) => {
      const ctx = this.ctx;
      if (ctx.done) return;
      this.size += chunk.length;
      if (limit > 0 && this.size > limit) {
        ctx.failAndClose(
          'MG_BODY_TOO_LARGE',
          `the body exceeds ${limit} bytes, the most route ${ctx.routeName} transcodes`,
        );
        return;
      }
      this.chunks.push(chunk);
    });
    source.once('end', () => {
      if (this.ctx.done) return;
      const body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size);
      this.chunks = [];
      this.send(body);
    });
  }

  /** Builds the gRPC request and makes the first try. */
  send(body: Buffer | null): void {
    const ctx = this.ctx;
    const action = this.action;
    let frame: Buffer;
    try {
      const message = encodeRequest(action, this.binding, this.values, ctx.query, body);
      frame = Buffer.allocUnsafe(5 + message.length);
      frame[0] = 0;
      frame.writeUInt32BE(message.length, 1);
      frame.set(message, 5);
    } catch (e) {
      ctx.reply({
        status: 400,
        code: 'MG_TRANSCODE_INVALID_REQUEST',
        detail: `${(e as Error).message} (${this.binding.method.name})`,
      });
      return;
    }
    const destination = action.destination;
    ctx.destination = destination;
    ctx.upstreamPath = this.binding.method.path;
    ctx.timeoutMs =
      ctx.requestTimeoutHeader === null
        ? destination.requestTimeoutMs
        : shorten(destination.requestTimeoutMs, ctx.requestTimeoutHeader);
    const out = this.headers;
    out.push('content-type', 'application/grpc', 'te', 'trailers', 'grpc-accept-encoding', 'identity');
    if (ctx.timeoutMs > 0) out.push('grpc-timeout', grpcTimeout(ctx.timeoutMs));
    // Only the allow-list becomes metadata: hop-by-hop and reserved names cannot be listed (check.ts).
    const h = ctx.headers;
    const metadata = action.metadata;
    for (let i = 0; i < h.length; i += 2) {
      const name = h[i]!;
      if (name === REQUEST_ID_HEADER || name === 'traceparent' || name === 'tracestate' || metadata.has(name))
        out.push(name, h[i + 1]!);
    }
    const policy = destination.retry;
    if (policy !== null) {
      const now = destination.service.clock.now();
      policy.budget.deposit(now);
      if (ctx.timeoutMs > 0) ctx.deadlineAt = now + ctx.timeoutMs;
    }
    ctx.hashKey = destination.endpoints.hashing ? requestHash(ctx, destination.service.hashKey) : 0;
    // The call's body is the framed message on every try (so a retry can resend it).
    ctx.bufferedBody = frame;
    ctx.hasBody = true;
    tryWith(ctx, false, this);
  }
}

/** `grpc-timeout`: at most 8 digits, so long timeouts go in seconds. */
function grpcTimeout(ms: number): string {
  return ms <= 99_999_999 ? `${ms}m` : `${Math.ceil(ms / 1000)}S`;
}

/**
 * The request message: the query first (fields bound by neither path nor body), then the body (the
 * whole message, or one field), then the path variables, each overriding what came before.
 */
function encodeRequest(
  action: TranscodeAction,
  binding: Binding,
  values: string[],
  query: string,
  body: Buffer | null,
): Uint8Array {
  const type = binding.method.requestType;
  const { protojson, protobuf } = action.library;
  let json: Record<string, unknown> = {};
  const parsed = body === null || body.length === 0 ? undefined : parseJson(body);
  if (binding.body === '*') {
    if (parsed !== undefined) {
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
        throw new InvalidRequest('the body must be a JSON object (the whole request message)');
      json = parsed as Record<string, unknown>;
    }
  } else {
    if (query !== '') applyQuery(action, binding, json, query);
    if (binding.body !== null && parsed !== undefined) {
      const field = binding.method.requestType.fields[binding.body]!;
      setField(json, [field], parsed, false);
    }
  }
  const vars = binding.template.variables;
  for (let v = 0; v < vars.length; v++) {
    const chain = binding.variableFields[v]!;
    const variable = vars[v]!;
    const text = decodeCapture(values[v]!, variable.end !== variable.start + 1);
    if (text === null)
      throw new InvalidRequest(`path variable {${variable.fieldPath.join('.')}} is not valid percent-encoding`);
    const leaf = chain[chain.length - 1]!;
    setField(json, chain, textValue(textKindOf(protobuf, leaf)!, text, leaf), false);
  }
  return type.encode(protojson.fromJson(type, json)).finish();
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (e) {
    throw new InvalidRequest(`the body is not JSON: ${(e as Error).message}`);
  }
}

function applyQuery(action: TranscodeAction, binding: Binding, json: Record<string, unknown>, query: string): void {
  const type = binding.method.requestType;
  for (const pair of query.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const name = decodeQuery(eq === -1 ? pair : pair.slice(0, eq));
    const value = decodeQuery(eq === -1 ? '' : pair.slice(eq + 1));
    const target = action.queryFields.resolve(type, name);
    if (target === null) {
      if (action.ignoreUnknownQuery) continue;
      throw new InvalidRequest(`query parameter "${name}" is not a field of ${type.name} that text can set`);
    }
    const leaf = target.fields[target.fields.length - 1]!;
    setField(json, target.fields, textValue(target.text, value, leaf), target.repeated);
  }
}

function decodeQuery(text: string): string {
  const spaced = text.includes('+') ? text.replaceAll('+', ' ') : text;
  if (!spaced.includes('%')) return spaced;
  try {
    return decodeURIComponent(spaced);
  } catch {
    throw new InvalidRequest(`"${text}" in the query is not valid percent-encoding`);
  }
}

/** A path or query value as the field's JSON value (numbers stay strings: the JSON mapping takes them). */
function textValue(kind: TextKind, text: string, field: Field): unknown {
  if (kind === TEXT_AS_BOOL) {
    if (text === 'true' || text === '1') return true;
    if (text === 'false' || text === '0') return false;
    throw new InvalidRequest(`${field.name}: expected true or false, got "${text}"`);
  }
  if (kind === TEXT_AS_ENUM && /^-?\d+$/.test(text)) return Number(text);
  return text;
}

/**
 * Sets a (nested) field by its proto name, replacing a value the body gave under either its proto or
 * its JSON name; `append` adds to a repeated field instead.
 */
function setField(json: Record<string, unknown>, chain: readonly Field[], value: unknown, append: boolean): void {
  let obj = json;
  for (let i = 0; i < chain.length - 1; i++) {
    const field = chain[i]!;
    let next = takeValue(obj, field);
    if (next === null || typeof next !== 'object' || Array.isArray(next)) next = {};
    obj[field.name] = next;
    obj = next as Record<string, unknown>;
  }
  const leaf = chain[chain.length - 1]!;
  const existing = takeValue(obj, leaf);
  if (!append) obj[leaf.name] = value;
  else if (Array.isArray(existing)) {
    existing.push(value);
    obj[leaf.name] = existing;
  } else obj[leaf.name] = [value];
}

function takeValue(obj: Record<string, unknown>, field: Field): unknown {
  let value = Object.hasOwn(obj, field.name) ? obj[field.name] : undefined;
  if (field.jsonName !== field.name && Object.hasOwn(obj, field.jsonName)) {
    value ??= obj[field.jsonName];
    delete obj[field.jsonName];
  }
  return value;
}

/** gRPC messages as they arrive in DATA frames: a 5-byte prefix (compressed flag, length), then the message. */
class FrameReader {
  private chunks: Buffer[] = [];
  private size = 0;

  get pending(): number {
    return this.size;
  }

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
  }

  /** The prefix of the next message: [flag, length], or null while fewer than 5 bytes are in. */
  peek(): [number, number] | null {
    if (this.size < 5) return null;
    let head = this.chunks[0]!;
    if (head.length < 5) {
      head = Buffer.concat(this.chunks, this.size);
      this.chunks = [head];
    }
    return [head[0]!, head.readUInt32BE(1)];
  }

  /** The next message whole (its prefix read by `peek`), or null until all of it is in. */
  take(length: number): Buffer | null {
    if (this.size < 5 + length) return null;
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size);
    const message = all.subarray(5, 5 + length);
    const rest = all.subarray(5 + length);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.size = rest.length;
    return message;
  }
}

/**
 * One try of the gRPC call: reads the framed messages and the status (in trailers, or in the headers
 * of a trailers-only answer) and answers the client in JSON. Connection failures before any answer
 * are retried (or refused) as for forwarded requests.
 */
class TranscodeCall extends UpstreamCall {
  private readonly exchange: Exchange;
  private readonly reader = new FrameReader();
  /** A failure found while the answer streamed in, given to the client when undici reports the abort. */
  private verdict: [LocalReplyCode, string] | null = null;
  /** A trailers-only answer: its headers carry grpc-status. */
  private statusHeaders: Record<string, string | string[] | undefined> | null = null;
  /** The one message of a unary call. */
  private unaryMessage: Buffer | null = null;
  private bodyRewriter: ResponseBodyRewriter | null = null;
  private waitingForDrain = false;

  constructor(
    exchange: Exchange,
    ctx: StreamContext,
    endpoint: Endpoint,
    breaker: CircuitBreaker,
    isRetry: boolean,
    timeoutMs: number,
    perTryLimited: boolean,
  ) {
    super(ctx, endpoint, breaker, isRetry, timeoutMs, perTryLimited);
    this.exchange = exchange;
  }

  private get to(): string {
    return `${this.ctx.destination!.service.name} (${this.authority})`;
  }

  protected override retryStarter(): TryStarter {
    return this.exchange.restart;
  }

  protected override failTry(code: LocalReplyCode, detail: string): void {
    const status = LocalReplyCodes[code].status;
    this.fail(status, code, detail, grpcStatusOf({ status, code, detail }), null);
  }

  override onResponseStart(
    controller: Parameters<UpstreamCall['onResponseStart']>[0],
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    if (statusCode < 200) return;
    this.stopTimer();
    const ctx = this.ctx;
    ctx.upstreamHeadersMs = performance.now();
    ctx.destination!.service.outlier?.observe(this.endpoint, statusCode);
    if (ctx.res.destroyed) {
      controller.abort(new Error('client closed'));
      return;
    }
    const type = headers['content-type'];
    if (statusCode !== 200 || typeof type !== 'string' || !type.startsWith('application/grpc')) {
      this.settle(
        controller,
        'MG_UPSTREAM_PROTOCOL_ERROR',
        `${this.to} answered HTTP ${statusCode}${typeof type === 'string' ? ` (${type})` : ''}, not gRPC`,
      );
      return;
    }
    if (headers['grpc-status'] !== undefined) this.statusHeaders = headers;
  }

  /** Fails the call now; the reply follows when undici reports the abort (onResponseError). */
  private settle(
    controller: Parameters<UpstreamCall['onResponseStart']>[0],
    code: LocalReplyCode,
    detail: string,
  ): void {
    this.verdict = [code, detail];
    controller.abort(new Error(detail));
  }

  override onResponseData(controller: Parameters<UpstreamCall['onResponseData']>[0], chunk: Buffer): void {
    if (this.verdict !== null || this.ended) return;
    noteStreamedBytes(chunk.length);
    const reader = this.reader;
    reader.push(chunk);
    const limit = this.exchange.action.maxMessageBytes;
    const streaming = this.exchange.binding.method.serverStreaming;
    let ok = true;
    for (;;) {
      const prefix = reader.peek();
      if (prefix === null) break;
      const [flag, length] = prefix;
      if (flag !== 0) {
        this.settle(
          controller,
          'MG_UPSTREAM_PROTOCOL_ERROR',
          `${this.to} sent a compressed message, which was not asked for`,
        );
        return;
      }
      if (limit > 0 && length > limit) {
        this.settle(
          controller,
          'MG_RESPONSE_TOO_LARGE',
          `${this.to} sent a ${length}-byte message; route ${this.ctx.routeName} takes at most ${limit} (transcode.maxResponseMessageBytes)`,
        );
        return;
      }
      const message = reader.take(length);
      if (message === null) break;
      if (!streaming) {
        if (this.unaryMessage !== null) {
          this.settle(
            controller,
            'MG_UPSTREAM_PROTOCOL_ERROR',
            `${this.to} sent more than one message for a unary method`,
          );
          return;
        }
        this.unaryMessage = message;
        continue;
      }
      let json: string;
      try {
        json = this.toJson(message);
      } catch (e) {
        this.settle(
          controller,
          'MG_UPSTREAM_PROTOCOL_ERROR',
          `${this.to} sent a message that does not decode: ${(e as Error).message}`,
        );
        return;
      }
      if (!this.ctx.res.headersSent && this.bodyRewriter === null) this.startStream();
      ok = this.write(Buffer.from(this.exchange.sse ? `data: ${json}\n\n` : `${json}\n`)) && ok;
      if (this.verdict !== null) {
        controller.abort(new Error(this.verdict[1]));
        return;
      }
    }
    if (!ok && !this.waitingForDrain) {
      this.waitingForDrain = true;
      controller.pause();
      this.ctx.res.once('drain', () => {
        this.waitingForDrain = false;
        controller.resume();
      });
    }
  }

  /** A response message as JSON text (the `responseBody` field alone, when set). */
  private toJson(message: Buffer): string {
    const binding = this.exchange.binding;
    const type = binding.method.responseType;
    const { protojson } = this.exchange.action.library;
    const json = protojson.toJson(type, type.decode(message)) as Record<string, unknown>;
    const field = binding.responseField;
    if (field === null) return JSON.stringify(json);
    const value = json[field.jsonName];
    return JSON.stringify(value === undefined ? defaultJsonOf(field, this.exchange.action) : value);
  }

  override onResponseEnd(
    _controller: Parameters<UpstreamCall['onResponseEnd']>[0],
    trailers: Record<string, string | string[] | undefined>,
  ): void {
    if (this.ended) return;
    this.end();
    const ctx = this.ctx;
    ctx.upstreamEndMs = performance.now();
    if (this.verdict !== null) {
      this.failWith(this.verdict[0], this.verdict[1]);
      return;
    }
    if (this.reader.pending > 0) {
      this.failWith('MG_UPSTREAM_PROTOCOL_ERROR', `${this.to} ended the call inside a message`);
      return;
    }
    const source = this.statusHeaders ?? trailers ?? {};
    const status = source['grpc-status'];
    if (status === undefined) {
      this.failWith('MG_UPSTREAM_PROTOCOL_ERROR', `${this.to} ended the call without a grpc-status`);
      return;
    }
    const code = Number(status);
    if (code !== 0) {
      const raw = source['grpc-message'];
      const message = decodeGrpcMessage(typeof raw === 'string' ? raw : '');
      this.fail(
        httpStatusOfGrpc(code),
        'MG_UPSTREAM_GRPC_STATUS',
        `${this.exchange.binding.method.name} failed with ${grpcCodeName(code)}${message === '' ? '' : `: ${message}`}`,
        code,
        message,
      );
      return;
    }
    if (this.exchange.binding.method.serverStreaming) {
      if (!ctx.res.headersSent && this.bodyRewriter === null) this.startStream();
      this.endOutput();
      return;
    }
    if (this.unaryMessage === null) {
      this.failWith('MG_UPSTREAM_PROTOCOL_ERROR', `${this.to} answered OK without a message`);
      return;
    }
    let json: string;
    try {
      json = this.toJson(this.unaryMessage);
    } catch (e) {
      this.failWith(
        'MG_UPSTREAM_PROTOCOL_ERROR',
        `${this.to} sent a message that does not decode: ${(e as Error).message}`,
      );
      return;
    }
    this.respondUnary(Buffer.from(json));
  }

  override onResponseError(controller: Parameters<UpstreamCall['onResponseError']>[0], error: Error): void {
    if (this.ended) return;
    if (this.verdict !== null) {
      this.end();
      this.failWith(this.verdict[0], this.verdict[1]);
      return;
    }
    if (this.ctx.res.headersSent || this.bodyRewriter !== null) {
      // Mid-stream: no retry; the failure is the stream's last event.
      this.end();
      if (this.aborted) return;
      const [code, detail] = classifyUpstreamError(error, this.ctx, this);
      this.failWith(code, detail);
      return;
    }
    super.onResponseError(controller, error);
  }

  private failWith(code: LocalReplyCode, detail: string): void {
    const status = LocalReplyCodes[code].status;
    this.fail(status, code, detail, grpcStatusOf({ status, code, detail }), null);
  }

  /**
   * Ends the request with a problem: a problem+json reply while nothing was sent, else the stream's
   * last line (`{"error": {…}}`) or event (`event: error`).
   */
  private fail(
    status: number,
    code: LocalReplyCode,
    detail: string,
    grpcStatus: number,
    grpcMessage: string | null,
  ): void {
    const ctx = this.ctx;
    if (ctx.done) return;
    const problem: Record<string, unknown> = {
      ...problemOf({ status, code, detail }, ctx.requestId, ctx.traceId),
      grpcStatus,
      grpcCode: grpcCodeName(grpcStatus),
    };
    if (code === 'MG_UPSTREAM_GRPC_STATUS') problem.title = LocalReplyCodes[code].title;
    if (grpcMessage !== null) problem.grpcMessage = grpcMessage;
    const text = JSON.stringify(problem);
    if (!ctx.res.headersSent) {
      ctx.reply({ status, code, detail, body: { contentType: 'application/problem+json', text } });
      return;
    }
    ctx.code = code;
    this.write(Buffer.from(this.exchange.sse ? `event: error\ndata: ${text}\n\n` : `{"error":${text}}\n`));
    this.endOutput();
  }

  private respondUnary(body: Buffer): void {
    const ctx = this.ctx;
    const head: string[] = ['content-type', 'application/json', REQUEST_ID_HEADER, ctx.requestId];
    const telemetry = ctx.owner.telemetry;
    if (telemetry?.serverTiming) head.push('server-timing', telemetry.serverTimingOf(ctx));
    if (ctx.activeFilters !== null) runResponseFilters(ctx, 200, head);
    if (ctx.responseBodyFilters !== null) {
      const rewriter = new ResponseBodyRewriter(ctx, ctx.responseBodyFilters);
      if (!rewriter.holdHead(200, head)) ctx.res.writeHead(200, head);
      if (rewriter.chunk(body) === BODY_TOO_LARGE) {
        this.failWith(
          'MG_RESPONSE_TOO_LARGE',
          `the response exceeds ${rewriter.limit} bytes, the most a plugin of route ${ctx.routeName} reads`,
        );
        return;
      }
      endResponse(ctx, rewriter);
      return;
    }
    head.push('content-length', String(body.length));
    ctx.res.writeHead(200, head);
    if (ctx.bodyTaps !== null) runBodyTaps(ctx, body);
    ctx.bytesOut += body.length;
    ctx.res.end(body);
    completeResponse(ctx);
  }

  private startStream(): void {
    const ctx = this.ctx;
    const head: string[] = [
      'content-type',
      this.exchange.sse ? 'text/event-stream' : 'application/x-ndjson',
      'cache-control',
      'no-cache',
      REQUEST_ID_HEADER,
      ctx.requestId,
    ];
    if (ctx.activeFilters !== null) runResponseFilters(ctx, 200, head);
    if (ctx.responseBodyFilters !== null) {
      this.bodyRewriter = new ResponseBodyRewriter(ctx, ctx.responseBodyFilters);
      if (this.bodyRewriter.holdHead(200, head)) return;
    }
    ctx.res.writeHead(200, head);
  }

  /** Writes to the client; false asks the upstream to wait for 'drain'. */
  private write(chunk: Buffer): boolean {
    const ctx = this.ctx;
    ctx.bytesOut += chunk.length;
    if (this.bodyRewriter !== null) {
      const written = this.bodyRewriter.chunk(chunk);
      if (written === BODY_TOO_LARGE) {
        this.verdict = [
          'MG_RESPONSE_TOO_LARGE',
          `the response exceeds ${this.bodyRewriter.limit} bytes, the most a plugin of route ${ctx.routeName} reads`,
        ];
        this.bodyRewriter = null;
        return true;
      }
      return written !== BODY_BACKPRESSURE;
    }
    if (ctx.bodyTaps !== null) runBodyTaps(ctx, chunk);
    return ctx.res.write(chunk);
  }

  private endOutput(): void {
    endResponse(this.ctx, this.bodyRewriter);
  }
}

/** The proto3 JSON of an unset field, for `responseBody` (the mapping leaves unset fields out). */
function defaultJsonOf(field: Field, action: TranscodeAction): unknown {
  const { protobuf } = action.library;
  if (field.map) return {};
  if (field.repeated) return [];
  const t = field.resolvedType;
  if (t instanceof protobuf.Type) return null;
  if (t instanceof protobuf.Enum) return t.valuesById[0] ?? 0;
  switch (field.type) {
    case 'bool':
      return false;
    case 'string':
    case 'bytes':
      return '';
    case 'int64':
    case 'uint64':
    case 'sint64':
    case 'fixed64':
    case 'sfixed64':
      return '0';
    default:
      return 0;
  }
}
