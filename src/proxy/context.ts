/**
 * StreamContext: one per request, from the listener's callback to the log phase. Fixed shape, created
 * once per request; every phase (head, route, filters, upstream, response, log) reads and fills it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  type Http2ServerRequest,
  type Http2ServerResponse,
  constants as http2Constants,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Transform } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { AuthzDecision } from '../api/authorization.ts';
import { CLIENT_CLOSED, type LocalReplyCode, LocalReplyCodes } from '../core/errors.ts';
import type { Consumer, CredentialRef, Filter, LocalReply, RequestContext } from '../core/plugin.ts';
import { spiffeIdOfCertificate } from '../core/spiffe.ts';
import type { RequestTrace, Tracing } from '../observability/tracing.ts';
import type { CompiledDestination, CompiledListener, CompiledRoute, Snapshot } from './compiled.ts';
import type { ExplainSettings, Trail } from './explain/trail.ts';
import { headerValue, removeHeader, setHeader } from './headers.ts';
import type { MeshTls } from './identity/mesh-tls.ts';
import type { LeanRequest } from './listener/lean/request.ts';
import type { LeanResponse } from './listener/lean/response.ts';
import { peerOf } from './listener/peer.ts';
import type { TlsMaterial } from './listener/tls.ts';
import type { EncodedSlashPolicy } from './path.ts';
import { newRequestId } from './request-id.ts';
import { type MatchInput, pathParams, type Router } from './router/router.ts';
import type { Endpoint } from './upstream/endpoint.ts';
import type { ReplayableBody } from './upstream/replay-body.ts';

/** One try that did not end the request (it was retried), for the access log and the admin API. */
export interface TryRecord {
  /** `host:port` of the endpoint. */
  endpoint: string;
  /** `status 503`, or the code of a failure before any response (`MG_UPSTREAM_RESET`…). */
  outcome: string;
}

/** What the request path reads of the proxy's telemetry while a request runs (telemetry.ts). */
export interface StreamTelemetry {
  /** Spans per hop, or null when tracing is off. */
  readonly tracing: Tracing | null;
  /** Add this proxy's Server-Timing entry to responses. */
  readonly serverTiming: boolean;
  serverTimingOf(ctx: StreamContext): string;
  /** Decision trails (`observability.explain`), or null when off. */
  readonly explain: ExplainSettings | null;
}

/** A request's retry state as the rest of the request path sees it (upstream/retry-state.ts keeps it). */
export interface RequestRetry {
  /** Endpoints tried so far, avoided by the next try where possible. */
  readonly tried: readonly Endpoint[];
  /** The failure to answer with when no further try can be made. */
  lastCode: LocalReplyCode;
  lastDetail: string;
  abort(): void;
}

/** A candidate config evaluated beside the live one on the same requests (shadow/shadow.ts). */
export interface ShadowObserver {
  /** The request head is read and about to be routed; the shadow takes what it needs and leaves `ctx` as it was. */
  observe(ctx: StreamContext): void;
}

/** What a listener needs from the proxy: the snapshot in force and where finished streams go. */
export interface StreamHost {
  readonly snapshot: Snapshot;
  /** The shadow config in force, or null (or absent): none, which costs the request path one check. */
  readonly shadow?: ShadowObserver | null;
  /** Called once per request as it starts, before anything can fail. */
  onStreamStart(ctx: StreamContext): void;
  /** Called once per request when it is over (log phase): filters' onLog, access log, metrics. */
  onStreamEnd(ctx: StreamContext): void;
  /**
   * Writes a local reply if nothing was sent yet (local-reply.ts); false when the response had already
   * started. Through the host so that the context, which every module uses, depends on none of them.
   */
  writeReply(ctx: StreamContext, reply: LocalReply): boolean;
  /** A plugin threw or rejected: the request got a 500; this is where the reason goes. */
  onFilterError?(ctx: StreamContext, plugin: string, error: unknown): void;
  /** Metrics, access log and tracing of this proxy (null: none, as in some tests). */
  readonly telemetry: StreamTelemetry | null;
}

