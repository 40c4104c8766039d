/**
 * The lean upstream client (`services[].engine: lean`): one HTTP/1.1 connection to an endpoint, as the
 * pool (pool.ts) uses an undici `Client` with `pipelining: 1`, with the same dispatch contract
 * (`dispatch(options, handler)`, undici's handler API: onRequestStart, onResponseStart, onResponseData,
 * onResponseEnd, onResponseError, onBodySent). The pool, its free stack, its queue and the circuit
 * breaker's counts are unchanged; only what one connection does per request is leaner:
 *
 *   - the request head is one string written with the body in one corked write: request line, the
 *     forwarder's flat header array as it is, framing and `connection` lines. undici validates every
 *     header name and value with a regular expression and a table walk, lower-cases names and rebuilds
 *     the list per request. Here names are not checked: they come from the listener's parser (llhttp
 *     rejects any byte outside a token) or from the config, whose schema allows only tokens. Values are
 *     checked for CR, LF and NUL only, the bytes that could end a line or the head early (request
 *     smuggling): values the listener parsed cannot hold them (llhttp refuses them), but a plugin may
 *     copy request data into a header (a JWT claim, a transform's template), so that one cheap test stays;
 *   - responses are parsed by node:http's own llhttp binding in RESPONSE mode (parser.ts), which hands
 *     the head over as a flat `[name, value, …]` array; the header object undici's handler API gives
 *     `onResponseStart` is built from it in one pass;
 *   - one sweep every LEAN_CLIENT_SWEEP_MS checks every connection's idle, headers and body deadlines,
 *     instead of timers refreshed per request and per chunk;
 *   - undici 8's idle-socket check, without its `setImmediate` per request: one per turn of the event
 *     loop writes every request waiting for it (see `takeConnection`).
 *
 * Plain HTTP/1.1 only (TLS, HTTP/2, Upgrade and CONNECT stay with undici), one request at a time per
 * connection (no pipelining).
 */
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import {
  LEAN_CLIENT_SWEEP_MS,
  UPSTREAM_KEEPALIVE_MAX_MS,
  UPSTREAM_KEEPALIVE_THRESHOLD_MS,
} from '../../core/defaults.ts';
import { HTTPParser, type NativeHttpParser } from '../listener/lean/parser.ts';

export interface LeanClientOptions {
  /** 0: no connect timeout. */
  connectTimeoutMs: number;
  /** How long an unused connection stays open when the upstream announces no keep-alive timeout. */
  keepAliveMs: number;
}

type ResponseHeaders = Record<string, string | string[]>;

interface ClientParser extends NativeHttpParser {
  connection: Connection;
}

/** llhttp's async resource: the parser wants an object; no per-connection async context is kept. */
const PARSER_RESOURCE = Object.freeze({});
/**
 * Every connection reads into this one buffer (net's `onread`), which the parser consumes before the
 * read callback returns: llhttp's binding copies what it hands over (header strings, body chunks into
 * buffers of their own) and saves a head split across reads. Node's default read allocates a 64 KiB
 * backing store per read and pushes it through the socket's Readable, which nothing here needs. Reads
 * are delivered one at a time from the event loop, so one buffer serves all connections.
 */
const READ_BUFFER = Buffer.allocUnsafeSlow(64 * 1024);
/** Bytes that would end a header line or the head inside a value (request smuggling). */
const LINE_BREAKING = /[\r\n\0]/;
const KEEP_ALIVE_TIMEOUT = /timeout=(\d+)/i;

/** Methods whose requests carry a body by definition: an empty one is sent as `content-length: 0` (undici's rule). */
function expectsPayload(method: string): boolean {
  return (
    method === 'POST' ||
    method === 'PUT' ||
    method === 'PATCH' ||
    method === 'QUERY' ||
    method === 'PROPFIND' ||
    method === 'PROPPATCH'
  );
}

/** An error with undici's code for the same failure, so classify.ts words it the same way. */
function clientError(message: string, code: string): Error {
  const e = new Error(message);
  (e as NodeJS.ErrnoException).code = code;
  return e;
}

