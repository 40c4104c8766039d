/**
 * The plugin contract: what a plugin declares, what its filters may do, and what they see of a
 * request. Built-in plugins (src/plugins/<name>/) and user plugins (`definePlugin`, loaded from
 * `plugins: [{ path: ./my-plugin.js }]`) use exactly this API.
 *
 * A plugin's config is validated against its JSON Schema and compiled once per snapshot into a
 * `FilterFactory`; per request the factory returns the filter for that request (a shared, stateless
 * object when the plugin keeps no per-request state, so nothing is allocated). Hooks are callbacks
 * that continue or stop, not an `await next()` onion: bodies stream and no closure is made per hop.
 */

/**
 * Phases run in this order; within a phase, by `order` (lower first). A config entry may override
 * `order` to move a plugin anywhere: the effective key is `PHASE_BASE[phase] + order`.
 */
export const PLUGIN_PHASES = ['request', 'authenticate', 'authorize', 'limit', 'transform', 'respond'] as const;
export type PluginPhase = (typeof PLUGIN_PHASES)[number];
export const PHASE_BASE: Readonly<Record<PluginPhase, number>> = {
  request: 1000,
  authenticate: 2000,
  authorize: 3000,
  limit: 4000,
  transform: 5000,
  respond: 6000,
};

/** An API client identity, established by an authentication plugin. */
export interface Consumer {
  readonly name: string;
  /** Stable id sent upstream as X-Consumer-ID (the name unless the config sets `id`). */
  readonly id: string;
  readonly groups: readonly string[];
}

/** Which credential authenticated the request (for rate limiting by credential, logs). */
export interface CredentialRef {
  readonly type: string;
  /** A non-secret identifier of the credential (e.g. issuer, or a key's hash prefix). */
  readonly id: string;
}

/** What a filter sees of a request, and may change before it goes upstream. */
export interface RequestContext {
  /** The request id (the request-id plugin may replace it). */
  requestId: string;
  readonly method: string;
  /** Lower-case host without port. */
  readonly host: string;
  /** Normalised path, without query. */
  readonly path: string;
  /** Raw query string without `?` ('' when none); what goes upstream (a filter may remove a parameter). */
  query: string;
  /**
   * The value of the route's `:name` path segment (URL-decoded), or undefined when the route's pattern has
   * no such segment. Worked out on first use, so requests that never ask pay nothing.
   */
  pathParam(name: string): string | undefined;
  /**
   * Replaces the path sent upstream (not the query: `query`, as filters leave it, still goes with it),
   * in place of the request's own path and of the route's `rewrite.prefix`/`rewrite.regex`
   * (`rewrite.host` still applies). `path` starts with `/` and is already percent-encoded as it should
   * go on the wire. Routing is done: it changes only what the forward action sends (the
   * request-transformer's `replace.uri`).
   */
  setUpstreamPath(path: string): void;
  /** Client address, as seen through the listener's trusted hops. */
  readonly clientAddress: string;
  readonly routeName: string;
  readonly serviceName: string | undefined;
  /** Request header as it will go upstream (lower-case name; repeated values joined with `, `). */
  header(name: string): string | undefined;
  /** Replaces every value the header had (a client's repeated copies included) with `value`. */
  setHeader(name: string, value: string): void;
  removeHeader(name: string): void;
  consumer: Consumer | null;
  credential: CredentialRef | null;
  /**
   * The verified workload identity of the caller: the SPIFFE ID of the client certificate, when the
   * request came over TLS with a certificate the listener verified (mutual TLS); null otherwise.
   */
  readonly peerPrincipal?: string | null;
  /**
   * Claims of the token an authentication plugin verified (jwt), frozen; null or absent when none was.
   * Set by that plugin; others only read it (authorization policies' `request.auth.claims[…]`).
   */
  claims?: Readonly<Record<string, unknown>> | null;
  /** Bytes of request body announced by Content-Length, or -1 when unknown (chunked) or absent. */
  readonly contentLength: number;
  /** True when the request has a body (Content-Length above 0, or chunked). */
  readonly hasBody: boolean;
  /**
   * Caps the request body while it streams: past `maxBytes` the upstream request is aborted and the
   * client gets 413 (or an aborted response, if the upstream's answer had already begun).
   */
  limitRequestBody(maxBytes: number): void;
}

/** The response head on its way back, before it is written. */
export interface ResponseHead {
  readonly status: number;
  header(name: string): string | undefined;
  /** Every header, names lower-case (a repeated header as one entry with a list). */
  entries(): Iterable<[string, string | string[]]>;
  /** Replaces every value the header had with `value`. */
  setHeader(name: string, value: string): void;
  /** Adds one more line of the header after those it has (a second `Set-Cookie`), lower-case name. */
  appendHeader(name: string, value: string): void;
  removeHeader(name: string): void;
}