/** Per-listener settings the request path reads; resolved once per listener and snapshot. */
export interface ListenerRuntime {
  readonly config: CompiledListener;
  /** `http` or `https`: the scheme clients used, for X-Forwarded-Proto. */
  readonly scheme: string;
  readonly encodedSlashes: EncodedSlashPolicy;
  /** Certificates and client verification of a TLS listener; null for plain ones. */
  readonly tls: TlsMaterial | null;
  /** Mutual TLS with the workload identity (`mtls.mode` STRICT or PERMISSIVE); null otherwise. */
  readonly mesh: MeshTls | null;
  /** Callers present certificates this listener verifies (mesh mTLS, or TLS with `clientCa`). */
  readonly verifiesPeers: boolean;
  /** The route table of this listener in the snapshot it was resolved with. */
  readonly router: Router<CompiledRoute>;
}

/**
 * A client request and response: HTTP/1.1 (node:http, or the lean engine's objects with the same
 * members for what the request path uses) or HTTP/2 (node:http2 compatibility API).
 */
export type ClientRequest = IncomingMessage | Http2ServerRequest | LeanRequest;
export type ClientResponse = ServerResponse | Http2ServerResponse | LeanResponse;

const H2_INTERNAL_ERROR = http2Constants.NGHTTP2_INTERNAL_ERROR;

