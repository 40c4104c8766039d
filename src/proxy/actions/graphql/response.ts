/**
 * What status a GraphQL answer gets on the REST side. GraphQL servers answer 200 with `errors` for
 * most failures; a REST client reads the status. The rule (docs/graphql.md):
 *
 *   - no `errors`: 200;
 *   - `errors`, and some root field of `data` has a value (a partial result): 200, the errors kept in
 *     the body;
 *   - `errors`, and `data` null, absent or with every root field null (nothing was answered, as when
 *     the one root field of a REST-shaped query failed): the status the first error names,
 *     by `extensions.status` (a number 400–599) or else by `extensions.code` (GRAPHQL_ERROR_STATUS),
 *     and 502 when no error names one.
 *
 * The body is the service's GraphQL response as it came (`{ "data": … }`, with `errors` when there are),
 * which is what Kong's and APISIX's degraphql return.
 */

/** `extensions.code` → HTTP status: Apollo Server's codes and the usual names for the same failures. */
export const GRAPHQL_ERROR_STATUS: Readonly<Record<string, number>> = Object.freeze({
  BAD_USER_INPUT: 400,
  BAD_REQUEST: 400,
  UNAUTHENTICATED: 401,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  TOO_MANY_REQUESTS: 429,
  RATE_LIMITED: 429,
  INTERNAL_SERVER_ERROR: 502,
  GRAPHQL_PARSE_FAILED: 502,
  GRAPHQL_VALIDATION_FAILED: 502,
  SERVICE_UNAVAILABLE: 503,
  GATEWAY_TIMEOUT: 504,
  TIMEOUT: 504,
});

/** Status when every error failed to name one. */
export const GRAPHQL_ERRORS_STATUS = 502;

export type GraphqlAnswer =
  | { readonly graphql: true; readonly status: number; readonly errors: number; readonly partial: boolean }
  | { readonly graphql: false };

/** Reads a service's response body as a GraphQL response and decides its status. */
export function answerOf(body: Buffer): GraphqlAnswer {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return { graphql: false };
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return { graphql: false };
  const { data, errors } = parsed as { data?: unknown; errors?: unknown };
  if (data === undefined && errors === undefined) return { graphql: false };
  if (errors !== undefined && !Array.isArray(errors)) return { graphql: false };
  const list = (errors ?? []) as unknown[];
  if (list.length === 0) return { graphql: true, status: 200, errors: 0, partial: false };
  if (answered(data)) return { graphql: true, status: 200, errors: list.length, partial: true };
  return { graphql: true, status: statusOfErrors(list), errors: list.length, partial: false };
}

function statusOfErrors(errors: readonly unknown[]): number {
  for (const error of errors) {
    const extensions = (error as { extensions?: unknown } | null)?.extensions;
    if (extensions === null || typeof extensions !== 'object') continue;
    const { status, code } = extensions as { status?: unknown; code?: unknown };
    if (typeof status === 'number' && Number.isInteger(status) && status >= 400 && status <= 599) return status;
    if (typeof code === 'string' && Object.hasOwn(GRAPHQL_ERROR_STATUS, code)) return GRAPHQL_ERROR_STATUS[code]!;
  }
  return GRAPHQL_ERRORS_STATUS;
}

/** Some root field has a value. */
function answered(data: unknown): boolean {
  if (data === null || typeof data !== 'object') return false;
  for (const key in data) if ((data as Record<string, unknown>)[key] !== null) return true;
  return false;
}