function otherSideClosed(): Error {
  return clientError('other side closed', 'UND_ERR_SOCKET');
}

/**
 * One request on a connection, and the controller its handler is given: pausing the response stops
 * reading the socket; aborting destroys the connection (a response cut short cannot leave it reusable).
 */
class Exchange implements Dispatcher.DispatchController {
  /** The connection it goes out on (another one if the reused one it was given closed before the write). */
  connection: Connection;
  readonly handler: Dispatcher.DispatchHandler;
  /** Kept only until the request is written (a request waiting for the idle-socket check). */
  options: Dispatcher.DispatchOptions | null;
  readonly method: string;
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  /** performance.now() when the request was written; the headers timeout runs from it. */
  sentAt = 0;
  /** The final (non-1xx) response head has been handed over. */
  headReceived = false;
  /** Response data arrived since the last sweep (the body timeout restarts). */
  progressed = false;
  /** performance.now() since when no response data has arrived, as the sweep last saw it. */
  quietSince = 0;
  /** The request, body included, is fully written. */
  requestSent = false;
  /** The request body being streamed (null: none, or written whole). */
  body: Readable | null = null;
  /** Body bytes the head declared (`content-length`), or -1: chunked. */
  declaredLength = -1;
  sentLength = 0;
  bodyPaused = false;
  /** The response ended or failed: nothing more reaches the handler. */
  ended = false;
  private abortedBy: Error | null = null;
  private pausedNow = false;

  constructor(connection: Connection, handler: Dispatcher.DispatchHandler, options: Dispatcher.DispatchOptions) {
    this.connection = connection;
    this.handler = handler;
    this.options = options;
    this.method = options.method;
    this.headersTimeoutMs = options.headersTimeout ?? 0;
    this.bodyTimeoutMs = options.bodyTimeout ?? 0;
  }

  get aborted(): boolean {
    return this.abortedBy !== null;
  }

  get paused(): boolean {
    return this.pausedNow;
  }

  get reason(): Error | null {
    return this.abortedBy;
  }

  abort(reason: Error): void {
    if (this.ended) return;
    this.abortedBy = reason;
    this.connection.fail(this, reason);
  }

  pause(): void {
    if (this.ended || this.pausedNow) return;
    this.pausedNow = true;
    this.connection.socket.pause();
  }

  resume(): void {
    if (!this.pausedNow) return;
    this.pausedNow = false;
    if (this.ended) return;
    this.progressed = true;
    this.connection.socket.resume();
  }
}

const kExchange = Symbol('meshgate.leanExchange');
type BodyStream = Readable & { [kExchange]?: Exchange };

/** Requests on reused connections waiting for the check phase of this turn of the event loop. */
let checking: Exchange[] = [];
let checkScheduled = false;

function deferWrite(exchange: Exchange): void {
  checking.push(exchange);
  if (!checkScheduled) {
    checkScheduled = true;
    setImmediate(writeChecked);
  }
}

function writeChecked(): void {
  checkScheduled = false;
  const batch = checking;
  checking = [];
  for (const exchange of batch) exchange.connection.client.sendChecked(exchange);
}

/** Every open connection of every lean client, for the sweep. */
const open = new Set<Connection>();
let sweepTimer: NodeJS.Timeout | null = null;

function sweep(): void {
  const now = performance.now();
  for (const c of open) c.check(now);
}

