/**
 * Running the graphql action: the request body read when a variable references it, the variables
 * rendered and coerced (400 MG_GRAPHQL_VARIABLE naming the variable when one cannot be), the JSON
 * body POSTed to the service as the request's one sub-request (upstream/sub-request.ts: retried only
 * as the service's policy and the operation allow), and the GraphQL answer written back with the
 * status its errors map to (response.ts).
 */
import type { Readable } from 'node:stream';
import { REQUEST_ID_HEADER } from '../../../core/defaults.ts';
import { type ExtraLookup, walk } from '../../../core/template.ts';
import { runBodyTaps, runCompleteFilters, runResponseFilters } from '../../chain/filters.ts';
import type { StreamContext } from '../../context.ts';
import { connectionListed, RESPONSE_HOP_BY_HOP, removeHeaders } from '../../headers.ts';
import { bodySource } from '../../upstream/request-body.ts';
import { type SubResult, sendSubRequest } from '../../upstream/sub-request.ts';
import { requestHash } from '../forward/destination.ts';
import type { GraphqlAction } from './action.ts';
import { answerOf } from './response.ts';
import { CoercionError, renderValue } from './variables.ts';

const noExtra: ExtraLookup = () => undefined;

/** Request headers that describe the client's body or what it accepts: the GraphQL request has its own. */
const REPLACED_REQUEST_HEADERS: ReadonlySet<string> = new Set([
  'content-length',
  'content-type',
  'content-encoding',
  'transfer-encoding',
  'accept',
  'accept-encoding',
]);

/** Response headers the proxy sets itself on the answer (it is re-encoded as one JSON body). */
const REPLACED_RESPONSE_HEADERS: ReadonlySet<string> = new Set([
  'content-length',
  'content-type',
  'content-encoding',
  REQUEST_ID_HEADER,
]);

export function runGraphql(ctx: StreamContext, action: GraphqlAction): void {
  if (!action.readsBody) {
    send(ctx, action, noExtra);
    return;
  }
  if (!ctx.hasBody) {
    send(ctx, action, noExtra);
    return;
  }
  if (ctx.bufferedBody !== null) {
    withBody(ctx, action, ctx.bufferedBody);
    return;
  }
  readBody(ctx, action);
}

/** Collects the request body up to `maxBodyBytes` (the route's own limit is counted by bodySource). */
function readBody(ctx: StreamContext, action: GraphqlAction): void {
  const limit = action.maxBodyBytes;
  if (limit > 0 && ctx.contentLength > limit) {
    ctx.failAndClose(
      'MG_BODY_TOO_LARGE',
      `the body is ${ctx.contentLength} bytes; route ${ctx.routeName} reads at most ${limit} for its GraphQL variables`,
    );
    return;
  }
  const source = bodySource(ctx) as Readable;
  const chunks: Buffer[] = [];
  let size = 0;
  source.on('data', (chunk: Buffer) => {
    if (ctx.done) return;
    size += chunk.length;
    if (limit > 0 && size > limit) {
      ctx.failAndClose(
        'MG_BODY_TOO_LARGE',
        `the body exceeds ${limit} bytes, the most route ${ctx.routeName} reads for its GraphQL variables`,
      );
      return;
    }
    chunks.push(chunk);
  });
  source.once('end', () => {
    if (!ctx.done) withBody(ctx, action, Buffer.concat(chunks, size));
  });
  source.once('error', () => {
    if (!ctx.done) ctx.fail('MG_BAD_REQUEST', 'the request body could not be read');
  });
}

function withBody(ctx: StreamContext, action: GraphqlAction, body: Buffer): void {
  let data: unknown;
  if (body.length > 0) {
    try {
      data = JSON.parse(body.toString('utf8'));
    } catch {
      ctx.fail('MG_BAD_REQUEST', `route ${ctx.routeName} reads GraphQL variables from the body, which is not JSON`);
      return;
    }
  }
  send(ctx, action, (root, path) => (root === 'body' ? walk(data, path) : undefined));
}