export class StreamContext implements MatchInput, RequestContext {
  /** Typed as HTTP/1.1; for HTTP/2 the compatibility API's objects, which have the same shape for what is used. */
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** HTTP/2 from the client: many streams per connection, so disconnects are noticed per stream. */
  readonly h2: boolean;
  /** The proxy this stream belongs to (for the log phase). */
  readonly owner: StreamHost;
  readonly snapshot: Snapshot;
  readonly listener: ListenerRuntime;
  /** performance.now() at arrival. */
  readonly startMs: number;
  requestId = '';
  method: string;
  host = '';
  /** Normalised path: what routes match and plugins see (path.ts). */
  path = '';
  /** The path as the client sent it: what the upstream gets unless a rewrite applies (path.ts `upstreamPath`). */
  rawPath = '';
  /** Raw query string without `?`, '' when absent. */
  query = '';
  /** Headers to send upstream, `[name, value, …]`, names lower-case. */
  readonly headers: string[] = [];
  clientAddress = '';
  hasBody = false;
  /** From Content-Length; -1 when chunked or absent. */
  contentLength = -1;
  /** The client sent `TE: trailers` (gRPC does): forwarded to HTTP/2 upstreams, which may then send trailers. */
  teTrailers = false;
  /** The body limit in force for this request, for messages (-1: none). */
  bodyLimit = -1;
  /** Body bytes still allowed before 413 while a chunked body streams (-1: no limit applies). */
  bodyAllowance = -1;
  route: CompiledRoute | null = null;
  destination: CompiledDestination | null = null;
  endpoint: Endpoint | null = null;
  consumer: Consumer | null = null;
  credential: CredentialRef | null = null;
  /** Claims of the token the jwt plugin verified (frozen), or null. */
  claims: Readonly<Record<string, unknown>> | null = null;
  /** What authorization policies decided, for the access log and metrics (null: no policy had a say). */
  authz: readonly AuthzDecision[] | null = null;
  /** Filters of this request with response or log hooks (null: none, the common case). */
  activeFilters: Filter[] | null = null;
  /** Filters that read the response body as it streams (null: none). */
  bodyTaps: Filter[] | null = null;
  /** Filters that rewrite the request body (null: none, the zero-copy path). */
  requestBodyFilters: Filter[] | null = null;
  /** Filters that rewrite the response body (null: none). */
  responseBodyFilters: Filter[] | null = null;
  /** The request body after filters that buffered it, sent as it is on every try (null: it streams). */
  bufferedBody: Buffer | null = null;
  /** The streaming request body filters, piped between the client's body and undici (null: none). */
  requestBodyTransform: Transform | null = null;
  /** Each try sends the chosen endpoint's host:port as Host (the route's `rewrite.autoHost`). */
  autoHost = false;
  /** Upstream tries made (1 + retries). */
  tries = 0;
  /**
   * Decisions of the upstream phase, for the access log and the admin API (see upstream/decisions.ts):
   * why the request was refused without an upstream answer (`circuit-open:maxPendingRequests`,
   * `no-healthy-endpoint`, `fault-abort`…), or null.
   */
  refusal: string | null = null;
  /** Why a retriable failure was not retried (`attempts-exhausted`, `retry-budget-exhausted`…), or null. */
  retryStop: string | null = null;
  /** The tries that were retried, oldest first; null unless the request was retried. */
  tryLog: TryRecord[] | null = null;
  /** A try was sent while its endpoint set was in panic mode (too few healthy endpoints). */
  panic = false;
  /** Delay injected by the route's fault settings, in ms (0: none). */
  faultDelayMs = 0;
  /** This request was chosen for the route's mirror (the copy may still be dropped by the shadow's limits). */
  mirrored = false;
  /** Overall upstream timeout in force, ms (route or service, shortened by X-Request-Timeout); 0: none. */
  timeoutMs = 0;
  /** X-Request-Timeout as the client sent it (consumed by the proxy, not forwarded), or null. */
  requestTimeoutHeader: string | null = null;
  /** Path (and query) sent upstream, after rewrites. */
  upstreamPath = '';
  /** The path a filter chose for upstream (`setUpstreamPath`), replacing the request's and the rewrite; null: none. */
  pathOverride: string | null = null;
  /** The 32-bit key the balancer placed this request by (consistent hashing), reused by retries. */
  hashKey = 0;
  /** Clock time by which the response headers must have arrived, across tries (retries only). */
  deadlineAt = Number.POSITIVE_INFINITY;
  /** The request body kept for retries or a mirror, or null when it streams straight through. */
  body: ReplayableBody | null = null;
  /** Watches a body still arriving for stalls and trickles (body-guard.ts); null when none is. */
  bodyGuard: { stop(): void } | null = null;
  /** Retry state, created at the first retry. */
  retry: RequestRetry | null = null;
  /** Code of the local reply or failure that ended the stream, if any. */
  code: string | null = null;
  status = 0;
  /** performance.now() when the upstream's response headers arrived (0: never). */
  upstreamHeadersMs = 0;
  /** performance.now() when the upstream's response ended (0: never). */
  upstreamEndMs = 0;
  /**
   * performance.now() just before the last body chunk was handed to the client's connection (0: none
   * was): where the request's duration ends. Taken before the write, it precedes whatever the client
   * does on receiving those bytes, so a called hop never seems to outlast its caller when this process
   * is descheduled between the write and its log phase.
   */
  lastWriteMs = 0;
  /** Request body bytes sent upstream. */
  bytesIn = 0;
  /** The trace this request belongs to, when tracing is on (null otherwise). */
  trace: RequestTrace | null = null;
  /** W3C trace id (incoming or new), for logs and problem replies; undefined when there is none. */
  traceId: string | undefined = undefined;
  upstreamStartMs = 0;
  bytesOut = 0;
  done = false;
  /** The decision trail of this request when it is recorded (explain/trail.ts); null: not recorded, the common case. */
  trail: Trail | null = null;
  /** The client asked for its decision trail (`X-Meshgate-Explain`, explain/trail.ts ASKED); 0: not. */
  explainAsked = 0;
  /** The upstream attempt in progress, to abort when the client goes away. */
  upstream: { abort(): void } | null = null;