/** One TCP connection and its parser; a client opens a new one when its last has closed. */
class Connection {
  readonly client: LeanClient;
  readonly socket: Socket;
  private parser: ClientParser | null;
  exchange: Exchange | null = null;
  /** An exchange whose response completed during the current parse; its handler hears of it after. */
  private completed: Exchange | null = null;
  private parsing = false;
  /** The connection may carry another request once this one ends (the upstream's and our verdict). */
  private reusable = true;
  /** performance.now() since when the connection has been unused; 0: busy or never used. */
  idleSince = 0;
  /** How long it may stay unused: the client's keep-alive, or less when the upstream announces less. */
  keepAliveMs: number;
  /** The announcement last read, and its timeout less the margin in ms (null: none in it); an upstream repeats the same one. */
  private announced = '';
  private announcedMs: number | null = null;
  /** A 1xx response is being read: its end is not the exchange's. */
  private interim = false;
  /** Header lines handed over before the head was complete (a long head), or after the body (trailers). */
  pendingHeaders: string[] | null = null;
  private connectTimer: NodeJS.Timeout | null = null;
  /** The socket failed with this (ECONNREFUSED, ECONNRESET, …): the exchange fails with it on close. */
  private socketError: Error | null = null;
  private closed = false;

  constructor(client: LeanClient, host: string, port: number, connectTimeoutMs: number) {
    this.client = client;
    this.keepAliveMs = client.keepAliveMs;
    const socket = connect({
      host,
      port,
      noDelay: true,
      keepAlive: true,
      keepAliveInitialDelay: 60_000,
      onread: { buffer: READ_BUFFER, callback: onSocketRead },
    });
    this.socket = socket;
    const parser = new HTTPParser() as ClientParser;
    parser.initialize(HTTPParser.RESPONSE, PARSER_RESOURCE, 0, HTTPParser.kLenientNone);
    parser.connection = this;
    parser[HTTPParser.kOnHeaders] = onHeaders;
    parser[HTTPParser.kOnHeadersComplete] = onHeadersComplete;
    parser[HTTPParser.kOnBody] = onBody;
    parser[HTTPParser.kOnMessageComplete] = onMessageComplete;
    this.parser = parser;
    (socket as SocketWithConnection)[kConnection] = this;
    if (connectTimeoutMs > 0) {
      this.connectTimer = setTimeout(onConnectTimeout, connectTimeoutMs, this);
      socket.once('connect', onConnect);
    }
    socket.on('end', onSocketEnd);
    socket.on('error', onSocketError);
    socket.on('drain', onSocketDrain);
    socket.once('close', onSocketClose);
    open.add(this);
    if (sweepTimer === null) {
      sweepTimer = setInterval(sweep, LEAN_CLIENT_SWEEP_MS);
      sweepTimer.unref();
    }
  }

  /** It has carried a request before (a reused connection gets the idle-socket check). */
  get used(): boolean {
    return this.idleSince !== 0;
  }

  /** Usable for the next request: open, not condemned, and not idle past its keep-alive. */
  usable(now: number): boolean {
    if (this.closed || !this.reusable || this.socket.destroyed) return false;
    return this.idleSince === 0 || now - this.idleSince < this.keepAliveMs;
  }

  connected(): void {
    if (this.connectTimer !== null) {
      clearTimeout(this.connectTimer);
      this.connectTimer = null;
    }
  }

  connectTimedOut(): void {
    this.connectTimer = null;
    this.socketError = clientError('connect timeout', 'UND_ERR_CONNECT_TIMEOUT');
    this.socket.destroy();
  }

