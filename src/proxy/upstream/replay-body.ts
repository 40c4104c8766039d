/**
 * A request body that can be sent again. The client's body is still streamed to the first try as it
 * arrives (with backpressure), and each chunk is also kept while the total stays within a limit.
 * A retry (or the shadow of a mirrored request) gets a fresh stream that replays the kept chunks and
 * then follows the live body. Past the limit the kept chunks are dropped: the body can no longer be
 * replayed, and a failed try is then not retried. Tries never own the client's stream, so a failed
 * try cannot destroy it.
 */
import type { Readable as ReadableType } from 'node:stream';
import { Readable } from 'node:stream';

export class ReplayableBody {
  private readonly source: ReadableType;
  private readonly limit: number;
  /** Chunks kept for replay; null once the body outgrew the limit. */
  private chunks: Buffer[] | null = [];
  /** Bytes read from the client so far. */
  bytes = 0;
  ended = false;
  private error: Error | null = null;
  /** The one stream reading the live body now (the current try's). */
  private reader: BodyCursor | null = null;
  private listening = false;
  /** The request is over: the rest of the body is read and dropped, so the client connection stays usable. */
  private draining = false;
  /** Called once with the whole body when it ended within the limit, or null when it cannot (mirroring). */
  private onComplete: ((body: Buffer | null) => void) | null = null;

  constructor(source: ReadableType, limit: number) {
    this.source = source;
    this.limit = limit;
  }

  /** Whether the whole body so far is kept, so a new stream can start from its first byte. */
  get replayable(): boolean {
    return this.chunks !== null && this.error === null;
  }

  /**
   * A stream of the whole body from its first byte, for one try: kept chunks first, then the live
   * body. The previous stream (a failed try's) stops receiving. Null when the body is no longer kept.
   */
  open(): ReadableType | null {
    if (!this.replayable) return null;
    this.listen();
    this.reader?.detach();
    const cursor = new BodyCursor(this);
    for (const chunk of this.chunks!) cursor.push(chunk);
    if (this.ended) cursor.push(null);
    else this.reader = cursor;
    return cursor;
  }

  /**
   * Calls `fn` once: with the whole body when it has ended within the limit, or with null as soon as
   * it outgrows the limit or fails. Call after the first `open()`, so the live body has a reader.
   */
  whenComplete(fn: (body: Buffer | null) => void): void {
    if (this.ended || !this.replayable) {
      fn(this.replayable ? Buffer.concat(this.chunks!) : null);
      return;
    }
    this.onComplete = fn;
    this.listen();
  }

  private giveUpComplete(): void {
    const complete = this.onComplete;
    this.onComplete = null;
    complete?.(null);
  }

  private listen(): void {
    if (this.listening) return;
    this.listening = true;
    this.source.on('data', (chunk: Buffer) => this.onData(chunk));
    this.source.on('end', () => this.onEnd());
    this.source.on('error', (e: Error) => this.onError(e));
    this.source.on('close', () => this.onClose());
  }

  /**
   * The response is complete (or failed) before the client finished sending: nobody will read the rest
   * of the body. Read and drop it, as Node does with an unread body, instead of leaving it paused.
   */
  drain(): void {
    if (this.ended || this.draining) return;
    this.draining = true;
    this.chunks = null;
    this.giveUpComplete();
    this.reader?.detach();
    this.reader = null;
    this.source.resume();
  }

  private onData(chunk: Buffer): void {
    this.bytes += chunk.length;
    if (this.draining) return;
    if (this.chunks !== null) {
      if (this.bytes <= this.limit) this.chunks.push(chunk);
      else {
        this.chunks = null;
        this.giveUpComplete();
      }
    }
    const reader = this.reader;
    // Nobody reads the live body (between tries): hold the client until the next try asks for more.
    if (reader === null) this.source.pause();
    else if (!reader.push(chunk)) this.source.pause();
  }

  private onEnd(): void {
    this.ended = true;
    this.reader?.push(null);
    this.reader = null;
    const complete = this.onComplete;
    this.onComplete = null;
    if (complete !== null && this.chunks !== null) complete(Buffer.concat(this.chunks));
  }

  /** Every body closes; only one that closes before its end is an error (the Error is built then). */
  private onClose(): void {
    if (this.error === null && !this.ended) this.onError(new Error('the client closed before the request body ended'));
  }

  private onError(error: Error): void {
    if (this.error !== null || this.ended) return;
    this.error = error;
    this.giveUpComplete();
    this.reader?.destroy(error);
    this.reader = null;
  }

  /** The reading try wants more: let the client send again. */
  resumeSource(reader: BodyCursor): void {
    if (reader === this.reader && !this.ended) this.source.resume();
  }

  /** A stream let go of the live body (its try is over). */
  release(reader: BodyCursor): void {
    if (this.reader === reader) this.reader = null;
  }
}

/** One try's view of the body. Destroying it (as undici does when a try fails) leaves the client's stream alone. */
class BodyCursor extends Readable {
  private owner: ReplayableBody | null;

  constructor(owner: ReplayableBody) {
    super();
    this.owner = owner;
  }

  override _read(): void {
    this.owner?.resumeSource(this);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.detach();
    callback(error);
  }

  detach(): void {
    this.owner?.release(this);
    this.owner = null;
  }
}
