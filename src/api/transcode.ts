/**
 * The `transcode` route action: REST/JSON calls mapped to gRPC methods by `google.api.http` rules
 * (the semantics of Envoy's grpc_json_transcoder and Kong's grpc-gateway). Part of the config contract
 * (src/api/config.ts includes it in RouteSchema); no logic here: src/proxy/actions/transcode/ checks,
 * compiles and runs it (its README documents every field with examples).
 */
import { type Static, Type } from '@sinclair/typebox';

const Template = (method: string) =>
  Type.String({
    pattern: '^/',
    description:
      `Path template for ${method}: literals, \`*\` (one segment), \`**\` (the rest), \`{field}\`, \`{field.sub}\`, ` +
      '`{field=segments/*}`, `{field=**}`, and an optional `:verb` at the end.',
  });

const ruleFields = {
  get: Type.Optional(Template('GET')),
  put: Type.Optional(Template('PUT')),
  post: Type.Optional(Template('POST')),
  delete: Type.Optional(Template('DELETE')),
  patch: Type.Optional(Template('PATCH')),
  custom: Type.Optional(
    Type.Object(
      {
        kind: Type.String({
          pattern: '^[A-Z][A-Z0-9-]*$',
          description: 'The HTTP method, upper case (e.g. `HEAD`, `OPTIONS`).',
        }),
        path: Template('that method'),
      },
      { additionalProperties: false, description: 'A method other than the five above.' },
    ),
  ),
  body: Type.Optional(
    Type.String({
      minLength: 1,
      description:
        '`*`: the JSON body is the whole request message (fields bound by the path override it; query ' +
        "parameters are not read). A top-level field name: the body is that field's JSON value; the other " +
        'fields come from the path and the query. Default: no body (every field not in the path comes from the query).',
    }),
  ),
  responseBody: Type.Optional(
    Type.String({
      minLength: 1,
      description:
        'A top-level field of the response message: the HTTP body is that field alone. Default: the whole message.',
    }),
  ),
};

/** One mapping of an HTTP method and path to a gRPC method (google.api.HttpRule, in camelCase). */
export const HttpBindingSchema = Type.Object(ruleFields, {
  additionalProperties: false,
  minProperties: 1,
  description: 'Exactly one of get, put, post, delete, patch, custom; with body and responseBody.',
});

export const HttpRuleSchema = Type.Object(
  {
    ...ruleFields,
    additionalBindings: Type.Optional(
      Type.Array(HttpBindingSchema, {
        minItems: 1,
        description: 'More HTTP mappings of the same gRPC method (they may not nest further).',
      }),
    ),
  },
  { additionalProperties: false, minProperties: 1 },
);

export const TranscodeMethodSchema = Type.Object(
  {
    method: Type.String({
      pattern: '^[A-Za-z_][A-Za-z0-9_.]*/[A-Za-z_][A-Za-z0-9_]*$',
      description: 'The gRPC method: fully qualified service, `/`, method, e.g. `proptech.Valuation/Estimate`.',
    }),
    http: HttpRuleSchema,
  },
  {
    additionalProperties: false,
    description:
      'The HTTP mapping of one method, as a `google.api.http` option would give it; it replaces the ' +
      "method's annotations, if the proto has any.",
  },
);

export const TranscodeSchema = Type.Object(
  {
    service: Type.String({
      minLength: 1,
      description:
        'Name of the meshgate service whose endpoints serve the gRPC methods; it must speak HTTP/2 ' +
        '(`protocol: http2`, or `auto` with `https://` endpoints that offer h2).',
    }),
    subset: Type.Optional(
      Type.String({ minLength: 1, description: 'A subset of that service. Default: all its endpoints.' }),
    ),
    protos: Type.Array(Type.String({ minLength: 1 }), {
      minItems: 1,
      description:
        '`.proto` files, relative to the config file (absolute paths as they are). Their imports are resolved ' +
        'in `includeDirs`, then beside the importing file, then among the bundled google/api and google/protobuf files.',
    }),
    includeDirs: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        description: 'Directories imports are resolved in, in order (like protoc `-I`), relative to the config file.',
      }),
    ),
    services: Type.Optional(
      Type.Array(Type.String({ minLength: 1, pattern: '^[A-Za-z_][A-Za-z0-9_.]*$' }), {
        minItems: 1,
        uniqueItems: true,
        description:
          'Fully qualified gRPC services whose annotated methods are exposed. Default: every service defined in ' +
          '`protos` (not in the files they import).',
      }),
    ),
    methods: Type.Optional(
      Type.Array(TranscodeMethodSchema, {
        minItems: 1,
        description: 'HTTP mappings given here instead of (or in addition to) `google.api.http` annotations.',
      }),
    ),
    headers: Type.Optional(
      Type.Array(Type.String({ minLength: 1, pattern: "^[a-z0-9!#$%&'*+.^_`|~-]+$" }), {
        uniqueItems: true,
        description:
          'Request headers (lower case) sent to the service as gRPC metadata. Default none: only x-request-id ' +
          'and the trace context go. Hop-by-hop and gRPC-reserved headers cannot be listed.',
      }),
    ),
    ignoreUnknownQueryParameters: Type.Optional(
      Type.Boolean({
        description:
          'Query parameters that name no field of the request message are ignored. Default false: 400 ' +
          'MG_TRANSCODE_INVALID_REQUEST.',
      }),
    ),
    maxRequestBytes: Type.Optional(
      Type.Integer({
        minimum: 0,
        description:
          'Largest JSON request body read, in bytes; larger gets 413. Default 4194304 (4 MiB). 0: only the ' +
          "route's `limits.maxBodyBytes` applies.",
      }),
    ),
    maxResponseMessageBytes: Type.Optional(
      Type.Integer({
        minimum: 0,
        description:
          'Largest gRPC message taken from the service, in bytes; larger fails the call with 502 ' +
          'MG_RESPONSE_TOO_LARGE. Default 4194304 (4 MiB). 0: no limit.',
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'Answer REST/JSON calls by calling gRPC methods of `service` (google.api.http mapping, proto3 JSON); ' +
      'see src/proxy/actions/transcode/README.md.',
  },
);

export type TranscodeConfig = Static<typeof TranscodeSchema>;
export type HttpRuleConfig = Static<typeof HttpRuleSchema>;
export type HttpBindingConfig = Static<typeof HttpBindingSchema>;
