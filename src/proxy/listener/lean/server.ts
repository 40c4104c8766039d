/**
 * The lean HTTP/1.1 engine (`listeners[].engine: lean`): each connection's reads go from the socket's
 * native stream straight into node:http's llhttp binding (parser.ts), as node:http's server reads
 * them, and its requests are handed to the same request path as node:http's (stream.ts) through
 * objects with the members it uses (request.ts, response.ts). What it leaves out is node:http's
 * per-request machinery: IncomingMessage's and ServerResponse's stream and event plumbing, header
 * objects, per-request socket timers.
 *
 * What it keeps, as node:http does it:
 *   - the parser's refusals (strict llhttp: no lenient flags), answered by client-error.ts;
 *   - the listener's limits: maxHeaderBytes and node:http's 1000 header lines (the parser's),
 *     headersTimeout (from a request's first byte to the end of its head), requestTimeout (to the
 *     end of its body), keepAliveTimeout (idle between requests, plus node:http's margin); one sweep
 *     per listener checks them instead of a timer per socket;
 *   - keep-alive per llhttp's verdict (HTTP/1.1 unless `Connection: close`, HTTP/1.0 only when asked);
 *   - `Expect: 100-continue` answered with 100 at once, any other expectation with 417;
 *   - CONNECT and an HTTP/2 preface close the connection; `Upgrade: websocket` leaves for websocket.ts.
 * Pipelined requests are served one after another, in order: the next starts when the previous
 * response has ended, so responses never interleave and none is held in memory.
 */
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import {
  KEEPALIVE_TIMEOUT_MARGIN_MS,
  LEAN_PIPELINED_REQUESTS_HELD_MAX,
  MAX_REQUEST_HEADER_LINES,
} from '../../../core/defaults.ts';
import { type ListenerRuntime, newestStreamOnSocket, type StreamHost } from '../../context.ts';
import { handleRequest } from '../../stream.ts';
import { startUpgrade } from '../../websocket.ts';
import { failUnderway, refuseOnSocket } from '../client-error.ts';
import { HTTPParser, METHODS, type NativeHttpParser, type ParseError } from './parser.ts';
import { type BodySource, LeanRequest } from './request.ts';
import { LeanResponse, type ResponseOwner } from './response.ts';

/** What the engine reads of its listener as requests arrive (swapped with the snapshot; drained). */
export interface LeanListener {
  readonly runtime: ListenerRuntime;
  readonly draining: boolean;
}

/** The native stream under a TCP socket (`socket._handle`), which node:http hands to its parser as well. */
interface StreamHandle {
  readonly isStreamBase?: boolean;
  /** Some parser reads it already (node:http's own marker). */
  _consumed?: boolean;
  /** net.Socket's marker of a started read, kept in step when reading is stopped and started here. */
  reading?: boolean;
  readStart(): number;
  readStop(): number;
}
type HandledSocket = Socket & { _handle?: StreamHandle | null };

interface LeanParser extends NativeHttpParser {
  connection: LeanConnection;
  maxHeaderPairs: number;
  /** Header lines handed over before the head was complete (long heads, or heads split across reads). */
  pendingHeaders: string[];
  pendingUrl: string;
}

const kConnection = Symbol('meshgate.leanConnection');
type LeanSocket = Socket & { [kConnection]?: LeanConnection };

/** llhttp's async resource: the parser wants an object; no per-connection async context is kept. */
const PARSER_RESOURCE = Object.freeze({});
const CONTINUE_EXPECTED = /(?:^|\W)100-continue(?:$|\W)/i;
const CONTINUE = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');

const PAUSED_FOR_BODY = 1;
const PAUSED_FOR_QUEUE = 2;

export class LeanServer {
  readonly host: StreamHost;
  readonly listener: LeanListener;
  private readonly connections = new Set<LeanConnection>();

  constructor(host: StreamHost, listener: LeanListener) {
    this.host = host;
    this.listener = listener;
  }

  accept(socket: Socket): void {
    const connection = new LeanConnection(this, socket, this.listener.runtime.config.limits.maxHeaderBytes);
    this.connections.add(connection);
  }

  forget(connection: LeanConnection): void {
    this.connections.delete(connection);
  }

  /** The head, request and keep-alive deadlines of every connection (called by the listener's sweep). */
  sweep(now: number): void {
    const { headersTimeoutMs, requestTimeoutMs, keepAliveTimeoutMs } = this.listener.runtime.config.limits;
    for (const c of this.connections) {
      if (c.headStartedAt > 0 && headersTimeoutMs > 0 && now - c.headStartedAt >= headersTimeoutMs) c.timedOut();
      else if (c.requestStartedAt > 0 && requestTimeoutMs > 0 && now - c.requestStartedAt >= requestTimeoutMs)
        c.timedOut();
      else if (
        c.idleSince > 0 &&
        keepAliveTimeoutMs > 0 &&
        now - c.idleSince >= keepAliveTimeoutMs + KEEPALIVE_TIMEOUT_MARGIN_MS
      )
        c.socket.destroy();
    }
  }
}