  /** Writes the request: head and a whole body in one write, or head then a streamed body. */
  send(exchange: Exchange, options: Dispatcher.DispatchOptions): void {
    exchange.options = null;
    this.exchange = exchange;
    this.idleSince = 0;
    const method = exchange.method;
    const body = options.body;
    let head = `${method} ${options.path} HTTP/1.1\r\n`;
    let declared = -1;
    let hasHost = false;
    const headers = options.headers;
    if (Array.isArray(headers)) {
      for (let i = 0; i < headers.length; i += 2) {
        const name = headers[i] as string;
        const value = headers[i + 1] as string | string[];
        // content-length is the body's framing, written below from what is actually sent.
        if (name.length === 14 && name.toLowerCase() === 'content-length') {
          declared = Number(value);
          continue;
        }
        // Framing and connection lines are this client's alone (the forwarder strips hop-by-hop headers
        // already; undici refuses these outright): never two of them in one head.
        if (
          (name.length === 17 && name.toLowerCase() === 'transfer-encoding') ||
          (name.length === 10 && name.toLowerCase() === 'connection')
        )
          continue;
        if (name.length === 4 && name.toLowerCase() === 'host') hasHost = true;
        if (typeof value === 'string') {
          if (LINE_BREAKING.test(value)) {
            this.refuse(exchange, name);
            return;
          }
          head += `${name}: ${value}\r\n`;
        } else
          for (const v of value) {
            if (LINE_BREAKING.test(v)) {
              this.refuse(exchange, name);
              return;
            }
            head += `${name}: ${v}\r\n`;
          }
      }
    } else if (headers != null) {
      for (const name in headers) {
        const value = (headers as Record<string, string | string[] | undefined>)[name];
        if (value === undefined) continue;
        const lower = name.toLowerCase();
        if (lower === 'content-length') {
          declared = Number(value);
          continue;
        }
        if (lower === 'host') hasHost = true;
        if (lower === 'transfer-encoding' || lower === 'connection') continue;
        for (const v of typeof value === 'string' ? [value] : value) {
          if (LINE_BREAKING.test(v)) {
            this.refuse(exchange, name);
            return;
          }
          head += `${name}: ${v}\r\n`;
        }
      }
    }
    if (!hasHost) head += `host: ${this.client.authority}\r\n`;
    // As undici: a HEAD response may come with a body from a misbehaving server, so its connection is not reused.
    if (method === 'HEAD') this.reusable = false;
    head += this.reusable ? 'connection: keep-alive\r\n' : 'connection: close\r\n';
    const socket = this.socket;
    exchange.sentAt = performance.now();
    if (body == null) {
      if (declared > 0) {
        this.failWrite(exchange, lengthMismatch());
        return;
      }
      head += expectsPayload(method) ? 'content-length: 0\r\n\r\n' : '\r\n';
      exchange.requestSent = true;
      socket.write(head, 'latin1');
      return;
    }
    if (Buffer.isBuffer(body) || body instanceof Uint8Array) {
      const length = body.byteLength;
      if (declared >= 0 && declared !== length) {
        this.failWrite(exchange, lengthMismatch());
        return;
      }
      exchange.requestSent = true;
      if (length === 0) {
        head += expectsPayload(method) ? 'content-length: 0\r\n\r\n' : '\r\n';
        socket.write(head, 'latin1');
        return;
      }
      head += `content-length: ${length}\r\n\r\n`;
      socket.cork();
      socket.write(head, 'latin1');
      socket.write(body);
      socket.uncork();
      exchange.handler.onBodySent?.(body as Buffer);
      return;
    }
    if (typeof (body as Readable).on !== 'function') {
      this.failWrite(exchange, clientError('unsupported body', 'UND_ERR_INVALID_ARG'));
      return;
    }
    const stream = body as BodyStream;
    exchange.declaredLength = declared;
    head += declared >= 0 ? `content-length: ${declared}\r\n\r\n` : 'transfer-encoding: chunked\r\n\r\n';
    socket.write(head, 'latin1');
    exchange.body = stream;
    stream[kExchange] = exchange;
    stream.on('data', onBodyData);
    stream.on('end', onBodyEnd);
    stream.on('error', onBodyError);
    stream.on('close', onBodyClose);
  }

  /** A header value that would break the head: the request is not sent (undici refuses it the same way). */
  private refuse(exchange: Exchange, name: string): void {
    this.failWrite(exchange, clientError(`invalid ${name} header`, 'UND_ERR_INVALID_ARG'));
  }

  /** Fails a request before its head was written; the connection, untouched, stays usable. */
  private failWrite(exchange: Exchange, error: Error): void {
    exchange.ended = true;
    this.exchange = null;
    this.idleSince = performance.now();
    exchange.handler.onResponseError?.(exchange, error);
  }

