/**
 * A response as the lean engine writes it: the members of node:http's ServerResponse the data plane
 * uses (writeHead with a flat header list, write, end, headersSent, statusCode, shouldKeepAlive,
 * sendDate, destroyed, destroy, 'drain'), with node:http's framing rules (RFC 9112 §6): the head
 * names the length the caller gave, or is chunked; HEAD, 1xx, 204 and 304 carry no body; keep-alive
 * and Date as node:http sends them. The head is one string turned into one buffer, sized once, that
 * also carries the first body bytes when they are small: a short response leaves in one write.
 */
import type { Socket } from 'node:net';
import { LEAN_HEAD_COALESCE_MAX_BYTES } from '../../../core/defaults.ts';
import { http } from '../../../core/node-http.ts';
import type { LeanRequest } from './request.ts';

const { STATUS_CODES } = http;

/** What a response tells its connection. */
export interface ResponseOwner {
  /** The response's last byte is written (or it was cut): the connection closes or takes the next request. */
  responseEnded(res: LeanResponse): void;
  /** The listener's keep-alive timeout, announced in `Keep-Alive: timeout=` (0: not announced). */
  readonly keepAliveTimeoutMs: number;
}

/** node:http's checks on what goes into a head (a CR or LF in a value would split the response). */
const TOKEN = /^[\^_`a-zA-Z\-0-9!#$%&'*+.|~]+$/;
const INVALID_VALUE_CHAR = /[^\t\x20-\x7e\x80-\xff]/;
const CONNECTION_CLOSE = /(?:^|\W)close(?:$|\W)/i;
const TE_CHUNKED = /(?:^|\W)chunked(?:$|\W)/i;
const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');
const CRLF = Buffer.from('\r\n', 'latin1');

const statusLines: string[] = [];
function statusLine(status: number): string {
  let line = statusLines[status];
  if (line === undefined) {
    line = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'unknown'}\r\n`;
    if (status >= 100 && status < 1000) statusLines[status] = line;
  }
  return line;
}

let dateText = '';
let dateExpiresAt = 0;
/** The Date header's value, rebuilt once a second (node:http caches it the same way). */
function httpDate(): string {
  const now = Date.now();
  if (now >= dateExpiresAt) {
    dateText = new Date(now).toUTCString();
    dateExpiresAt = now - (now % 1000) + 1000;
  }
  return dateText;
}

const SEEN_DATE = 1;
const SEEN_CONNECTION = 2;
const SEEN_CONTENT_LENGTH = 4;
const SEEN_TRANSFER_ENCODING = 8;

function invalidHeader(name: string, badName: boolean): never {
  const e = badName
    ? new TypeError(`Header name must be a valid HTTP token ["${name}"]`)
    : new TypeError(`Invalid character in header content ["${name}"]`);
  (e as NodeJS.ErrnoException).code = badName ? 'ERR_INVALID_HTTP_TOKEN' : 'ERR_INVALID_CHAR';
  throw e;
}

type HeaderList = readonly (string | readonly string[])[] | Record<string, string | number | readonly string[]>;

export class LeanResponse {
  statusCode = 200;
  /** The head is decided (written, or waiting for the first body bytes). */
  headersSent = false;
  /** Keep the connection open after this response (the request asked, and nothing since said otherwise). */
  shouldKeepAlive: boolean;
  sendDate = true;
  writableEnded = false;
  /** The client connection; null once handed over (a WebSocket upgrade). */
  socket: Socket | null;
  /** The connection closes once this response is written. */
  last = false;
  readonly req: LeanRequest;
  private readonly owner: ResponseOwner;
  private hasBody: boolean;
  private chunked = false;
  /** The head, until the first body bytes (or the end) go with it. */
  private head: string | null = null;
  private onFinish: (() => void) | null = null;
  /** Framing headers the caller's head names (SEEN_* bits). */
  private seen = 0;