class LeanConnection implements BodySource, ResponseOwner {
  readonly socket: LeanSocket;
  private readonly server: LeanServer;
  private parser: LeanParser | null;
  /** The request whose head or body the parser is reading (null between messages). */
  private incoming: LeanRequest | null = null;
  /** The response being written; null when no request is being served. */
  private responding: LeanResponse | null = null;
  /** Pipelined requests parsed while another was served, oldest first. */
  private waiting: LeanRequest[] = [];
  /** A WebSocket upgrade request whose head is complete: the connection leaves HTTP after this read. */
  private upgrading: LeanRequest | null = null;
  /** The head named CONNECT or was an HTTP/2 preface: the connection closes after this read. */
  private refused = false;
  private paused = 0;
  /**
   * The socket's native stream, which the parser reads directly: reads go from libuv into llhttp
   * without a Buffer, a Readable push or a 'data' event each, as node:http's server reads.
   */
  private readonly handle: StreamHandle;
  /** A request that named another Upgrade was served plainly: llhttp stopped after it, mid-read. */
  private parseRestOfRead = false;
  /** performance.now() at the first byte of a head still incomplete; 0: none. */
  headStartedAt = 0;
  /** performance.now() at the first byte of a request still incomplete (body included); 0: none. */
  requestStartedAt = 0;
  /** performance.now() since when the connection has had nothing to do; 0: busy (or not yet used). */
  idleSince = 0;

  constructor(server: LeanServer, socket: Socket, maxHeaderBytes: number) {
    this.server = server;
    this.socket = socket;
    const parser = new HTTPParser() as LeanParser;
    // Read by the native parser: past this many names and values, HPE_HEADER_OVERFLOW (431).
    parser.maxHeaderPairs = MAX_REQUEST_HEADER_LINES * 2;
    parser.initialize(HTTPParser.REQUEST, PARSER_RESOURCE, maxHeaderBytes, HTTPParser.kLenientNone);
    parser.connection = this;
    parser.pendingHeaders = [];
    parser.pendingUrl = '';
    // With no hook at the start of a read, llhttp's message-begin starts every message's clocks.
    parser[HTTPParser.kOnMessageBegin] = onMessageBegin;
    parser[HTTPParser.kOnHeaders] = onHeaders;
    parser[HTTPParser.kOnHeadersComplete] = onHeadersComplete;
    parser[HTTPParser.kOnBody] = onBody;
    parser[HTTPParser.kOnMessageComplete] = onMessageComplete;
    parser[HTTPParser.kOnExecute] = onExecute;
    this.parser = parser;
    // The listener hands over fresh TCP sockets only, whose native stream nothing reads yet.
    const handle = (socket as HandledSocket)._handle;
    if (handle?.isStreamBase !== true || handle._consumed === true)
      throw new Error('lean engine: a connection whose native stream the parser cannot read');
    handle._consumed = true;
    parser.consume(handle);
    this.handle = handle;
    this.socket[kConnection] = this;
    socket.on('end', onSocketEnd);
    socket.on('error', onSocketError);
    socket.once('close', onSocketClose);
    // Starts reading (into the parser); flowing, the socket still emits 'end' and read errors.
    socket.resume();
  }

  get keepAliveTimeoutMs(): number {
    return this.server.listener.runtime.config.limits.keepAliveTimeoutMs;
  }

  /** A read went through the parser: `parsed` bytes of it, or the error that stopped it. */
  executed(parsed: number | ParseError): void {
    const parser = this.parser;
    if (parser === null) return;
    let rest = this.afterExecute(parser, parsed, null);
    while (rest !== null) rest = this.afterExecute(parser, parser.execute(rest), rest);
  }

  /**
   * After llhttp went through `data` (null: the read it consumed, copied only if needed): the failure,
   * the refusal or the upgrade it found, or what is left of it to parse (null: nothing).
   */
  private afterExecute(parser: LeanParser, parsed: number | ParseError, data: Buffer | null): Buffer | null {
    if (typeof parsed !== 'number') {
      this.fail(parsed.code ?? 'HPE_INTERNAL');
      return null;
    }
    if (this.refused) {
      this.socket.destroy();
      return null;
    }
    if (this.upgrading !== null) {
      this.upgrade(this.upgrading, (data ?? parser.getCurrentBuffer()).subarray(parsed));
      return null;
    }
    // Another Upgrade (h2c…) was served as a plain request; llhttp stopped after it: go on as HTTP/1.1.
    if (!this.parseRestOfRead) return null;
    this.parseRestOfRead = false;
    if (this.parser === null) return null;
    const read = data ?? parser.getCurrentBuffer();
    return parsed > 0 && parsed < read.length ? read.subarray(parsed) : null;
  }

