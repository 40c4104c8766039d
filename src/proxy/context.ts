/**
 * StreamContext: one per request, from the listener's callback to the log phase. Fixed shape, created
 * once per request; every phase (head, route, filters, upstream, response, log) reads and fills it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { CLIENT_CLOSED, type LocalReplyCode, LocalReplyCodes } from '../core/errors.ts';
import type { Consumer, CredentialRef, Filter, LocalReply, RequestContext } from '../core/plugin.ts';
import { runLogFilters } from './chain/filters.ts';
import { writeLocalReply } from './local-reply.ts';
import type { EncodedSlashPolicy } from './path.ts';
import type { MatchInput, Router } from './router/router.ts';
import type { CompiledDestination, CompiledListener, CompiledRoute, Snapshot } from './snapshot.ts';
import type { Endpoint } from './upstream/endpoint.ts';

/** What a listener needs from the proxy: the snapshot in force and where finished streams go. */
export interface StreamHost {
  readonly snapshot: Snapshot;
  /** Called once per request as it starts, before anything can fail. */
  onStreamStart(ctx: StreamContext): void;
  /** Called once per request when it is over (log phase): access log, metrics. */
  onStreamEnd(ctx: StreamContext): void;
  /** A plugin threw or rejected: the request got a 500; this is where the reason goes. */
  onFilterError?(ctx: StreamContext, plugin: string, error: unknown): void;
}

/** Per-listener settings the request path reads; resolved once per listener and snapshot. */
export interface ListenerRuntime {
  readonly config: CompiledListener;
  /** `http` or `https`: the scheme clients used, for X-Forwarded-Proto. */
  readonly scheme: string;
  readonly encodedSlashes: EncodedSlashPolicy;
  /** The route table of this listener in the snapshot it was resolved with. */
  readonly router: Router<CompiledRoute>;
}

export class StreamContext implements MatchInput, RequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** The proxy this stream belongs to (for the log phase). */
  readonly owner: StreamHost;
  readonly snapshot: Snapshot;
  readonly listener: ListenerRuntime;
  /** performance.now() at arrival. */
  readonly startMs: number;
  requestId = '';
  method: string;
  host = '';
  path = '';
  /** Raw query string without `?`, '' when absent. */
  query = '';
  /** Headers to send upstream, `[name, value, …]`, names lower-case. */
  readonly headers: string[] = [];
  clientAddress = '';
  hasBody = false;
  /** From Content-Length; -1 when chunked or absent. */
  contentLength = -1;
  route: CompiledRoute | null = null;
  destination: CompiledDestination | null = null;
  endpoint: Endpoint | null = null;
  consumer: Consumer | null = null;
  credential: CredentialRef | null = null;
  /** Filters of this request with response or log hooks (null: none, the common case). */
  activeFilters: Filter[] | null = null;
  /** Upstream attempts made. */
  tries = 0;
  /** Code of the local reply or failure that ended the stream, if any. */
  code: string | null = null;
  status = 0;
  /** performance.now() when the upstream's response headers arrived (0: never). */
  upstreamHeadersMs = 0;
  upstreamStartMs = 0;
  bytesOut = 0;
  done = false;
  /** The upstream attempt in progress, to abort when the client goes away. */
  upstream: { abort(): void } | null = null;

  /** Another stream pipelined on the same client connection (rare), for closing them all. */
  nextOnSocket: StreamContext | null = null;

  constructor(req: IncomingMessage, res: ServerResponse, host: StreamHost, listener: ListenerRuntime) {
    this.req = req;
    this.res = res;
    this.owner = host;
    this.snapshot = host.snapshot;
    this.listener = listener;
    this.method = req.method ?? 'GET';
    this.startMs = performance.now();
  }

  get routeName(): string {
    return this.route?.name ?? '';
  }

  get serviceName(): string | undefined {
    return this.destination?.service.name ?? this.route?.destinations[0]?.service.name;
  }

  /** Value of a request header by lower-case name (after hygiene: what the upstream will see). */
  header(name: string): string | undefined {
    const h = this.headers;
    let value: string | undefined;
    for (let i = 0; i < h.length; i += 2) {
      if (h[i] === name) value = value === undefined ? h[i + 1] : `${value}, ${h[i + 1]}`;
    }
    return value;
  }

  setHeader(name: string, value: string): void {
    const h = this.headers;
    for (let i = 0; i < h.length; i += 2)
      if (h[i] === name) {
        h[i + 1] = value;
        return;
      }
    h.push(name, value);
  }

  removeHeader(name: string): void {
    const h = this.headers;
    let w = 0;
    for (let r = 0; r < h.length; r += 2) {
      if (h[r] === name) continue;
      h[w++] = h[r]!;
      h[w++] = h[r + 1]!;
    }
    h.length = w;
  }

  /** Ends the stream with a problem reply (or an abort, when the response has already started). */
  fail(code: LocalReplyCode, detail: string): void {
    this.reply({ status: LocalReplyCodes[code].status, code, detail });
  }

  /** Answers at the proxy: a problem+json body (or the reply's own), through the response filters. */
  reply(reply: LocalReply): void {
    this.code = reply.code;
    if (!writeLocalReply(this, reply)) this.res.destroy();
    this.finish();
  }

  /**
   * The log phase, exactly once per stream: when the proxy has written the last byte, failed it, or
   * the client connection closed under it.
   */
  finish(): void {
    if (this.done) return;
    this.done = true;
    this.status = this.res.statusCode;
    untrack(this);
    if (this.activeFilters !== null) runLogFilters(this, performance.now() - this.startMs);
    this.owner.onStreamEnd(this);
  }
}