  bodyData(exchange: Exchange, chunk: Buffer): void {
    if (exchange.ended || exchange.requestSent) return;
    const length = chunk.length;
    if (length === 0) return;
    exchange.sentLength += length;
    const declared = exchange.declaredLength;
    if (declared >= 0 && exchange.sentLength > declared) {
      this.fail(exchange, lengthMismatch());
      return;
    }
    const socket = this.socket;
    let room: boolean;
    if (declared < 0) {
      socket.cork();
      socket.write(`${length.toString(16)}\r\n`, 'latin1');
      socket.write(chunk);
      room = socket.write('\r\n', 'latin1');
      socket.uncork();
    } else room = socket.write(chunk);
    exchange.handler.onBodySent?.(chunk);
    if (!room && !exchange.ended) {
      exchange.bodyPaused = true;
      exchange.body!.pause();
    }
  }

  bodyEnded(exchange: Exchange): void {
    if (exchange.ended || exchange.requestSent) return;
    if (exchange.declaredLength >= 0 && exchange.sentLength !== exchange.declaredLength) {
      this.fail(exchange, lengthMismatch());
      return;
    }
    if (exchange.declaredLength < 0) this.socket.write('0\r\n\r\n', 'latin1');
    exchange.requestSent = true;
    detachBody(exchange);
  }

  drained(): void {
    const exchange = this.exchange;
    if (exchange?.bodyPaused) {
      exchange.bodyPaused = false;
      exchange.body?.resume();
    }
  }

  read(chunk: Buffer): void {
    const parser = this.parser;
    if (parser === null) return;
    if (this.exchange === null) {
      // Bytes from an upstream with nothing asked of it: a response to no request. Not reusable.
      this.socket.destroy();
      return;
    }
    this.parsing = true;
    let result: ReturnType<NativeHttpParser['execute']>;
    try {
      result = parser.execute(chunk);
    } catch (e) {
      // A handler threw from a parser callback (undici fails the request the same way).
      result = e instanceof Error ? e : new Error(String(e));
    }
    this.parsing = false;
    this.afterParse(result instanceof Error ? result : null);
  }

  /** The upstream finished sending: a close-delimited body ends here; any other message was cut short. */
  ended(): void {
    const parser = this.parser;
    if (parser !== null && this.exchange?.headReceived) {
      this.parsing = true;
      const result = parser.finish();
      this.parsing = false;
      // A body cut short by the close is the upstream going away, as undici words it (not a malformed response).
      this.afterParse(result instanceof Error ? otherSideClosed() : null);
    }
    this.socket.destroy();
  }

  /** Hands a response completed during the parse to its handler, once the parser is off the stack. */
  private afterParse(error: Error | null): void {
    const done = this.completed;
    if (done !== null) {
      this.completed = null;
      this.finish(done);
    }
    if (error !== null) {
      const exchange = this.exchange;
      if (exchange !== null) this.fail(exchange, error);
      else this.socket.destroy();
    }
    if (this.closed) this.freeParser();
  }

