/**
 * A request as the lean engine hands it to the request path: the members of node:http's
 * IncomingMessage that the data plane reads (method, url, rawHeaders, version, socket, upgrade,
 * complete) and the body as a Readable (piped into undici, counted by the body guard). Headers stay the
 * flat array the parser produced; the `headers` object is built only if something asks for it.
 */
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';

/** What the request asks of its connection: more body bytes (the reader has room again). */
export interface BodySource {
  resumeBody(): void;
}

export class LeanRequest extends Readable {
  readonly method: string;
  readonly url: string;
  /** `[name, value, …]` as received, names in their original case. */
  readonly rawHeaders: string[];
  readonly httpVersionMajor: number;
  readonly httpVersionMinor: number;
  readonly socket: Socket;
  /** A WebSocket upgrade (only those leave HTTP; other Upgrade requests are served as plain requests). */
  upgrade: boolean;
  /** The parser reached the end of the message (body included). */
  complete = false;
  /** The client asked to keep the connection open after this exchange (llhttp's verdict). */
  readonly keepAlive: boolean;
  /** The response ended before the body: the rest of it is read and dropped. */
  dumped = false;
  private readonly source: BodySource;
  private headerObject: Record<string, string | string[]> | null = null;

  constructor(
    source: BodySource,
    socket: Socket,
    method: string,
    url: string,
    rawHeaders: string[],
    versionMajor: number,
    versionMinor: number,
    keepAlive: boolean,
  ) {
    super({ highWaterMark: socket.readableHighWaterMark });
    this.source = source;
    this.socket = socket;
    this.method = method;
    this.url = url;
    this.rawHeaders = rawHeaders;
    this.httpVersionMajor = versionMajor;
    this.httpVersionMinor = versionMinor;
    this.keepAlive = keepAlive;
    this.upgrade = false;
  }

  get httpVersion(): string {
    return `${this.httpVersionMajor}.${this.httpVersionMinor}`;
  }

  /** node:http's shape: lower-case names; repeated values joined by `, ` (set-cookie kept as a list). */
  get headers(): Record<string, string | string[]> {
    if (this.headerObject !== null) return this.headerObject;
    const out: Record<string, string | string[]> = {};
    const raw = this.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toLowerCase();
      const value = raw[i + 1]!;
      const seen = out[name];
      if (seen === undefined) out[name] = name === 'set-cookie' ? [value] : value;
      else if (Array.isArray(seen)) seen.push(value);
      else out[name] = `${seen}, ${value}`;
    }
    this.headerObject = out;
    return out;
  }

  /** Value of the first header of that lower-case name, without building `headers`. */
  firstHeader(lowerName: string): string | undefined {
    const raw = this.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      if (name.length === lowerName.length && name.toLowerCase() === lowerName) return raw[i + 1];
    }
    return undefined;
  }

  override _read(): void {
    this.source.resumeBody();
  }

  /** As IncomingMessage: an abort is an error only to those listening for one. */
  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    callback(error !== null && this.listenerCount('error') > 0 ? error : null);
  }
}