/** A reply produced by a filter instead of forwarding: a problem+json body with a stable code. */
export interface LocalReply {
  status: number;
  /** Stable code, `MG_…` for built-in plugins; shown in the body and the x-meshgate-code header. */
  code: string;
  /** What happened, for a human; never secrets. */
  detail: string;
  headers?: readonly [string, string][];
  /** Replaces the problem+json body (e.g. a CORS preflight's empty 204, a cached response). */
  body?: { contentType: string; text: string | Buffer };
  /**
   * A response of the plugin's own rather than an error: no `x-meshgate-code` and `cache-control:
   * no-store` are added (a cached response keeps its own headers).
   */
  plain?: boolean;
  /** Close the client connection after the reply (e.g. a request body that will not be read). */
  closeConnection?: boolean;
}

/** `undefined` continues; a LocalReply stops the chain and answers; a Promise does either later. */
export type FilterResult = undefined | LocalReply | Promise<undefined | LocalReply>;

/**
 * What a body hook returns in place of the bytes it was given: `undefined` passes them on as they are;
 * `null` sends nothing for now (a streaming filter holding bytes back until `end`); otherwise the bytes
 * to send instead (a string is sent as UTF-8). A LocalReply (buffered request bodies only) answers the
 * request instead of forwarding it.
 */
export type BodyOutput = undefined | null | string | Buffer | readonly (string | Buffer)[];

export interface Filter {
  /** Request headers are in; the body has not been read. */
  onRequestHeaders?(ctx: RequestContext): FilterResult;
  /**
   * Reads and may rewrite the request body (only requests that have one). Streaming, when
   * `requestBodyLimit` is not set: called with each chunk as it arrives (`end` false), then once with an
   * empty chunk and `end` true; what it returns goes upstream in place of the chunk, with backpressure
   * kept. Buffered, when `requestBodyLimit` is set: called once with the whole body and `end` true, and
   * may return a promise or a LocalReply. The proxy fixes the framing (Content-Length or chunked); a
   * filter never sets it. Declaring this hook is what takes the route off the zero-copy path.
   */
  onRequestBody?(
    ctx: RequestContext,
    chunk: Buffer,
    end: boolean,
  ): BodyOutput | LocalReply | Promise<BodyOutput | LocalReply>;
  /**
   * Bytes: this filter needs the whole request body at once, and at most this many of them (a larger
   * body is refused with 413 before anything goes upstream). Not set: `onRequestBody` streams.
   */
  readonly requestBodyLimit?: number;
  /** Response head from upstream (or a local reply), before it is written: add or remove headers. */
  onResponseHeaders?(ctx: RequestContext, response: ResponseHead): void;
  /**
   * A chunk of the upstream's response body as it streams past (read-only: it goes on to the client
   * unchanged; `rewriteResponseBody` is the hook that changes it, and this one sees the bytes the client
   * gets, after any rewriting). Declaring this hook is what makes the proxy hand chunks over; routes
   * without it pay nothing.
   */
  onResponseBody?(ctx: RequestContext, chunk: Buffer): void;
  /**
   * Rewrites the upstream's response body (not local replies; not HEAD, 204 or 304 responses). Same
   * contract as `onRequestBody`, with `responseBodyLimit`: streaming (the response goes out chunked, its
   * Content-Length dropped) or buffered (the head is held until the whole body is in and rewritten, then
   * sent with the new Content-Length; a body over the limit is a 502 `MG_RESPONSE_TOO_LARGE`). Runs in the
   * order the filters ran on the request. The bytes are as the upstream sent them: a filter that only
   * understands identity-encoded bodies should leave others (Content-Encoding) alone.
   */
  rewriteResponseBody?(ctx: RequestContext, chunk: Buffer, end: boolean): BodyOutput | Promise<BodyOutput>;
  /** Bytes: `rewriteResponseBody` gets the whole response body at once, at most this many. Not set: it streams. */
  readonly responseBodyLimit?: number;
  /**
   * Asked once the response head is final (after every `onResponseHeaders`), before any body byte:
   * false leaves this response's body alone for this filter (its `rewriteResponseBody` is not called and
   * its `responseBodyLimit` does not apply, so a large download of another type is neither buffered nor
   * refused). When no body filter wants the response it keeps the zero-copy path. Absent: true.
   */
  wantsResponseBody?(ctx: RequestContext, response: ResponseHead): boolean;
  /** The upstream's response ended whole (after the last `onResponseBody`). Not called for local replies. */
  onResponseComplete?(ctx: RequestContext): void;
  /** The request is over (log phase): its status and outcome are final. */
  onLog?(ctx: RequestContext, outcome: { status: number; code: string | null; durationMs: number }): void;
  /**
   * What this filter decided for the request, as plain JSON for its decision trail (`meshgate explain`):
   * counters and what remains of them, a cache status, the scopes it required. Called only for requests
   * whose trail is recorded, right after `onRequestHeaders` settled; never secrets.
   */
  explain?(): Record<string, unknown> | undefined;
}

