/**
 * The config contract: what a user writes, as JSON Schema (TypeBox) with its static type.
 * `schema/meshgate.schema.json` is generated from `ConfigSchema` (`npm run schema`).
 * Every field says its meaning, unit, default and what 0 means; defaults live in src/core/defaults.ts.
 * No logic here: loading, validation and compilation live in src/config.
 */
import { type Static, type TSchema, Type } from '@sinclair/typebox';

const DURATION_PATTERN = '^(0|([0-9]+(\\.[0-9]+)?(ms|s|m|h))+)$';

/** A duration with units, e.g. `250ms`, `5s`, `1m30s`, `1h`. `0` disables the timeout it sets. */
export const Duration = (description: string) =>
  Type.String({ pattern: DURATION_PATTERN, description, examples: ['250ms', '5s', '1h'] });

const Name = (description: string) =>
  Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$', description });

const Port = (description: string) => Type.Integer({ minimum: 0, maximum: 65535, description });

export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'CONNECT', 'TRACE'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

const Labels = Type.Record(Type.String({ minLength: 1 }), Type.String(), {
  description: 'Free-form key/value labels, e.g. `{ version: v2, zone: eu-1 }`.',
});

export const ListenerSchema = Type.Object(
  {
    name: Name('Unique name of the listener; appears in logs and metrics.'),
    port: Port('TCP port to accept connections on. 0 picks a free port (useful in tests).'),
    address: Type.Optional(
      Type.String({ minLength: 1, description: 'Address to bind. Default `0.0.0.0` (all IPv4 interfaces).' }),
    ),
    trustedHops: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 10,
        description:
          'How many proxies in front of this listener are trusted to set X-Forwarded-For/-Proto/-Host and Forwarded. ' +
          '0 (default): client-supplied values are discarded and replaced by what the gateway sees. ' +
          'N > 0: client values are kept and appended to, and the client address is the Nth address from the right.',
      }),
    ),
  },
  { additionalProperties: false, description: 'A port on which the proxy accepts client traffic.' },
);

export const AdminSchema = Type.Object(
  {
    port: Port('Port of the admin API (status, config dump, metrics). Default 9901; 0 picks a free port.'),
    address: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'Address to bind. Default `127.0.0.1`: the admin API is never exposed unless you say so.',
      }),
    ),
  },
  { additionalProperties: false, description: 'The admin API listener.' },
);

export const EndpointSchema = Type.Object(
  {
    url: Type.String({
      pattern: '^https?://[^/?#]+/?$',
      description: 'Origin of one instance, `http://host:port` (no path).',
      examples: ['http://127.0.0.1:8081'],
    }),
    labels: Type.Optional(Labels),
    weight: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 1000,
        description: 'Relative share of traffic for weighted balancing. Default 1.',
      }),
    ),
  },
  { additionalProperties: false },
);

export const ServiceTimeoutsSchema = Type.Object(
  {
    connect: Type.Optional(Duration('Time to establish a connection to an endpoint. Default 5s; 0 waits forever.')),
    request: Type.Optional(
      Duration(
        'Time from sending the request upstream until the response headers arrive. Default 30s; 0 disables it. ' +
          'A route may set its own.',
      ),
    ),
    idle: Type.Optional(
      Duration(
        'Longest silence allowed while a response body streams (between two chunks). Default 60s; 0 disables it.',
      ),
    ),
  },
  { additionalProperties: false },
);

export const ServiceSchema = Type.Object(
  {
    name: Name('Unique name of the service; routes refer to it.'),
    endpoints: Type.Array(EndpointSchema, {
      description: 'Static instances of the service.',
    }),
    subsets: Type.Optional(
      Type.Record(Type.String({ minLength: 1 }), Labels, {
        description: 'Named groups of endpoints selected by labels, e.g. `v2: { version: v2 }`.',
      }),
    ),
    timeouts: Type.Optional(ServiceTimeoutsSchema),
  },
  { additionalProperties: false, description: 'A named upstream.' },
);

const StringMatchObject = Type.Object(
  {
    exact: Type.Optional(Type.String({ description: 'The value equals this.' })),
    prefix: Type.Optional(Type.String({ description: 'The value starts with this.' })),
    regex: Type.Optional(
      Type.String({ minLength: 1, description: 'The whole value matches this regular expression.' }),
    ),
    present: Type.Optional(Type.Boolean({ description: '`true`: present with any value; `false`: must be absent.' })),
  },
  { additionalProperties: false, minProperties: 1, maxProperties: 1 },
);

/** A header or query condition: a string means exact match. */
export const ValueMatchSchema = Type.Union([Type.String(), StringMatchObject], {
  description: 'A string for an exact match, or one of `{ exact }`, `{ prefix }`, `{ regex }`, `{ present }`.',
});