  headersComplete(
    headers: string[],
    statusCode: number,
    statusMessage: string,
    upgrade: boolean,
    keepAlive: boolean,
  ): number {
    const exchange = this.exchange;
    if (exchange === null || exchange.ended) {
      // A second response in the same read, to nothing asked: the connection is not reused.
      if (this.completed !== null) this.reusable = false;
      return 1;
    }
    if (statusCode < 200) {
      if (statusCode === 101 || upgrade) {
        // Nothing here asks to switch protocols (upgrades go through websocket.ts): a broken upstream.
        this.fail(exchange, clientError('unexpected 101 Switching Protocols', 'HPE_UNEXPECTED_UPGRADE'));
        return 1;
      }
      // Interim responses (100 Continue, 103 Early Hints) are not forwarded, as with undici's client.
      this.interim = true;
      return 1;
    }
    if (!keepAlive) this.reusable = false;
    const out: ResponseHeaders = {};
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!.toLowerCase();
      const value = headers[i + 1]!;
      const seen = out[name];
      if (seen === undefined || !Object.hasOwn(out, name)) out[name] = value;
      else if (typeof seen === 'string') out[name] = [seen, value];
      else seen.push(value);
    }
    const announced = out['keep-alive'];
    if (typeof announced === 'string' && keepAlive) this.takeKeepAlive(announced);
    exchange.headReceived = true;
    exchange.quietSince = exchange.sentAt;
    exchange.progressed = true;
    exchange.handler.onResponseStart?.(exchange, statusCode, out, statusMessage);
    return exchange.method === 'HEAD' ? 1 : 0;
  }

  /** `Keep-Alive: timeout=N`: close before the upstream does, as undici does with the same margin. */
  private takeKeepAlive(value: string): void {
    if (value !== this.announced) {
      this.announced = value;
      const m = KEEP_ALIVE_TIMEOUT.exec(value);
      this.announcedMs =
        m === null ? null : Math.min(Number(m[1]) * 1000 - UPSTREAM_KEEPALIVE_THRESHOLD_MS, UPSTREAM_KEEPALIVE_MAX_MS);
    }
    const ms = this.announcedMs;
    if (ms === null) return;
    if (ms <= 0) this.reusable = false;
    else this.keepAliveMs = ms;
  }

  body(chunk: Buffer): void {
    const exchange = this.exchange;
    if (exchange === null || exchange.ended || !exchange.headReceived) return;
    exchange.progressed = true;
    exchange.handler.onResponseData?.(exchange, chunk);
  }

  messageComplete(): void {
    if (this.interim) {
      this.interim = false;
      return;
    }
    const exchange = this.exchange;
    if (exchange === null || exchange.ended || !exchange.headReceived) return;
    this.completed = exchange;
    this.exchange = null;
  }

  /** The response is complete: the connection is free (or closed), then the handler hears of it. */
  private finish(exchange: Exchange): void {
    if (exchange.ended) return;
    exchange.ended = true;
    if (this.exchange === exchange) this.exchange = null;
    if (this.client.closing) this.reusable = false;
    if (!exchange.requestSent) {
      // The upstream answered before the request body was all sent: the rest cannot follow on this connection.
      detachBody(exchange);
      this.reusable = false;
    }
    if (this.reusable) {
      this.idleSince = performance.now();
      // The upstream may already have sent its next bytes (a close); the pause ends when it is used again.
      if (exchange.paused) this.socket.resume();
    } else this.socket.destroy();
    exchange.handler.onResponseEnd?.(exchange, {});
  }

  /** The exchange fails: the connection cannot carry anything more. */
  fail(exchange: Exchange, error: Error): void {
    if (exchange.ended) return;
    exchange.ended = true;
    if (exchange.sentAt === 0) {
      // Stopped before anything was written (from onRequestStart): the connection is untouched.
      exchange.handler.onResponseError?.(exchange, error);
      return;
    }
    if (this.exchange === exchange) this.exchange = null;
    this.reusable = false;
    // The body is let go, not destroyed: it is often the client's request, whose connection the
    // forwarder may still answer on (a 408 for a body that stopped arriving, a 502).
    detachBody(exchange);
    this.socket.destroy();
    exchange.handler.onResponseError?.(exchange, error);
  }

  /** The sweep: idle past keep-alive closes; a response late past its headers or body timeout fails. */
  check(now: number): void {
    const exchange = this.exchange;
    if (exchange === null) {
      if (this.idleSince > 0 && now - this.idleSince >= this.keepAliveMs) this.socket.destroy();
      return;
    }
    if (!exchange.headReceived) {
      if (exchange.headersTimeoutMs > 0 && now - exchange.sentAt >= exchange.headersTimeoutMs)
        this.fail(exchange, clientError('Headers Timeout Error', 'UND_ERR_HEADERS_TIMEOUT'));
      return;
    }
    if (exchange.bodyTimeoutMs <= 0 || exchange.paused) return;
    if (exchange.progressed) {
      exchange.progressed = false;
      exchange.quietSince = now;
    } else if (now - exchange.quietSince >= exchange.bodyTimeoutMs)
      this.fail(exchange, clientError('Body Timeout Error', 'UND_ERR_BODY_TIMEOUT'));
  }

  socketFailed(error: Error): void {
    this.socketError ??= error;
  }

  /** The socket closed: an exchange still under way fails; the client opens a new connection next time. */
  onClose(): void {
    this.closed = true;
    this.connected();
    open.delete(this);
    if (open.size === 0 && sweepTimer !== null) {
      clearInterval(sweepTimer);
      sweepTimer = null;
    }
    this.client.lost(this);
    const exchange = this.exchange;
    if (exchange !== null && !exchange.ended) this.fail(exchange, this.socketError ?? otherSideClosed());
    if (!this.parsing) this.freeParser();
  }

  private freeParser(): void {
    const parser = this.parser;
    if (parser === null) return;
    this.parser = null;
    parser.free();
  }
}