  messageBegin(): void {
    const now = performance.now();
    this.headStartedAt = now;
    this.requestStartedAt = now;
    this.idleSince = 0;
  }

  headComplete(
    versionMajor: number,
    versionMinor: number,
    headers: string[],
    method: number,
    url: string,
    upgrade: boolean,
    keepAlive: boolean,
  ): number {
    this.headStartedAt = 0;
    const name = METHODS[method] ?? '';
    // As node:http without a 'connect' listener: CONNECT is not served; nor is an HTTP/2 preface.
    if (name === 'CONNECT' || name === 'PRI') {
      this.refused = true;
      return 1;
    }
    const req = new LeanRequest(this, this.socket, name, url, headers, versionMajor, versionMinor, keepAlive);
    this.incoming = req;
    if (upgrade) {
      const protocol = req.firstHeader('upgrade');
      if (protocol !== undefined && protocol.toLowerCase() === 'websocket') {
        req.upgrade = true;
        this.upgrading = req;
        return 0;
      }
      this.parseRestOfRead = true;
    }
    if (this.responding === null && this.waiting.length === 0) this.serve(req);
    else {
      this.waiting.push(req);
      if (this.waiting.length >= LEAN_PIPELINED_REQUESTS_HELD_MAX) this.pauseFor(PAUSED_FOR_QUEUE);
    }
    return 0;
  }

  body(chunk: Buffer): void {
    const req = this.incoming;
    if (req === null || req.dumped) return;
    if (!req.push(chunk)) this.pauseFor(PAUSED_FOR_BODY);
  }

  messageComplete(): void {
    this.requestStartedAt = 0;
    const req = this.incoming;
    if (req === null) return;
    this.incoming = null;
    req.complete = true;
    if (!req.dumped) req.push(null);
    // A full body buffer paused reading; an ended stream asks for no more, so the next request would wait.
    this.resumeFor(PAUSED_FOR_BODY);
    if (this.responding === null && this.waiting.length === 0) this.idleSince = performance.now();
  }

  private serve(req: LeanRequest): void {
    const server = this.server;
    const res = new LeanResponse(this, req, req.keepAlive && !server.listener.draining);
    this.responding = res;
    if (req.httpVersionMajor === 1 && req.httpVersionMinor === 1) {
      const expect = req.firstHeader('expect');
      if (expect !== undefined) {
        if (!CONTINUE_EXPECTED.test(expect)) {
          res.writeHead(417);
          res.end();
          return;
        }
        this.socket.write(CONTINUE);
      }
    }
    handleRequest(server.host, server.listener.runtime, req, res);
  }

  /** The response's last byte is written: close, serve the next pipelined request, or wait idle. */
  responseEnded(res: LeanResponse): void {
    if (this.responding !== res) return;
    this.responding = null;
    const req = res.req;
    if (res.last) {
      this.socket.destroySoon();
      return;
    }
    if (!req.complete) {
      // Answered before its body was read (a refusal, an upstream's early answer): the rest is dropped.
      req.dumped = true;
      this.resumeFor(PAUSED_FOR_BODY);
    }
    if (this.waiting.length > 0) {
      // After this request's log phase (the caller's next step), so phases never interleave.
      process.nextTick(serveNext, this);
      return;
    }
    if (this.incoming === null) this.idleSince = performance.now();
  }

  serveNext(): void {
    const next = this.waiting.shift();
    if (next === undefined || this.socket.destroyed) return;
    if (this.waiting.length < LEAN_PIPELINED_REQUESTS_HELD_MAX) this.resumeFor(PAUSED_FOR_QUEUE);
    this.serve(next);
  }

  resumeBody(): void {
    this.resumeFor(PAUSED_FOR_BODY);
  }

  private pauseFor(reason: number): void {
    // On the handle: reads bypass the socket's Readable side, whose pause() would not stop them (as in node:http).
    if (this.paused === 0 && this.handle.reading === true) {
      this.handle.reading = false;
      this.handle.readStop();
    }
    this.paused |= reason;
  }

  private resumeFor(reason: number): void {
    if ((this.paused & reason) === 0) return;
    this.paused &= ~reason;
    if (this.paused !== 0 || this.parser === null || this.handle.reading === true || this.socket.destroyed) return;
    this.handle.reading = true;
    this.handle.readStart();
  }