export const RouteMatchSchema = Type.Object(
  {
    hosts: Type.Optional(
      Type.Array(Type.String({ minLength: 1, pattern: '^(\\*\\.)?[A-Za-z0-9.-]+$' }), {
        minItems: 1,
        description: 'Host names (without port): exact, or `*.example.com` for any subdomain. Default: any host.',
      }),
    ),
    path: Type.Optional(
      Type.String({
        pattern: '^/',
        description:
          '`/a/b` exact; `/a/:id` a named segment; `/a/*` the prefix `/a/`, everything below it, and `/a` itself. ' +
          'Default: any path.',
      }),
    ),
    pathRegex: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'A regular expression the whole path must match (use `path` if you can).',
      }),
    ),
    methods: Type.Optional(
      Type.Array(Type.Unsafe<HttpMethod>({ type: 'string', enum: [...HTTP_METHODS] }), {
        minItems: 1,
        uniqueItems: true,
        description: 'Methods that match. Default: any method.',
      }),
    ),
    headers: Type.Optional(
      Type.Record(Type.String({ minLength: 1 }), ValueMatchSchema, {
        description: 'Request headers that must match (names are case-insensitive).',
      }),
    ),
    query: Type.Optional(
      Type.Record(Type.String({ minLength: 1 }), ValueMatchSchema, {
        description: 'Query parameters that must match.',
      }),
    ),
  },
  { additionalProperties: false },
);

export const DestinationSchema = Type.Object(
  {
    service: Type.String({ minLength: 1, description: 'Name of a service.' }),
    subset: Type.Optional(Type.String({ minLength: 1, description: 'Name of a subset of that service.' })),
    weight: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 100,
        description: 'Percentage of the route traffic; the weights of a route sum to 100. 0 sends nothing.',
      }),
    ),
  },
  { additionalProperties: false },
);

export const RewriteSchema = Type.Object(
  {
    prefix: Type.Optional(
      Type.String({
        pattern: '^/',
        description:
          'Replaces the part of the path matched before `*` (or the whole exact path) with this, e.g. `/v2/`. ' +
          '`/` strips the prefix.',
      }),
    ),
    regex: Type.Optional(
      Type.Object(
        {
          pattern: Type.String({ minLength: 1, description: 'Regular expression applied to the path.' }),
          substitution: Type.String({ description: 'Replacement; `$1` or `$<name>` refer to groups.' }),
        },
        { additionalProperties: false },
      ),
    ),
    host: Type.Optional(Type.String({ minLength: 1, description: 'Host header sent upstream.' })),
    autoHost: Type.Optional(
      Type.Boolean({ description: 'Send the chosen endpoint’s host:port as Host. Default false (the client’s Host).' }),
    ),
  },
  { additionalProperties: false, description: 'Changes to the request before it goes upstream.' },
);

export const RouteTimeoutsSchema = Type.Object(
  {
    request: Type.Optional(Duration('Overrides the service’s `timeouts.request` for this route; 0 disables it.')),
    idle: Type.Optional(Duration('Overrides the service’s `timeouts.idle` for this route; 0 disables it.')),
  },
  { additionalProperties: false },
);

export const DirectResponseSchema = Type.Object(
  {
    status: Type.Integer({ minimum: 200, maximum: 599 }),
    body: Type.Optional(Type.String({ description: 'Response body. Default empty.' })),
    contentType: Type.Optional(Type.String({ description: 'Default `text/plain; charset=utf-8`.' })),
  },
  { additionalProperties: false, description: 'Answer at the proxy without any upstream.' },
);

export const RouteSchema = Type.Object(
  {
    name: Name('Unique name of the route; appears in logs, metrics and the admin API.'),
    listeners: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        minItems: 1,
        uniqueItems: true,
        description:
          'Names of the listeners this route is served on. Default: every listener. A sidecar uses it to keep ' +
          'its inbound route (to the app) apart from its outbound routes (to other services).',
      }),
    ),
    match: Type.Optional(RouteMatchSchema),
    service: Type.Optional(
      Type.String({ minLength: 1, description: 'Shorthand for one destination with weight 100.' }),
    ),
    destinations: Type.Optional(
      Type.Array(DestinationSchema, { minItems: 1, description: 'Weighted destinations; weights sum to 100.' }),
    ),
    directResponse: Type.Optional(DirectResponseSchema),
    rewrite: Type.Optional(RewriteSchema),
    timeouts: Type.Optional(RouteTimeoutsSchema),
  },
  {
    additionalProperties: false,
    description: 'Match plus action: forward to `service` or `destinations`, or answer with `directResponse`.',
  },
);

export const ConfigSchema = Type.Object(
  {
    $schema: Type.Optional(Type.String({ description: 'Path or URL of this schema, for editors.' })),
    listeners: Type.Optional(Type.Array(ListenerSchema, { description: 'Client-facing ports.' })),
    admin: Type.Optional(AdminSchema),
    services: Type.Optional(Type.Array(ServiceSchema)),
    routes: Type.Optional(Type.Array(RouteSchema, { description: 'Routes; see docs/routing.md for precedence.' })),
  },
  { additionalProperties: false, title: 'meshgate configuration' },
);

export type Config = Static<typeof ConfigSchema>;
export type ListenerConfig = Static<typeof ListenerSchema>;
export type AdminConfig = Static<typeof AdminSchema>;
export type ServiceConfig = Static<typeof ServiceSchema>;
export type EndpointConfig = Static<typeof EndpointSchema>;
export type RouteConfig = Static<typeof RouteSchema>;
export type RouteMatchConfig = Static<typeof RouteMatchSchema>;
export type ValueMatchConfig = Static<typeof ValueMatchSchema>;
export type DestinationConfig = Static<typeof DestinationSchema>;
export type RewriteConfig = Static<typeof RewriteSchema>;
export type { TSchema };
