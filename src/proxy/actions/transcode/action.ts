/**
 * The transcode action: REST/JSON calls answered by gRPC methods of a service, mapped by
 * `google.api.http` rules (annotations in the protos, or the route's `methods`). Compiled once per
 * snapshot: the protos are parsed, every mapping compiled to a segment template, and the metadata
 * allow-list fixed; run by transcode.ts. Config checks (with proto file positions) are in check.ts.
 */

import type { RouteConfig } from '../../../api/config.ts';
import {
  type Binding,
  type Field,
  fieldChain,
  type ProtoLibrary,
  protoLibrary,
  protoSetFor,
  type TextKind,
  type Type,
  textKindOf,
} from '../../../config/transcode/protos.ts';
import {
  DEFAULT_TRANSCODE_MAX_REQUEST_BYTES,
  DEFAULT_TRANSCODE_MAX_RESPONSE_MESSAGE_BYTES,
} from '../../../core/defaults.ts';
import type { CompiledDestination } from '../../compiled.ts';
import type { UpstreamService } from '../../upstream/service.ts';
import { compileDestination } from '../forward/action.ts';

/** Answer by calling a gRPC method of `destination` (actions/transcode/). */
export interface TranscodeAction {
  readonly kind: 'transcode';
  readonly destination: CompiledDestination;
  /** Bindings by HTTP method, most specific first. */
  readonly byMethod: ReadonlyMap<string, readonly Binding[]>;
  readonly bindings: readonly Binding[];
  /** Methods left out, with why (for the admin view). */
  readonly skipped: readonly string[];
  /** Request headers sent as metadata (lower case), besides x-request-id and the trace context. */
  readonly metadata: ReadonlySet<string>;
  readonly ignoreUnknownQuery: boolean;
  /** Bytes; 0: only the route's body limit. */
  readonly maxRequestBytes: number;
  /** Bytes of one gRPC message from the service; 0: no limit. */
  readonly maxMessageBytes: number;
  readonly library: ProtoLibrary;
  /** Query parameter name (dotted, proto or JSON names) → the fields it sets, per request type. */
  readonly queryFields: QueryFields;
}

const MAX_REMEMBERED_QUERY_NAMES = 1024;

/** Resolves a query parameter of a request type to the fields it sets (memoised per type and name). */
export class QueryFields {
  private readonly library: ProtoLibrary;
  private readonly known = new Map<Type, Map<string, QueryTarget | null>>();

  constructor(library: ProtoLibrary) {
    this.library = library;
  }

  /** Null: the name is no settable field of `type`. */
  resolve(type: Type, name: string): QueryTarget | null {
    let names = this.known.get(type);
    if (names === undefined) this.known.set(type, (names = new Map()));
    let target = names.get(name);
    if (target === undefined) {
      const chain = fieldChain(this.library.protobuf, type, name.split('.'));
      const leaf = typeof chain === 'string' ? undefined : chain[chain.length - 1]!;
      const text = leaf === undefined || leaf.map ? null : textKindOf(this.library.protobuf, leaf);
      target = typeof chain === 'string' || text === null ? null : { fields: chain, text, repeated: leaf!.repeated };
      // Clients choose the names (and a recursive message has endless dotted ones): remember a bounded few.
      if (names.size < MAX_REMEMBERED_QUERY_NAMES) names.set(name, target);
    }
    return target;
  }
}

export interface QueryTarget {
  readonly fields: readonly Field[];
  readonly text: TextKind;
  readonly repeated: boolean;
}

export function isTranscode(rc: RouteConfig): boolean {
  return rc.transcode !== undefined;
}

/**
 * The config was validated (check.ts), which compiled its protos: in the same process that set is
 * taken as it is; elsewhere (a worker) the protos load and every name resolves, and a failure is a file
 * changed since.
 */
export function compileTranscode(rc: RouteConfig, services: ReadonlyMap<string, UpstreamService>): TranscodeAction {
  const spec = rc.transcode!;
  const result = protoSetFor(spec);
  if (!result.ok) throw new Error(`route ${rc.name}: transcode: ${result.problems.map((p) => p.message).join('; ')}`);
  const service = services.get(spec.service)!;
  const destination = Object.freeze(compileDestination(rc, service, spec.subset, 100));
  const byMethod = new Map<string, Binding[]>();
  for (const b of result.value.bindings) {
    let list = byMethod.get(b.httpMethod);
    if (list === undefined) byMethod.set(b.httpMethod, (list = []));
    list.push(b);
  }
  const library = protoLibrary();
  return Object.freeze({
    kind: 'transcode',
    destination,
    byMethod,
    bindings: Object.freeze(result.value.bindings),
    skipped: Object.freeze(result.value.skipped),
    metadata: new Set(spec.headers ?? []),
    ignoreUnknownQuery: spec.ignoreUnknownQueryParameters ?? false,
    maxRequestBytes: spec.maxRequestBytes ?? DEFAULT_TRANSCODE_MAX_REQUEST_BYTES,
    maxMessageBytes: spec.maxResponseMessageBytes ?? DEFAULT_TRANSCODE_MAX_RESPONSE_MESSAGE_BYTES,
    library,
    queryFields: new QueryFields(library),
  });
}

/** The services the action sends to (for plugin scoping, metrics and logs). */
export function transcodeServiceNames(rc: RouteConfig): string[] {
  const spec = rc.transcode;
  return spec === undefined ? [] : [spec.service];
}

/** For the admin API and `proxy-config routes`. */
export function describeTranscode(action: TranscodeAction, rc: RouteConfig): Record<string, unknown> {
  const spec = rc.transcode!;
  const d = action.destination;
  return {
    kind: 'transcode',
    service: d.service.name,
    subset: d.subset ?? null,
    protos: spec.protos,
    timeouts: { requestMs: d.requestTimeoutMs, idleMs: d.idleTimeoutMs },
    bindings: action.bindings.map((b) => ({
      http: `${b.httpMethod} ${b.template.source}`,
      grpc: b.method.name,
      streaming: b.method.serverStreaming,
      body: b.body,
      responseBody: b.responseField?.name ?? null,
      from: b.source,
    })),
    skipped: action.skipped,
    metadata: [...action.metadata],
    maxRequestBytes: action.maxRequestBytes,
    maxResponseMessageBytes: action.maxMessageBytes,
  };
}
