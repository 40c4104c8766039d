/**
 * The HTTP/1.1 request parser of the lean engine: node:http's own llhttp binding, the `HTTPParser` that
 * `node:_http_common` exports (the same native object node:http's server drives).
 *
 * Why this one: it is the parser node:http runs, built with the same llhttp version and strictness, so
 * the lean engine refuses exactly what the node engine refuses (ambiguous framing, duplicate lengths,
 * bad chunks, obs-fold, bad characters, oversized heads), by construction rather than by a second
 * implementation kept in step. It runs natively and hands over headers as the flat `[name, value, …]`
 * arrays the request path reads. `process.binding('http_parser')` is gone on Node 24 ("No such
 * module"); undici's wasm llhttp parses requests too, but copies every read into wasm memory and calls
 * back into JavaScript per header field, and its build need not match node:http's. Importing
 * `node:_http_common` prints no warning on Node 24.
 */
import { createRequire } from 'node:module';

/** The callbacks' slots and flags, as node:http's server uses them. */
export interface HttpParserStatics {
  readonly REQUEST: number;
  readonly RESPONSE: number;
  readonly kOnMessageBegin: number;
  readonly kOnHeaders: number;
  readonly kOnHeadersComplete: number;
  readonly kOnBody: number;
  readonly kOnMessageComplete: number;
  readonly kOnExecute: number;
  readonly kOnTimeout: number;
  readonly kLenientNone: number;
}

/** Why llhttp stopped: `HPE_…`, with how far it got. */
export type ParseError = Error & { code?: string; bytesParsed?: number };

/** One parser per connection; callbacks sit in its numbered slots and are called with it as `this`. */
export interface NativeHttpParser {
  /** Resets the parser for a new connection: type, async resource, largest head in bytes (0: Node's default), lenient flags. */
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  /** Parses `data`; the bytes consumed, or an Error with `code` (`HPE_…`) and `bytesParsed`. */
  execute(data: Buffer): number | ParseError;
  /**
   * Reads the stream under a socket (its `_handle`) directly: each read is parsed as it arrives, then
   * handed to the `kOnExecute` slot as the bytes parsed or a ParseError. EOF and read errors still go
   * to the socket. `unconsume` gives the reads back to it.
   */
  consume(handle: object): void;
  unconsume(): void;
  /** A copy of the read being parsed (inside `kOnExecute` only). */
  getCurrentBuffer(): Buffer;
  /** The connection ended: an Error when a message was cut short, otherwise undefined. */
  finish(): undefined | (Error & { code?: string });
  /** Releases the native state; the object must not be used after. */
  free(): void;
  [slot: number]: unknown;
}

const common = createRequire(import.meta.url)('node:_http_common') as {
  HTTPParser: HttpParserStatics & (new () => NativeHttpParser);
  methods: string[];
};

export const HTTPParser = common.HTTPParser;
/** Method names by llhttp's method index (what the head callback is given). */
export const METHODS: readonly string[] = common.methods;