/** The variables, then the call. */
function send(ctx: StreamContext, action: GraphqlAction, extra: ExtraLookup): void {
  const variables: Record<string, unknown> = {};
  for (const v of action.variables) {
    const raw = renderValue(v.value, ctx, extra);
    if (raw === undefined) {
      if (v.required) {
        ctx.fail(
          'MG_GRAPHQL_VARIABLE',
          `variable $${v.name} (${v.typeText}) is required, and ${v.source} has no value`,
        );
        return;
      }
      continue;
    }
    try {
      variables[v.name] = v.coerce(raw, `$${v.name}`);
    } catch (e) {
      if (!(e instanceof CoercionError)) throw e;
      ctx.fail('MG_GRAPHQL_VARIABLE', `variable ${e.message} (${v.typeText}, from ${v.source})`);
      return;
    }
  }
  const body = Buffer.from(`${action.bodyPrefix}${JSON.stringify(variables)}}`);
  const headers: string[] = [];
  const h = ctx.headers;
  for (let i = 0; i < h.length; i += 2) if (!REPLACED_REQUEST_HEADERS.has(h[i]!)) headers.push(h[i]!, h[i + 1]!);
  headers.push(
    'content-type',
    'application/json',
    'accept',
    'application/graphql-response+json, application/json',
    'accept-encoding',
    'identity',
    'content-length',
    String(body.length),
  );
  const destination = action.destination;
  ctx.destination = destination;
  ctx.timeoutMs = destination.requestTimeoutMs;
  sendSubRequest(
    destination,
    {
      method: 'POST',
      path: action.path,
      headers,
      body,
      idempotent: action.idempotent,
      timeoutMs: destination.requestTimeoutMs,
      maxBodyBytes: action.maxResponseBytes,
      hashKey: destination.endpoints.hashing ? requestHash(ctx, destination.service.hashKey) : 0,
      ctx,
      sole: true,
    },
    (outcome) => answer(ctx, outcome),
  );
}

function answer(ctx: StreamContext, outcome: SubResult): void {
  if (ctx.done) return;
  if (!outcome.ok) {
    ctx.fail(outcome.code, outcome.detail);
    return;
  }
  const { status: upstreamStatus, headers: upstreamHeaders, body } = outcome;
  const service = ctx.destination!.service.name;
  const encoding = upstreamHeaders['content-encoding'];
  if (encoding !== undefined && encoding !== 'identity') {
    ctx.fail(
      'MG_UPSTREAM_PROTOCOL_ERROR',
      `${service} answered with Content-Encoding ${encoding} though asked for none`,
    );
    return;
  }
  const result = answerOf(body);
  if (!result.graphql) {
    ctx.fail(
      'MG_UPSTREAM_PROTOCOL_ERROR',
      `${service} answered ${upstreamStatus} without a GraphQL response (a JSON object with data or errors)`,
    );
    return;
  }
  const out: (string | string[])[] = [];
  let listed: Set<string> | null = null;
  let hasDate = false;
  for (const name in upstreamHeaders) {
    const value = upstreamHeaders[name];
    if (value === undefined) continue;
    if (RESPONSE_HOP_BY_HOP.has(name)) {
      if (name === 'connection') listed = connectionListed(String(value));
      continue;
    }
    if (REPLACED_RESPONSE_HEADERS.has(name)) continue;
    if (name === 'date') hasDate = true;
    out.push(name, value);
  }
  if (listed !== null) removeHeaders(out as string[], listed);
  out.push(
    'content-type',
    'application/json; charset=utf-8',
    'content-length',
    String(body.length),
    REQUEST_ID_HEADER,
    ctx.requestId,
  );
  const telemetry = ctx.owner.telemetry;
  if (telemetry?.serverTiming) out.push('server-timing', telemetry.serverTimingOf(ctx));
  if (ctx.activeFilters !== null) runResponseFilters(ctx, result.status, out);
  const res = ctx.res;
  if (res.destroyed) {
    ctx.finish();
    return;
  }
  if (hasDate) res.sendDate = false;
  res.writeHead(result.status, out as string[]);
  const head = ctx.method === 'HEAD';
  if (!head) {
    ctx.bytesOut += body.length;
    if (ctx.bodyTaps !== null) runBodyTaps(ctx, body);
  }
  res.end(head ? undefined : body);
  if (ctx.activeFilters !== null) runCompleteFilters(ctx);
  ctx.finish();
}