function lengthMismatch(): Error {
  return clientError('Request body length does not match content-length header', 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH');
}

function detachBody(exchange: Exchange): void {
  const body = exchange.body as BodyStream | null;
  if (body === null) return;
  exchange.body = null;
  body[kExchange] = undefined;
  body.off('data', onBodyData);
  body.off('end', onBodyEnd);
  body.off('error', onBodyError);
  body.off('close', onBodyClose);
  // A body left unread (the upstream answered early) flows on and is dropped, so its source is not held up.
  if (exchange.bodyPaused) body.resume();
}

const kConnection = Symbol('meshgate.leanClientConnection');
type SocketWithConnection = Socket & { [kConnection]?: Connection };

function onConnect(this: SocketWithConnection): void {
  this[kConnection]?.connected();
}

function onConnectTimeout(connection: Connection): void {
  connection.connectTimedOut();
}

/** Returns true: pausing is the exchange's (`socket.pause()`), never implied by a read. */
function onSocketRead(this: SocketWithConnection, length: number, buffer: Uint8Array): boolean {
  this[kConnection]?.read((buffer as Buffer).subarray(0, length));
  return true;
}

function onSocketEnd(this: SocketWithConnection): void {
  this[kConnection]?.ended();
}

function onSocketError(this: SocketWithConnection, error: Error): void {
  this[kConnection]?.socketFailed(error);
}

function onSocketDrain(this: SocketWithConnection): void {
  this[kConnection]?.drained();
}

function onSocketClose(this: SocketWithConnection): void {
  this[kConnection]?.onClose();
}

function onHeaders(this: ClientParser, headers: string[]): void {
  const connection = this.connection;
  if (connection.pendingHeaders === null) connection.pendingHeaders = headers.slice();
  else for (const h of headers) connection.pendingHeaders.push(h);
}

function onHeadersComplete(
  this: ClientParser,
  _versionMajor: number,
  _versionMinor: number,
  headers: string[] | undefined,
  _method: number,
  _url: string | undefined,
  statusCode: number,
  statusMessage: string,
  upgrade: boolean,
  keepAlive: boolean,
): number {
  const connection = this.connection;
  const pending = connection.pendingHeaders;
  let all = headers ?? [];
  if (pending !== null) {
    all = headers === undefined ? pending : pending.concat(headers);
    connection.pendingHeaders = null;
  }
  return connection.headersComplete(all, statusCode, statusMessage, upgrade, keepAlive);
}

function onBody(this: ClientParser, chunk: Buffer): void {
  this.connection.body(chunk);
}

function onMessageComplete(this: ClientParser): void {
  // Trailers arrive as header lines after the body; HTTP/1.1 responses are forwarded without them.
  this.connection.pendingHeaders = null;
  this.connection.messageComplete();
}

function onBodyData(this: BodyStream, chunk: Buffer): void {
  const exchange = this[kExchange];
  if (exchange !== undefined) exchange.connection.bodyData(exchange, chunk);
}

function onBodyEnd(this: BodyStream): void {
  const exchange = this[kExchange];
  if (exchange !== undefined) exchange.connection.bodyEnded(exchange);
}

function onBodyError(this: BodyStream, error: Error): void {
  const exchange = this[kExchange];
  if (exchange !== undefined) exchange.connection.fail(exchange, error);
}

function onBodyClose(this: BodyStream): void {
  const exchange = this[kExchange];
  if (exchange !== undefined && !exchange.requestSent)
    exchange.connection.fail(exchange, clientError('Request aborted', 'UND_ERR_ABORTED'));
}

/**
 * One connection slot of a pool, as an undici `Client` with `pipelining: 1` is: it carries one request
 * at a time, and opens a new connection when the last one closed (idle timeout, `Connection: close`,
 * an error). The pool counts slots, as it counts undici clients.
 */
export class LeanClient {
  readonly authority: string;
  readonly keepAliveMs: number;
  private readonly host: string;
  private readonly port: number;
  private readonly connectTimeoutMs: number;
  private connection: Connection | null = null;
  /** close() or destroy() was called: connections close once their request has ended. */
  closing = false;
  private onClosed: (() => void) | null = null;

  constructor(origin: string, options: LeanClientOptions) {
    const url = new URL(origin);
    this.authority = url.host;
    // `[::1]` in a URL is `::1` to connect().
    this.host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    this.port = url.port === '' ? 80 : Number(url.port);
    this.keepAliveMs = options.keepAliveMs;
    this.connectTimeoutMs = options.connectTimeoutMs;
  }

  dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const connection = this.takeConnection();
    const exchange = new Exchange(connection, handler, options);
    handler.onRequestStart?.(exchange, null);
    // Aborted from onRequestStart (the try was stopped while it waited): nothing was written.
    if (exchange.ended) return true;
    if (connection.used) deferWrite(exchange);
    else connection.send(exchange, options);
    return true;
  }

  /**
   * The idle-socket check's second half: a reused connection that closed, or read stray bytes, while
   * its request waited for the check phase is replaced by a new one before anything is written.
   */
  sendChecked(exchange: Exchange): void {
    if (exchange.ended) return;
    let connection = exchange.connection;
    if (this.connection !== connection || !connection.usable(performance.now())) {
      if (this.connection === connection) connection.socket.destroy();
      connection = this.takeConnection();
      exchange.connection = connection;
    }
    connection.send(exchange, exchange.options!);
  }

  /**
   * The open connection if it may carry a request, else a new one. A connection's own events keep it
   * honest while idle: 'end', 'close' or 'error' drop it from this slot (`lost`), any byte read while
   * idle (a response to nothing asked) destroys it, and the keep-alive deadline is checked here against
   * the clock, not only by the sweep. What events alone miss is one that is already waiting in the
   * same turn of the event loop as the request: for that, a request on a reused connection is written
   * in the check phase of the same turn (`deferWrite`), by which time every I/O event of the turn has
   * been handled. This is undici 8's idle-socket check (GHSA-35p6-xmwp-9g52), which defers each such
   * request with a `setImmediate` of its own; here one `setImmediate` per turn writes them all.
   */
  private takeConnection(): Connection {
    const current = this.connection;
    if (current !== null) {
      if (current.usable(current.idleSince === 0 ? 0 : performance.now())) return current;
      current.socket.destroy();
    }
    const connection = new Connection(this, this.host, this.port, this.connectTimeoutMs);
    this.connection = connection;
    return connection;
  }

  /** A connection closed: the next request opens another. */
  lost(connection: Connection): void {
    if (this.connection === connection) this.connection = null;
    if (this.closing && this.connection === null) this.onClosed?.();
  }

  /** Closes once the request under way (if any) has ended; the pool sends nothing more on it. */
  close(): Promise<void> {
    this.closing = true;
    const connection = this.connection;
    if (connection === null) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.onClosed = resolve;
      if (connection.exchange === null) connection.socket.destroy();
    });
  }

  /** Closes at once; a request under way fails. */
  destroy(): Promise<void> {
    this.closing = true;
    const connection = this.connection;
    if (connection === null) return Promise.resolve();
    return new Promise<void>((resolve) => {
      connection.socket.once('close', () => resolve());
      const exchange = connection.exchange;
      if (exchange !== null) connection.fail(exchange, clientError('The client is destroyed', 'UND_ERR_DESTROYED'));
      else connection.socket.destroy();
    });
  }
}