/*
 * Client disconnects are noticed per connection, not per request: one 'close' listener per socket
 * (added by the listener) instead of one per response, which cost ~4% of the proxy's instructions.
 */
const kStreams = Symbol('meshgate.streams');
const kCloseWhenIdle = Symbol('meshgate.closeWhenIdle');
type TrackedSocket = Socket & { [kStreams]?: StreamContext | null; [kCloseWhenIdle]?: boolean };

/**
 * Draining: close the connection once its streams are done (now, if it has none). Returns true when
 * the socket was idle and has been closed.
 */
export function closeWhenIdle(socket: Socket): boolean {
  const s = socket as TrackedSocket;
  s[kCloseWhenIdle] = true;
  if (s[kStreams] == null) {
    socket.end();
    return true;
  }
  for (let ctx: StreamContext | null | undefined = s[kStreams]; ctx != null; ctx = ctx.nextOnSocket) {
    if (!ctx.res.headersSent) ctx.res.shouldKeepAlive = false;
  }
  return false;
}

export function track(ctx: StreamContext) {
  const socket = ctx.req.socket as TrackedSocket;
  ctx.nextOnSocket = socket[kStreams] ?? null;
  socket[kStreams] = ctx;
}

function untrack(ctx: StreamContext) {
  const socket = ctx.req.socket as TrackedSocket;
  let s = socket[kStreams];
  if (s === ctx) {
    socket[kStreams] = ctx.nextOnSocket;
    if (ctx.nextOnSocket === null && socket[kCloseWhenIdle] === true) socket.end();
    return;
  }
  while (s != null) {
    if (s.nextOnSocket === ctx) {
      s.nextOnSocket = ctx.nextOnSocket;
      return;
    }
    s = s.nextOnSocket;
  }
}

/** The listener's 'close' handler for client sockets: ends every stream still open on it. */
export function onClientSocketClose(this: Socket) {
  let ctx = (this as TrackedSocket)[kStreams];
  (this as TrackedSocket)[kStreams] = null;
  while (ctx != null) {
    const next = ctx.nextOnSocket;
    if (!ctx.done) {
      if (ctx.code === null) ctx.code = CLIENT_CLOSED;
      ctx.upstream?.abort();
      ctx.finish();
    }
    ctx = next;
  }
}
