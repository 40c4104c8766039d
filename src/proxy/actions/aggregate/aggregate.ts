/**
 * Running an aggregate route: the calls without dependencies start at once, each other call when the
 * calls it depends on have succeeded (skipped when one failed); every call is a sub-request
 * (upstream/sub-request.ts) under its service's balancer, breaker, pools and retry policy. When all
 * have settled the answers are composed into one JSON document; a required call's failure answers 502
 * at once and aborts the calls still in flight, as does the client going away.
 */

import { performance } from 'node:perf_hooks';
import { REQUEST_ID_HEADER } from '../../../core/defaults.ts';
import type { AggregateCallCode } from '../../../core/errors.ts';
import { type ExtraLookup, walk } from '../../../core/template.ts';
import { runResponseFilters } from '../../chain/filters.ts';
import type { StreamContext } from '../../context.ts';
import { problemOf } from '../../local-reply.ts';
import { hash32, randomHash } from '../../upstream/hash.ts';
import { type SubRequest, type SubResult, sendSubRequest } from '../../upstream/sub-request.ts';
import type { AggregateAction, CompiledAggregateCall } from './action.ts';

/** One entry of the answer's `errors` member. */
export interface CallError {
  call: string;
  /** The status the service answered with (MG_UPSTREAM_STATUS only). */
  status?: number;
  code: AggregateCallCode;
  detail: string;
}

const PENDING = 0;
const RUNNING = 1;
const SUCCEEDED = 2;
const FAILED = 3;

export function runAggregate(ctx: StreamContext, action: AggregateAction): void {
  const run = new AggregateRun(ctx, action);
  ctx.upstream = run;
  run.start();
}

/** One request's calls: their state, answers and failures, and the sub-requests in flight. */
class AggregateRun {
  private readonly ctx: StreamContext;
  private readonly action: AggregateAction;
  private readonly state: Uint8Array;
  private readonly results: unknown[];
  private readonly errors: (CallError | undefined)[];
  private readonly inflight: (SubRequest | null)[];
  /** Calls not settled yet. */
  private left: number;
  private ended = false;
  private readonly lookup: ExtraLookup;

  constructor(ctx: StreamContext, action: AggregateAction) {
    this.ctx = ctx;
    this.action = action;
    const n = action.calls.length;
    this.state = new Uint8Array(n);
    this.results = new Array(n);
    this.errors = new Array(n);
    this.inflight = new Array(n).fill(null);
    this.left = n;
    // `$(results.<call>.<field>…)`: the config check made sure the call is one this call waits for.
    this.lookup = (_root, path) => {
      const i = this.indexOf(path[0]!);
      return i === -1 || this.state[i] !== SUCCEEDED ? undefined : walk(this.results[i], path, 1);
    };
  }

  start(): void {
    this.ctx.upstreamStartMs = performance.now();
    for (const i of this.action.roots) {
      if (this.ended) return;
      this.launch(i);
    }
  }

  /** The client went away: the answer is no longer wanted. */
  abort(): void {
    if (this.ended) return;
    this.ended = true;
    this.stopCalls();
  }

  private indexOf(name: string): number {
    const calls = this.action.calls;
    for (let i = 0; i < calls.length; i++) if (calls[i]!.name === name) return i;
    return -1;
  }

  private launch(i: number): void {
    const call = this.action.calls[i]!;
    const ctx = this.ctx;
    const path = call.path.render(ctx, this.lookup, encodeURIComponent);
    if (path === undefined) {
      this.settle(i, undefined, {
        call: call.name,
        code: 'MG_AGGREGATE_SKIPPED',
        detail: `a value its path needs is missing (${call.path.source})`,
      });
      return;
    }
    this.state[i] = RUNNING;
    const request = sendSubRequest(
      call.target,
      {
        method: call.method,
        path,
        headers: this.headersFor(call),
        body: null,
        idempotent: call.idempotent,
        timeoutMs: call.timeoutMs,
        maxBodyBytes: call.maxBodyBytes,
        hashKey: call.target.endpoints.hashing ? this.hashKey(call) : 0,
        ctx,
        sole: false,
        name: call.name,
      },
      (result) => this.onResult(i, result),
    );
    // A refusal (circuit open, no endpoint) settles the call before sendSubRequest returns.
    if (this.state[i] === RUNNING && !this.ended) this.inflight[i] = request;
  }

  /** The client's headers this call gets, in the order the client sent them, and Accept. */
  private headersFor(call: CompiledAggregateCall): string[] {
    const out: string[] = [];
    const h = this.ctx.headers;
    let accept = false;
    for (let k = 0; k < h.length; k += 2) {
      const name = h[k]!;
      if (!call.passHeaders.has(name)) continue;
      if (name === 'accept') accept = true;
      out.push(name, h[k + 1]!);
    }
    if (!accept) out.push('accept', 'application/json');
    return out;
  }

  private hashKey(call: CompiledAggregateCall): number {
    const reader = call.target.service.hashKey;
    const key = reader === null ? undefined : reader(this.ctx);
    return key === undefined ? randomHash() : hash32(key);
  }