  constructor(owner: ResponseOwner, req: LeanRequest, keepAlive: boolean) {
    this.owner = owner;
    this.req = req;
    this.socket = req.socket;
    this.shouldKeepAlive = keepAlive;
    this.hasBody = req.method !== 'HEAD';
  }

  get destroyed(): boolean {
    const socket = this.socket;
    return socket?.destroyed === true;
  }

  writeHead(status: number, headers?: HeaderList): this {
    this.storeHead(status, headers, -1);
    return this;
  }

  /** `implicitLength` ≥ 0: the whole body is known (end() before any head), so it is framed by length. */
  private storeHead(status: number, headers: HeaderList | undefined, implicitLength: number): void {
    if (this.headersSent) {
      const e = new Error('Cannot write headers after they are sent to the client');
      (e as NodeJS.ErrnoException).code = 'ERR_HTTP_HEADERS_SENT';
      throw e;
    }
    this.statusCode = status;
    if (status === 204 || status === 304 || (status >= 100 && status <= 199)) this.hasBody = false;
    let head = statusLine(status);
    this.seen = 0;
    if (headers !== undefined) {
      if (Array.isArray(headers)) {
        for (let i = 0; i < headers.length; i += 2) {
          const name = headers[i] as string;
          const value = headers[i + 1] as string | readonly string[] | undefined;
          if (value === undefined) continue;
          if (typeof value === 'string') head += this.line(name, value);
          else for (const v of value) head += this.line(name, v);
        }
      } else {
        for (const [name, value] of Object.entries(headers as Record<string, string | number | readonly string[]>)) {
          if (value === undefined) continue;
          if (typeof value === 'object') for (const v of value) head += this.line(name, v);
          else head += this.line(name, String(value));
        }
      }
    }
    const seen = this.seen;
    const contentLength = (seen & SEEN_CONTENT_LENGTH) !== 0;
    const transferEncoding = (seen & SEEN_TRANSFER_ENCODING) !== 0;
    const connection = (seen & SEEN_CONNECTION) !== 0;
    const date = (seen & SEEN_DATE) !== 0;
    if (this.sendDate && !date) head += `Date: ${httpDate()}\r\n`;
    // HTTP/1.0 has no chunked coding: a body of unknown length ends with the connection (RFC 9112 §6.3).
    const chunkedAllowed = this.req.httpVersionMinor >= 1 || this.req.httpVersionMajor > 1;
    if (!connection) {
      if (this.shouldKeepAlive && (contentLength || chunkedAllowed)) {
        head += 'Connection: keep-alive\r\n';
        const keepAliveMs = this.owner.keepAliveTimeoutMs;
        if (keepAliveMs > 0) head += `Keep-Alive: timeout=${Math.floor(keepAliveMs / 1000)}\r\n`;
      } else {
        this.last = true;
        head += 'Connection: close\r\n';
      }
    }
    if (!contentLength && !transferEncoding && this.hasBody) {
      if (!chunkedAllowed) this.last = true;
      else if (implicitLength >= 0) head += `Content-Length: ${implicitLength}\r\n`;
      else {
        head += 'Transfer-Encoding: chunked\r\n';
        this.chunked = true;
      }
    }
    this.head = `${head}\r\n`;
    this.headersSent = true;
  }

  /** One header line, checked as node:http checks it; notes the headers that decide framing. */
  private line(name: string, value: string): string {
    if (!TOKEN.test(name)) invalidHeader(name, true);
    if (INVALID_VALUE_CHAR.test(value)) invalidHeader(name, false);
    switch (name.length) {
      case 4:
        if (name.toLowerCase() === 'date') this.seen |= SEEN_DATE;
        break;
      case 10:
        if (name.toLowerCase() === 'connection') {
          this.seen |= SEEN_CONNECTION;
          if (CONNECTION_CLOSE.test(value)) this.last = true;
          else this.shouldKeepAlive = true;
        }
        break;
      case 14:
        if (name.toLowerCase() === 'content-length') this.seen |= SEEN_CONTENT_LENGTH;
        break;
      case 17:
        if (name.toLowerCase() === 'transfer-encoding') {
          this.seen |= SEEN_TRANSFER_ENCODING;
          if (TE_CHUNKED.test(value)) this.chunked = true;
        }
        break;
    }
    return `${name}: ${value}\r\n`;
  }

