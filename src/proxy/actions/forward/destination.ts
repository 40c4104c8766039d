/**
 * Where a forwarded request goes: one destination of the route's weighted split (at random, or by a
 * sticky key), the hash key its balancer places it by, and the path and Host sent upstream.
 */
import type { CompiledDestination, CompiledRewrite, ForwardAction } from '../../compiled.ts';
import type { StreamContext } from '../../context.ts';
import { noteDraw } from '../../explain/trail.ts';
import { upstreamPath } from '../../path.ts';
import { type HashInput, type HashKeyReader, hash32, randomHash } from '../../upstream/hash.ts';

/** Seed for sticky splits, so the side of a split does not correlate with the endpoint a key hashes to. */
const STICKY_SEED = 0x5717c4;

/** Picks a destination by weight; `roll` is uniform in [0, 100). */
export function pickDestination(action: ForwardAction, roll: number): CompiledDestination | null {
  const list = action.destinations;
  if (list.length === 1) return list[0]!;
  for (let i = 0; i < list.length; i++) if (roll < list[i]!.upTo) return list[i]!;
  return list.length > 0 ? list[list.length - 1]! : null;
}

/** Picks the request's destination (one of the split), or replies and returns null when there is none. */
export function chooseDestination(ctx: StreamContext, action: ForwardAction): CompiledDestination | null {
  const only = action.destinations.length === 1;
  const roll = only ? -1 : action.sticky === null ? Math.random() * 100 : stickyRoll(ctx, action.sticky);
  const destination = pickDestination(action, roll);
  if (destination === null) {
    ctx.refusal = 'no-destination';
    ctx.fail('MG_NO_HEALTHY_UPSTREAM', `route ${ctx.routeName} has no destination with weight`);
    return null;
  }
  ctx.destination = destination;
  if (ctx.trail !== null) noteDraw(ctx, roll);
  return destination;
}

/** Where a sticky split places a request, in [0, 100): the same key always lands on the same side. */
export function stickyRoll(ctx: HashInput, reader: HashKeyReader): number {
  const key = reader(ctx);
  return key === undefined ? Math.random() * 100 : (hash32(key, STICKY_SEED) % 10_000) / 100;
}

/** The key a consistent-hashing balancer places the request by (random when the request has none). */
export function requestHash(ctx: StreamContext, reader: HashKeyReader | null): number {
  const key = reader === null ? undefined : reader(ctx);
  return key === undefined ? randomHash() : hash32(key);
}

/**
 * The path and query sent upstream: as sent, or after the route's rewrite (which may also set Host), or
 * the path a filter set (`setUpstreamPath`) with the query as filters left it.
 */
export function upstreamPathOf(ctx: StreamContext, rw: CompiledRewrite | null): string {
  if (rw?.host !== undefined) ctx.setHeader('host', rw.host);
  const override = ctx.pathOverride;
  if (override !== null) return ctx.query === '' ? override : `${override}?${ctx.query}`;
  return upstreamPath(rw, ctx);
}
