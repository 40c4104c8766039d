/**
 * W3C Trace Context (and B3, accepted): parsing the incoming context and making the one this hop sends
 * on. Hand-written because it is a few lines of string handling on the request path, where pulling in
 * the OpenTelemetry propagator API per request would cost more than the work itself.
 */
import { randomFillSync } from 'node:crypto';

export interface TraceContext {
  /** 32 lower-case hex digits. */
  traceId: string;
  /** The parent's span id, 16 hex digits ('' when this hop starts the trace). */
  parentSpanId: string;
  sampled: boolean;
  /** The `tracestate` header to pass on unchanged ('' when none). */
  traceState: string;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/** `traceparent` (version 00, or a later version read as 00 as the spec says); null when invalid. */
export function parseTraceparent(value: string): Omit<TraceContext, 'traceState'> | null {
  const m = TRACEPARENT.exec(value.trim().toLowerCase());
  if (m === null || m[1] === 'ff' || m[2] === ZERO_TRACE || m[3] === ZERO_SPAN) return null;
  if (m[1] === '00' && m[5] !== undefined) return null;
  return { traceId: m[2]!, parentSpanId: m[3]!, sampled: (Number.parseInt(m[4]!, 16) & 1) === 1 };
}

/** B3 single (`b3: traceid-spanid-sampled`) or multi (`x-b3-traceid`…) headers; 64-bit ids are padded. */
export function parseB3(header: (name: string) => string | undefined): Omit<TraceContext, 'traceState'> | null {
  let traceId: string | undefined;
  let spanId: string | undefined;
  let sampled: string | undefined;
  const single = header('b3');
  if (single !== undefined) [traceId, spanId, sampled] = single.split('-');
  else {
    traceId = header('x-b3-traceid');
    spanId = header('x-b3-spanid');
    sampled = header('x-b3-sampled') ?? (header('x-b3-flags') === '1' ? '1' : undefined);
  }
  if (traceId === undefined || spanId === undefined) return null;
  traceId = traceId.toLowerCase().padStart(32, '0');
  spanId = spanId.toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(traceId) || !/^[0-9a-f]{16}$/.test(spanId) || traceId === ZERO_TRACE) return null;
  return { traceId, parentSpanId: spanId, sampled: sampled === '1' || sampled === 'd' || sampled === 'true' };
}

export function formatTraceparent(traceId: string, spanId: string, sampled: boolean): string {
  return `00-${traceId}-${spanId}-${sampled ? '01' : '00'}`;
}

const pool = Buffer.alloc(4096);
let offset = pool.length;

/** Random hex ids from a pooled buffer: one getrandom call per 256 trace ids, not one per id. */
export function randomHex(bytes: 8 | 16): string {
  if (offset + bytes > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const hex = pool.toString('hex', offset, offset + bytes);
  offset += bytes;
  return hex;
}