  /** WebSocket upgrades: bytes the client sent after the request head, for the upstream. */
  upgradeHead: Buffer | null = null;

  /** Another stream pipelined on the same client connection (rare), for closing them all. */
  nextOnSocket: StreamContext | null = null;

  /** The verified caller (see `peerPrincipal`); undefined until read. */
  private principal: string | null | undefined = undefined;
  /** The route's `:name` segments of this path; null until `pathParam` is first called. */
  private params: Record<string, string> | null = null;

  constructor(req: ClientRequest, res: ClientResponse, host: StreamHost, listener: ListenerRuntime) {
    this.req = req as IncomingMessage;
    this.res = res as unknown as ServerResponse;
    this.h2 = req.httpVersionMajor === 2;
    this.owner = host;
    this.snapshot = host.snapshot;
    this.listener = listener;
    this.method = req.method ?? 'GET';
    // Read while the connection is there to ask (an HTTP/2 stream loses its session once it ends).
    if (listener.verifiesPeers) this.principal = readPeerPrincipal(this);
    this.startMs = performance.now();
  }

  /**
   * Arrival time, milliseconds since the epoch: the wall clock now less the monotonic time since
   * arrival. Not `performance.timeOrigin + startMs`: the monotonic clock stops while the machine is
   * paused (a suspended VM) and the wall clock does not, so each process's timeOrigin drifts from the
   * wall clock by the pauses since it started, and two proxies' starts of one request disagreed by
   * more than LOOKUP_CLOCK_SKEW_MS. Read only for a request that is traced, logged or remembered.
   */
  get startEpochMs(): number {
    return Date.now() - (performance.now() - this.startMs);
  }

  get routeName(): string {
    return this.route?.name ?? '';
  }

  /**
   * The caller's SPIFFE ID, verified on this connection: by the mesh's mutual TLS (noted on the socket
   * at the handshake, listener/peer.ts) or by a TLS listener with `clientCa`; null on plaintext or
   * when the certificate names no workload. Read from the connection once and kept on it: every
   * request of a connection has the same peer.
   */
  get peerPrincipal(): string | null {
    if (this.principal === undefined) this.principal = readPeerPrincipal(this);
    return this.principal;
  }

  get serviceName(): string | undefined {
    return this.destination?.service.name ?? this.route?.services[0]?.name;
  }

  pathParam(name: string): string | undefined {
    if (this.params === null) {
      const pattern = this.route?.pathPattern;
      this.params = pattern === undefined ? {} : pathParams(pattern, this.path);
    }
    return Object.hasOwn(this.params, name) ? this.params[name] : undefined;
  }

  setUpstreamPath(path: string): void {
    this.pathOverride = path;
  }

  /** Value of a request header by lower-case name (after hygiene: what the upstream will see). */
  header(name: string): string | undefined {
    return headerValue(this.headers, name);
  }

  setHeader(name: string, value: string): void {
    setHeader(this.headers, name, value);
  }

  removeHeader(name: string): void {
    removeHeader(this.headers, name);
  }

  limitRequestBody(maxBytes: number): void {
    if (this.bodyLimit !== -1 && this.bodyLimit <= maxBytes) return;
    this.bodyLimit = maxBytes;
    // Only a body of unknown length is counted as it streams (upstream/forward.ts BodyLimit).
    if (this.contentLength < 0) this.bodyAllowance = maxBytes;
  }

  /** Ends the stream with a problem reply (or an abort, when the response has already started). */
  fail(code: LocalReplyCode, detail: string): void {
    this.reply({ status: LocalReplyCodes[code].status, code, detail });
  }

  /**
   * Ends the stream with a problem reply and closes the client connection after it: for requests whose
   * framing cannot be trusted, or whose body is left unread.
   */
  failAndClose(code: LocalReplyCode, detail: string): void {
    if (!this.h2) this.res.shouldKeepAlive = false;
    this.fail(code, detail);
  }