  write(chunk: Buffer | string): boolean {
    if (this.writableEnded) return false;
    if (!this.headersSent) this.storeHead(this.statusCode, undefined, -1);
    const socket = this.socket;
    if (socket === null || socket.destroyed) return false;
    if (!this.hasBody) {
      if (this.head !== null) this.flush(socket, EMPTY, false);
      return true;
    }
    return this.flush(socket, chunk, false);
  }

  end(chunk?: Buffer | string): this {
    if (this.writableEnded) return this;
    if (!this.headersSent)
      this.storeHead(
        this.statusCode,
        undefined,
        chunk === undefined ? 0 : typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length,
      );
    this.writableEnded = true;
    const socket = this.socket;
    if (socket !== null && !socket.destroyed)
      this.flush(socket, this.hasBody && chunk !== undefined ? chunk : EMPTY, this.hasBody);
    this.owner.responseEnded(this);
    const onFinish = this.onFinish;
    if (onFinish !== null) {
      this.onFinish = null;
      onFinish();
    }
    return this;
  }

  /**
   * Writes the pending head (if any), the chunk (framed when chunked) and, at the end of a chunked
   * body, the last chunk: as one buffer when the chunk is small, else corked into one system call.
   */
  private flush(socket: Socket, chunk: Buffer | string, final: boolean): boolean {
    const head = this.head;
    this.head = null;
    const length = typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    const chunked = this.chunked;
    if (!chunked && head === null) return length === 0 ? true : socket.write(chunk);
    const sizeLine = chunked && length > 0 ? `${length.toString(16)}\r\n` : '';
    const tail = (chunked && length > 0 ? 2 : 0) + (chunked && final ? 5 : 0);
    const headLength = head === null ? 0 : head.length;
    if (length <= LEAN_HEAD_COALESCE_MAX_BYTES) {
      const buffer = Buffer.allocUnsafe(headLength + sizeLine.length + length + tail);
      let at = head === null ? 0 : buffer.write(head, 0, 'latin1');
      if (sizeLine !== '') at += buffer.write(sizeLine, at, 'latin1');
      if (length > 0) at += typeof chunk === 'string' ? buffer.write(chunk, at, 'utf8') : chunk.copy(buffer, at);
      if (chunked && length > 0) at += CRLF.copy(buffer, at);
      if (chunked && final) LAST_CHUNK.copy(buffer, at);
      return buffer.length === 0 ? true : socket.write(buffer);
    }
    socket.cork();
    if (head !== null || sizeLine !== '') socket.write(Buffer.from(`${head ?? ''}${sizeLine}`, 'latin1'));
    let ok = socket.write(chunk);
    if (chunked) ok = socket.write(final ? TAIL_FINAL : CRLF);
    socket.uncork();
    return ok;
  }

  destroy(): void {
    this.socket?.destroy();
  }

  /** 'drain' and 'close' are the connection's; 'finish' fires when end() has written the last byte. */
  once(event: string, listener: () => void): this {
    if (event === 'finish') this.onFinish = listener;
    else this.socket?.once(event, listener);
    return this;
  }

  on(event: string, listener: () => void): this {
    return this.once(event, listener);
  }

  /** The connection leaves HTTP (a WebSocket upgrade took it). */
  detachSocket(_socket?: Socket): void {
    this.socket = null;
  }
}

const EMPTY = Buffer.alloc(0);
const TAIL_FINAL = Buffer.concat([CRLF, LAST_CHUNK]);
