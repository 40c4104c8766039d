/**
 * The graphql action (REST → GraphQL, as Kong's and APISIX's `degraphql`): a route answers a REST call
 * by sending one GraphQL operation to a GraphQL service, its variables filled from the request.
 * Compiled once per snapshot: the document parsed and its operation chosen (graphql-js, loaded only
 * when a route uses this action), the variables compiled to templates with their coercion, the
 * constant part of the JSON body encoded; run by graphql.ts.
 */

import { readFileSync } from 'node:fs';
import type { RouteConfig } from '../../../api/config.ts';
import { graphqlModule, prepareOperation } from '../../../config/graphql.ts';
import {
  DEFAULT_GRAPHQL_MAX_BODY_BYTES,
  DEFAULT_GRAPHQL_MAX_RESPONSE_BYTES,
  DEFAULT_GRAPHQL_PATH,
} from '../../../core/defaults.ts';
import type { CompiledDestination } from '../../compiled.ts';
import type { UpstreamService } from '../../upstream/service.ts';
import { compileDestination } from '../forward/action.ts';
import { type CompiledVariable, compileVariables } from './variables.ts';

/** Send one GraphQL operation for the request and answer with its result (actions/graphql/). */
export interface GraphqlAction {
  readonly kind: 'graphql';
  readonly destination: CompiledDestination;
  /** Path at the service. */
  readonly path: string;
  readonly operationName: string | undefined;
  readonly operationType: 'query' | 'mutation';
  /**
   * A query only reads (GraphQL spec §6: "a read-only fetch"), so a try that may have reached the
   * service is retried under the service's policy as a GET would be; a mutation, like any POST, only
   * after a connect failure (nothing was sent), unless the policy says `nonIdempotent: true`.
   */
  readonly idempotent: boolean;
  readonly variables: readonly CompiledVariable[];
  /** `{"query":…,"operationName":…,"variables":` — the JSON body up to the variables object. */
  readonly bodyPrefix: string;
  /** Some variable references `$(body…)`: the request body is read (up to `maxBodyBytes`) and parsed. */
  readonly readsBody: boolean;
  /** 0: only the route's or listener's limit. */
  readonly maxBodyBytes: number;
  /** 0: no limit. */
  readonly maxResponseBytes: number;
  /** The schema file the variables are coerced with, or null. */
  readonly schemaFile: string | null;
}

export function isGraphql(rc: RouteConfig): boolean {
  return rc.graphql !== undefined;
}

export function graphqlServiceNames(rc: RouteConfig): string[] {
  return [rc.graphql!.service];
}

/** Throws when the document or schema no longer reads as it did when the config was validated. */
export function compileGraphql(rc: RouteConfig, services: ReadonlyMap<string, UpstreamService>): GraphqlAction {
  const g = rc.graphql!;
  const schemaFile = g.schema ?? null;
  const prepared = prepareOperation(
    g.query,
    g.operationName,
    schemaFile === null ? null : readFileSync(schemaFile, 'utf8'),
  );
  if (!prepared.ok)
    throw new Error(`route ${rc.name}: graphql.${prepared.problems[0]!.field}: ${prepared.problems[0]!.message}`);
  const { operation, operationName, schema } = prepared.value;
  const service = services.get(g.service)!;
  // The service's retry policy: a graphql route has no `retries` of its own (see `idempotent` below).
  const destination = Object.freeze(compileDestination(rc, service, g.subset, 100));
  const variables = compileVariables(graphqlModule(), operation, schema, g.variables ?? {});
  const bodyPrefix =
    `{"query":${JSON.stringify(g.query)}` +
    (operationName === undefined ? '' : `,"operationName":${JSON.stringify(operationName)}`) +
    ',"variables":';
  return Object.freeze({
    kind: 'graphql',
    destination,
    path: g.path ?? DEFAULT_GRAPHQL_PATH,
    operationName,
    operationType: operation.operation as 'query' | 'mutation',
    idempotent: operation.operation === 'query',
    variables: Object.freeze(variables),
    bodyPrefix,
    readsBody: variables.some((v) => v.readsBody),
    maxBodyBytes: g.maxBodyBytes ?? DEFAULT_GRAPHQL_MAX_BODY_BYTES,
    maxResponseBytes: g.maxResponseBytes ?? DEFAULT_GRAPHQL_MAX_RESPONSE_BYTES,
    schemaFile,
  });
}

/** For the admin API and `proxy-config routes`. */
export function describeGraphql(action: GraphqlAction): Record<string, unknown> {
  const d = action.destination;
  return {
    kind: 'graphql',
    service: d.service.name,
    subset: d.subset,
    path: action.path,
    operation: { type: action.operationType, name: action.operationName ?? null },
    variables: Object.fromEntries(action.variables.map((v) => [v.name, { value: v.source, type: v.typeText }])),
    schema: action.schemaFile,
    readsBody: action.readsBody,
    maxBodyBytes: action.maxBodyBytes,
    maxResponseBytes: action.maxResponseBytes,
    timeouts: { requestMs: d.requestTimeoutMs, idleMs: d.idleTimeoutMs },
    retries:
      d.retry === null ? null : { attempts: d.retry.attempts, on: d.retry.conditions, idempotent: action.idempotent },
  };
}