  private onResult(i: number, result: SubResult): void {
    if (this.ended) return;
    this.inflight[i] = null;
    const call = this.action.calls[i]!;
    const service = call.target.service.name;
    if (!result.ok) {
      this.settle(i, undefined, { call: call.name, code: result.code, detail: result.detail });
      return;
    }
    if (result.status < 200 || result.status > 299) {
      this.settle(i, undefined, {
        call: call.name,
        status: result.status,
        code: 'MG_UPSTREAM_STATUS',
        detail: `${service} answered ${result.status}`,
      });
      return;
    }
    // An empty 2xx answer (204) is null; anything else must parse.
    let value: unknown = null;
    if (result.body.length > 0) {
      try {
        value = JSON.parse(result.body.toString('utf8'));
      } catch {
        const type = result.headers['content-type'];
        this.settle(i, undefined, {
          call: call.name,
          code: 'MG_UPSTREAM_NOT_JSON',
          detail: `${service} answered with a body that is not JSON${type === undefined ? '' : ` (${String(type)})`}`,
        });
        return;
      }
    }
    this.settle(i, value, undefined);
  }

  /** A call is over: a required failure ends everything; otherwise the calls waiting for it may go. */
  private settle(i: number, value: unknown, error: CallError | undefined): void {
    const call = this.action.calls[i]!;
    const stats = call.target.service.stats;
    if (error === undefined) stats.aggregateOk++;
    else if (error.code === 'MG_AGGREGATE_SKIPPED') stats.aggregateSkipped++;
    else stats.aggregateFailed++;
    if (error !== undefined) {
      this.state[i] = FAILED;
      this.errors[i] = error;
      if (call.required) {
        this.failRequired(call, error);
        return;
      }
    } else {
      this.state[i] = SUCCEEDED;
      this.results[i] = value;
    }
    this.left--;
    for (const j of call.dependents) {
      if (this.ended) return;
      if (this.state[j] !== PENDING) continue;
      const waiting = this.action.calls[j]!;
      let failed = -1;
      let ready = true;
      for (const d of waiting.dependsOn) {
        if (this.state[d] === FAILED) failed = d;
        else if (this.state[d] !== SUCCEEDED) ready = false;
      }
      if (failed !== -1)
        this.settle(j, undefined, {
          call: waiting.name,
          code: 'MG_AGGREGATE_SKIPPED',
          detail: `not sent: call ${this.action.calls[failed]!.name}, which it depends on, failed`,
        });
      else if (ready) this.launch(j);
    }
    if (this.left === 0 && !this.ended) this.answer();
  }

  private stopCalls(): void {
    for (let i = 0; i < this.inflight.length; i++) {
      const request = this.inflight[i];
      if (request == null) continue;
      this.inflight[i] = null;
      request.abort();
    }
  }

  private end(): void {
    this.ended = true;
    const ctx = this.ctx;
    if (ctx.upstream === this) ctx.upstream = null;
    ctx.upstreamEndMs = performance.now();
  }

  /** 502 naming the call, with what failed so far; the calls still in flight are aborted. */
  private failRequired(call: CompiledAggregateCall, error: CallError): void {
    this.end();
    this.stopCalls();
    const ctx = this.ctx;
    const reply = {
      status: 502,
      code: 'MG_AGGREGATE_CALL_FAILED',
      detail: `required call ${call.name} (service ${call.target.service.name}) failed: ${error.detail}`,
    };
    const problem = {
      ...problemOf(reply, ctx.requestId, ctx.traceId),
      call: call.name,
      callCode: error.code,
      ...(error.status === undefined ? {} : { callStatus: error.status }),
      errors: this.errorList(),
    };
    ctx.reply({ ...reply, body: { contentType: 'application/problem+json', text: JSON.stringify(problem) } });
  }

  private errorList(): CallError[] {
    const list: CallError[] = [];
    for (const e of this.errors) if (e !== undefined) list.push(e);
    return list;
  }

  /** 200 with the composed document. */
  private answer(): void {
    this.end();
    const ctx = this.ctx;
    const calls = this.action.calls;
    // No prototype: a `__proto__` member of an answer merged at the top stays a member.
    const doc: Record<string, unknown> = Object.create(null);
    for (let i = 0; i < calls.length; i++) {
      if (this.state[i] !== SUCCEEDED) continue;
      const value = this.results[i];
      if (this.action.merge === 'top' && value !== null && typeof value === 'object' && !Array.isArray(value))
        Object.assign(doc, value);
      else doc[calls[i]!.name] = value;
    }
    const errors = this.errorList();
    if (errors.length > 0) doc.errors = errors;
    const body = Buffer.from(JSON.stringify(doc));
    const headers: (string | string[])[] = [
      'content-type',
      'application/json',
      'content-length',
      String(body.length),
      REQUEST_ID_HEADER,
      ctx.requestId,
    ];
    if (ctx.activeFilters !== null) runResponseFilters(ctx, 200, headers);
    const res = ctx.res;
    if (!res.destroyed) {
      res.writeHead(200, headers as string[]);
      res.end(ctx.method === 'HEAD' ? undefined : body);
      ctx.bytesOut = body.length;
    }
    ctx.finish();
  }
}
