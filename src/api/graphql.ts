/**
 * The `graphql` route action's settings (REST → GraphQL, as Kong's and APISIX's `degraphql`): a REST
 * call becomes one GraphQL operation sent to a GraphQL service. Schema only; src/config/graphql.ts
 * checks the document, src/proxy/actions/graphql/ runs it. Defaults live in src/core/defaults.ts.
 */
import { type Static, Type } from '@sinclair/typebox';

export const GraphqlActionSchema = Type.Object(
  {
    service: Type.String({
      minLength: 1,
      description:
        'The service that answers GraphQL. The request goes through its balancer, endpoints, circuit breaker and ' +
        'connection pools as forwarded requests do.',
    }),
    subset: Type.Optional(Type.String({ minLength: 1, description: 'A subset of `service` to send to.' })),
    path: Type.Optional(
      Type.String({
        pattern: '^/',
        description: 'The path the GraphQL document is POSTed to at the service. Default `/graphql`.',
      }),
    ),
    query: Type.String({
      minLength: 1,
      description:
        'The GraphQL document sent upstream (operations and fragments). Parsed when the config loads; a syntax ' +
        'error is a config error with its line and column inside the document.',
    }),
    operationName: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'Which operation of `query` to run; required when it has several. Sent as `operationName`. Default: the ' +
          'one operation of the document.',
      }),
    ),
    variables: Type.Optional(
      Type.Record(Type.String({ pattern: '^[_A-Za-z][_0-9A-Za-z]*$' }), Type.Unknown(), {
        description:
          'Values of the operation’s variables, by name (without `$`). A string is a template: `$(params.id)`, ' +
          '`$(query.limit)`, `$(headers.x-user)`, `$(consumer.name)`, `$(claims.sub)` or `$(body.a.b)` (the JSON ' +
          'request body); other JSON values (numbers, objects, lists, whose strings are templates too) are sent ' +
          'as written. A value that is exactly one reference keeps its JSON type; text is coerced to the type the ' +
          'operation declares for the variable (Int, Float, Boolean, ID, String, enums, lists, input objects ' +
          'from JSON). A reference with no value leaves the variable out (its default applies); a value that ' +
          'cannot be coerced is a 400. Every variable named must be declared by the operation.',
      }),
    ),
    schema: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'A GraphQL SDL file (relative to the config file). When given, the document is validated against it ' +
          'when the config loads (an unknown field is a config error) and variables are coerced with its types ' +
          '(input object fields, enums, custom scalars included). Default: none (variables are coerced by their ' +
          'declared type name only).',
      }),
    ),
    maxBodyBytes: Type.Optional(
      Type.Integer({
        minimum: 0,
        description:
          'Largest request body read for `$(body…)` references, in bytes; larger is a 413. The body is only read ' +
          'when a variable references it. Default 1048576 (1 MiB). 0: only the route’s or listener’s body limit.',
      }),
    ),
    maxResponseBytes: Type.Optional(
      Type.Integer({
        minimum: 0,
        description:
          'Largest GraphQL response read from the service, in bytes; larger is a 502 MG_RESPONSE_TOO_LARGE. ' +
          'Default 8388608 (8 MiB). 0: no limit.',
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'Answer a REST call with one GraphQL operation: the variables are filled from the request, the document is ' +
      'POSTed as JSON to `service`, and the GraphQL response comes back with a status mapped from its errors ' +
      '(docs/graphql.md).',
  },
);

export type GraphqlActionConfig = Static<typeof GraphqlActionSchema>;
