/**
 * Running a route's compiled filters. The request phase walks the list in its compiled order; each
 * hook continues, stops with a local reply, or returns a promise (the walk resumes when it settles).
 * Filters with response or log hooks are remembered on the context, so those hooks run for the
 * upstream's response and for local replies alike (a CORS header must be on a 401 too).
 */
import { type Filter, PLUGIN_PHASES, type ResponseHead } from '../../core/plugin.ts';
import type { CompiledFilter } from '../compiled.ts';
import type { StreamContext } from '../context.ts';
import { removeHeader, setHeader } from '../headers.ts';

const AUTHENTICATE = PLUGIN_PHASES.indexOf('authenticate');

/**
 * The consumer's own chain, when authentication has found a consumer that has plugins and the walk is
 * about to leave the authenticate phase; null to carry on with the route's chain.
 */
function consumerChain(ctx: StreamContext, next: CompiledFilter | undefined): readonly CompiledFilter[] | null {
  const chains = ctx.route!.consumerChains;
  if (chains === null || ctx.consumer === null) return null;
  if (next !== undefined && next.phaseRank <= AUTHENTICATE) return null;
  return chains.get(ctx.consumer.name) ?? null;
}

/** Runs the request phase from `start`; calls `proceed` when every filter has continued. */
export function runRequestFilters(
  ctx: StreamContext,
  filters: readonly CompiledFilter[],
  start: number,
  proceed: (ctx: StreamContext) => void,
  onConsumerChain = false,
): void {
  for (let i = start; i < filters.length; i++) {
    if (!onConsumerChain && ctx.consumer !== null) {
      const chain = consumerChain(ctx, filters[i]);
      if (chain !== null) {
        runRequestFilters(ctx, chain, 0, proceed, true);
        return;
      }
    }
    let filter: Filter;
    let result: ReturnType<NonNullable<Filter['onRequestHeaders']>>;
    try {
      filter = filters[i]!.factory(ctx);
      if (
        filter.onResponseHeaders !== undefined ||
        filter.onLog !== undefined ||
        filter.onResponseComplete !== undefined
      )
        (ctx.activeFilters ??= []).push(filter);
      if (filter.onResponseBody !== undefined) (ctx.bodyTaps ??= []).push(filter);
      if (filter.onRequestBody !== undefined) (ctx.requestBodyFilters ??= []).push(filter);
      if (filter.rewriteResponseBody !== undefined) (ctx.responseBodyFilters ??= []).push(filter);
      result = filter.onRequestHeaders?.(ctx);
      if (ctx.trail !== null) ctx.trail.plugin(ctx, filters[i]!, filter, result);
    } catch (e) {
      failFilter(ctx, filters[i]!, e);
      return;
    }
    if (result === undefined) continue;
    if (result instanceof Promise) {
      result.then(
        (settled) => {
          if (ctx.done) return; // the client went away while the filter worked
          if (settled === undefined) runRequestFilters(ctx, filters, i + 1, proceed, onConsumerChain);
          else ctx.reply(settled);
        },
        (e: unknown) => {
          if (!ctx.done) failFilter(ctx, filters[i]!, e);
        },
      );
      return;
    }
    ctx.reply(result);
    return;
  }
  if (!onConsumerChain && ctx.consumer !== null) {
    const chain = consumerChain(ctx, undefined);
    if (chain !== null) {
      runRequestFilters(ctx, chain, 0, proceed, true);
      return;
    }
  }
  proceed(ctx);
}

function failFilter(ctx: StreamContext, filter: CompiledFilter, e: unknown) {
  if (ctx.trail !== null) ctx.trail.pluginFailed(filter);
  ctx.owner.onFilterError?.(ctx, filter.name, e);
  ctx.reply({ status: 500, code: 'MG_INTERNAL', detail: `plugin ${filter.name} failed on this request` });
}

/** A ResponseHead over a flat `[name, value, …]` list (names lower-case), edited in place. */
export class FlatResponseHead implements ResponseHead {
  status: number;
  readonly headers: (string | string[])[];

  constructor(status: number, headers: (string | string[])[]) {
    this.status = status;
    this.headers = headers;
  }

  header(name: string): string | undefined {
    const h = this.headers;
    for (let i = 0; i < h.length; i += 2) if (h[i] === name) return String(h[i + 1]);
    return undefined;
  }

  setHeader(name: string, value: string): void {
    setHeader(this.headers, name, value);
  }

  appendHeader(name: string, value: string): void {
    this.headers.push(name, value);
  }

  *entries(): Iterable<[string, string | string[]]> {
    const h = this.headers;
    for (let i = 0; i < h.length; i += 2) yield [h[i] as string, h[i + 1]!];
  }

  removeHeader(name: string): void {
    removeHeader(this.headers, name);
  }
}

/** Lets every active filter see (and edit) a response head before it is written. */
export function runResponseFilters(ctx: StreamContext, status: number, headers: (string | string[])[]): void {
  const active = ctx.activeFilters;
  if (active === null) return;
  const head = new FlatResponseHead(status, headers);
  for (const filter of active) {
    try {
      filter.onResponseHeaders?.(ctx, head);
    } catch (e) {
      ctx.owner.onFilterError?.(ctx, 'response hook', e);
    }
  }
}

/** Hands a response chunk to the filters that read bodies (only set when a route has one). */
export function runBodyTaps(ctx: StreamContext, chunk: Buffer): void {
  for (const filter of ctx.bodyTaps!) {
    try {
      filter.onResponseBody!(ctx, chunk);
    } catch (e) {
      ctx.owner.onFilterError?.(ctx, 'body hook', e);
    }
  }
}

/** The upstream's response ended whole. */
export function runCompleteFilters(ctx: StreamContext): void {
  for (const filter of ctx.activeFilters!) {
    if (filter.onResponseComplete === undefined) continue;
    try {
      filter.onResponseComplete(ctx);
    } catch (e) {
      ctx.owner.onFilterError?.(ctx, 'complete hook', e);
    }
  }
}

export function runLogFilters(ctx: StreamContext, durationMs: number): void {
  const active = ctx.activeFilters;
  if (active === null) return;
  const outcome = { status: ctx.status, code: ctx.code, durationMs };
  for (const filter of active) {
    try {
      filter.onLog?.(ctx, outcome);
    } catch (e) {
      ctx.owner.onFilterError?.(ctx, 'log hook', e);
    }
  }
}