export type FilterFactory = (ctx: RequestContext) => Filter;

/** What a plugin's compile step may use: injected, never global (house rule 7). */
export interface PluginDeps {
  /** Milliseconds since the epoch; injectable so tests control time. */
  now(): number;
  /** Consumers of the config, by name. */
  consumers: ReadonlyMap<string, ConsumerDefinition>;
  /** Where a plugin's own warnings go (JSON logs). */
  warn(message: string, fields?: Record<string, unknown>): void;
  /**
   * A long-lived object shared by every snapshot of this proxy (counters, key caches), created on
   * first use: state that must survive a reload. Keys are namespaced by the caller, e.g. `rate-limit:memory`.
   * Kept while the config in force asks for it (from `compile`); then its `close()`, if it has one, is
   * called and the next ask creates it afresh.
   */
  shared<T>(key: string, create: () => T): T;
  /**
   * Per-snapshot memo: the same value for every route of one snapshot (e.g. an index of every consumer's
   * credentials), rebuilt with the next snapshot.
   */
  perSnapshot<T>(key: string, create: () => T): T;
  /**
   * Set when the filters compiled with these deps only ever run in a dry run (a shadow config,
   * docs/shadow.md): a namespace, the same in every process of the proxy, that their state must stay
   * in. Their `shared` is the shadow's own; a store they share with the live config (a gateway's
   * primary process) may be used only under keys prefixed with it; Redis not at all. Absent: live.
   */
  readonly isolated?: string;
  /**
   * The config's top-level `redis` block, for plugins offering `store: redis` (src/stores/redis/), or
   * undefined when the config has none.
   */
  readonly redis: { readonly url: string; readonly keyPrefix?: string; readonly timeout?: string } | undefined;
  /**
   * A counter in this proxy's metrics, named `<role>_<name>` (gateway_… or mesh_…); asking again for
   * a name returns the same counter. For events a plugin must make visible; its README and
   * docs/metrics.md list the name (house rule 11). Labels must be bounded (names from the config).
   */
  counter(name: string, help: string, labelNames: readonly string[]): PluginCounter;
}

/** A counter a plugin increments; see PluginDeps.counter. */
export interface PluginCounter {
  inc(labels: Readonly<Record<string, string>>, by?: number): void;
}

/** Where plugin definitions come from: the built-in list plus modules named by `path` in the config. */
export interface PluginCatalog {
  get(name: string): PluginDefinition | undefined;
  /** Every name known now, for did-you-mean hints. */
  names(): string[];
  /** Loads (once) the module at an absolute path and returns its definition. */
  load(absolutePath: string): Promise<PluginDefinition>;
  /** The definition loaded from that path, if `load` has run. */
  loaded(absolutePath: string): PluginDefinition | undefined;
  /** Why the last `load` of that path failed, if it did. */
  loadError?(absolutePath: string): string | undefined;
  /**
   * Loads the built-in plugins of these names that are not loaded yet (a catalog whose built-ins load
   * on first use; see plugins/lazy.ts); names it does not know are left for `get` to miss.
   */
  preload?(names: readonly string[]): Promise<void>;
}

/** A consumer as configured, with its credentials, for authentication plugins to index. */
export interface ConsumerDefinition extends Consumer {
  readonly credentials: readonly Record<string, unknown>[];
}

export interface PluginDefinition<C = Record<string, unknown>> {
  name: string;
  phase: PluginPhase;
  /** Default position within the phase (lower runs first). */
  order: number;
  /** JSON Schema of the plugin's `config`. */
  configSchema: object;
  /** One line for docs and `meshgate --help`. */
  description: string;
  /**
   * Checks the schema cannot express (a CIDR that does not parse, two options that exclude each other),
   * run when the config is validated so the problems are reported with their file position.
   */
  check?(config: C): { path: (string | number)[]; message: string; hint?: string }[];
  compile(config: C, deps: PluginDeps): FilterFactory | Promise<FilterFactory>;
}

/** Declares a plugin; a module loaded with `plugins: [{ path }]` default-exports the result. */
export function definePlugin<C = Record<string, unknown>>(definition: PluginDefinition<C>): PluginDefinition<C> {
  return Object.freeze(definition);
}