  /** headersTimeout or requestTimeout passed: answered as node:http's request timeout is. */
  timedOut(): void {
    this.fail('ERR_HTTP_REQUEST_TIMEOUT');
  }

  /** A framing error or timeout: the request under way fails, or the bare connection gets the refusal. */
  private fail(code: string): void {
    this.stopParsing();
    const socket = this.socket;
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    // A request under way (the one that failed, or an earlier one still answering: node:http's engine
    // picks the newest it started, which here is the one being served) gets the reply or an abort.
    if (this.responding !== null) failUnderway(code, socket, newestStreamOnSocket(socket));
    else refuseOnSocket(code, socket);
  }

  /** The client closed its side: node:http's way (no half-open connections), after the parser's last word. */
  ended(): void {
    const parser = this.parser;
    if (parser === null) return;
    const error = parser.finish();
    if (error !== undefined) {
      this.fail(error.code ?? 'HPE_INTERNAL');
      return;
    }
    this.abortIncoming();
    this.stopParsing();
    if (this.socket.writable) this.socket.end();
  }

  closed(): void {
    this.abortIncoming();
    this.stopParsing();
  }

  /** Requests whose body will never complete: their readers see an aborted stream. */
  private abortIncoming(): void {
    const req = this.incoming;
    this.incoming = null;
    if (req !== null && !req.complete) req.destroy(abortedError());
    for (const waiting of this.waiting) if (!waiting.complete) waiting.destroy(abortedError());
    this.waiting.length = 0;
  }

  private stopParsing(): void {
    const parser = this.parser;
    if (parser === null) return;
    this.parser = null;
    this.headStartedAt = 0;
    this.requestStartedAt = 0;
    this.idleSince = 0;
    this.server.forget(this);
    // Reads go back to the socket's Readable side (an upgrade's tunnel); a closed socket has no handle.
    if ((this.socket as HandledSocket)._handle === this.handle) {
      parser.unconsume();
      this.handle._consumed = false;
    }
    parser.free();
  }

  /**
   * A WebSocket upgrade: the connection leaves HTTP. Bytes after the head belong to the tunnel; the
   * socket is held paused until websocket.ts pipes it.
   */
  private upgrade(req: LeanRequest, head: Buffer): void {
    this.upgrading = null;
    this.incoming = null;
    this.stopParsing();
    const socket = this.socket;
    socket.off('end', onSocketEnd);
    socket.off('error', onSocketError);
    socket.off('close', onSocketClose);
    socket.pause();
    const res = new LeanResponse(UPGRADE_OWNER, req, false);
    startUpgrade(this.server.host, this.server.listener.runtime, req, res, socket, head);
  }
}

/** An upgrade request's response: a refusal closes the connection once written (as with node:http). */
const UPGRADE_OWNER: ResponseOwner = {
  keepAliveTimeoutMs: 0,
  responseEnded(res: LeanResponse) {
    res.socket?.destroySoon();
  },
};

function abortedError(): Error {
  const e = new Error('aborted');
  (e as NodeJS.ErrnoException).code = 'ECONNRESET';
  return e;
}

function serveNext(connection: LeanConnection): void {
  connection.serveNext();
}

function onSocketEnd(this: LeanSocket): void {
  this[kConnection]?.ended();
}

function onSocketError(this: LeanSocket): void {
  this.destroy();
}

function onSocketClose(this: LeanSocket): void {
  this[kConnection]?.closed();
}

function onExecute(this: LeanParser, parsed: number | ParseError): void {
  this.connection.executed(parsed);
}

function onMessageBegin(this: LeanParser): void {
  this.connection.messageBegin();
}

function onHeaders(this: LeanParser, headers: string[], url: string): void {
  for (const h of headers) this.pendingHeaders.push(h);
  this.pendingUrl += url;
}

function onHeadersComplete(
  this: LeanParser,
  versionMajor: number,
  versionMinor: number,
  headers: string[] | undefined,
  method: number,
  url: string | undefined,
  _statusCode: number,
  _statusMessage: string,
  upgrade: boolean,
  keepAlive: boolean,
): number {
  if (headers === undefined) {
    headers = this.pendingHeaders;
    this.pendingHeaders = [];
  }
  if (url === undefined) {
    url = this.pendingUrl;
    this.pendingUrl = '';
  }
  return this.connection.headComplete(versionMajor, versionMinor, headers, method, url, upgrade, keepAlive);
}

function onBody(this: LeanParser, chunk: Buffer): void {
  this.connection.body(chunk);
}

function onMessageComplete(this: LeanParser): void {
  // Trailer fields arrive as headers after the body; they are not forwarded (as with node:http's engine).
  if (this.pendingHeaders.length > 0) this.pendingHeaders = [];
  this.pendingUrl = '';
  this.connection.messageComplete();
}