  /** Answers at the proxy: a problem+json body (or the reply's own), through the response filters. */
  reply(reply: LocalReply): void {
    this.code = reply.code;
    if (reply.closeConnection === true && !this.h2) this.res.shouldKeepAlive = false;
    if (this.requestId === '') this.requestId = newRequestId();
    if (!this.owner.writeReply(this, reply)) this.abortResponse();
    this.finish();
  }

  /**
   * The response has started and cannot become a reply: cut it so the client sees it fail. HTTP/1.1:
   * the connection closes before the declared length or last chunk. HTTP/2: RST_STREAM with
   * INTERNAL_ERROR (a plain close would end the stream cleanly, and a truncated body look complete).
   */
  abortResponse(): void {
    if (this.h2) {
      const stream = (this.res as unknown as Http2ServerResponse).stream;
      if (!stream.destroyed) stream.close(H2_INTERNAL_ERROR);
    } else this.res.destroy();
  }

  /**
   * The log phase, exactly once per stream: when the proxy has written the last byte, failed it, or
   * the client connection closed under it.
   */
  finish(): void {
    if (this.done) return;
    this.done = true;
    if (this.bodyGuard !== null) this.bodyGuard.stop();
    this.status = this.res.statusCode;
    if (!this.h2) untrack(this);
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

const kPeerPrincipal = Symbol('meshgate.peerPrincipal');

/**
 * The caller's verified SPIFFE ID: noted at the mesh's mutual-TLS handshake (listener/peer.ts), or the
 * client certificate of a TLS listener with `clientCa`, read once per connection and kept on it.
 */
function readPeerPrincipal(ctx: StreamContext): string | null {
  const noted = peerOf(ctx.req.socket)?.principal;
  if (noted !== undefined) return noted;
  const socket = (ctx.h2 ? (ctx.req as unknown as Http2ServerRequest).stream.session?.socket : ctx.req.socket) as
    | PeerSocket
    | null
    | undefined;
  if (socket == null) return null;
  let peer = socket[kPeerPrincipal];
  if (peer === undefined) {
    peer =
      typeof socket.getPeerCertificate === 'function' && socket.authorized === true
        ? (spiffeIdOfCertificate(socket.getPeerCertificate()) ?? null)
        : null;
    socket[kPeerPrincipal] = peer;
  }
  return peer;
}

/** A client connection, with its verified peer identity once read (null: none). */
type PeerSocket = Partial<Pick<TLSSocket, 'getPeerCertificate' | 'authorized'>> & {
  [kPeerPrincipal]?: string | null;
};

const kStreamContext = Symbol('meshgate.streamContext');
type WatchedStream = ServerHttp2Stream & { [kStreamContext]?: StreamContext };

/** HTTP/2: the stream's own close tells that the client cancelled it (or its connection went). */
export function watchStream(ctx: StreamContext) {
  const stream = (ctx.req as unknown as Http2ServerRequest).stream as WatchedStream;
  stream[kStreamContext] = ctx;
  stream.once('close', onClientStreamClose);
}

function onClientStreamClose(this: WatchedStream) {
  const ctx = this[kStreamContext];
  this[kStreamContext] = undefined;
  if (ctx === undefined || ctx.done) return;
  if (ctx.code === null) ctx.code = CLIENT_CLOSED;
  ctx.upstream?.abort();
  ctx.finish();
}

/** The newest stream on an HTTP/1.1 connection (the request being parsed), if any. */
export function newestStreamOnSocket(socket: Socket): StreamContext | null {
  return (socket as TrackedSocket)[kStreams] ?? null;
}

export function track(ctx: StreamContext) {
  const socket = ctx.req.socket as TrackedSocket;
  ctx.nextOnSocket = socket[kStreams] ?? null;
  socket[kStreams] = ctx;
}

function untrack(ctx: StreamContext) {
  const socket = ctx.req.socket as TrackedSocket | null;
  if (socket == null) return;
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
