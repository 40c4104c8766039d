/**
 * Authorization policies: who may call a service, with Istio's AuthorizationPolicy semantics in
 * meshgate's schema (docs/authorization.md). Part of the config contract (src/api/config.ts includes
 * it as `authorizationPolicies`); no logic here: src/config/authorization.ts checks what the schema
 * cannot express, src/proxy/authz/ compiles and enforces.
 *
 * String values match exactly, or with one `*` at the start (suffix match) or the end (prefix
 * match); `*` alone matches any value that is present.
 */
import { type Static, Type } from '@sinclair/typebox';

export const AUTHZ_ACTIONS = ['ALLOW', 'DENY', 'AUDIT'] as const;
export type AuthzAction = (typeof AUTHZ_ACTIONS)[number];

/** What a policy decided for one request, as the access log's `authz` field and the metric's labels show it. */
export type AuthzResult = 'allow' | 'deny' | 'dry-run-allow' | 'dry-run-deny' | 'audit';

export interface AuthzDecision {
  readonly policy: string;
  readonly action: AuthzAction;
  readonly result: AuthzResult;
}

/** `when` keys (Istio's names); `[…]` keys take a header name or claim name between the brackets. */
export const AUTHZ_WHEN_KEYS = [
  'request.headers[<name>]',
  'request.auth.claims[<claim>]',
  'request.auth.principal',
  'request.auth.audiences',
  'request.auth.presenter',
  'source.principal',
  'source.namespace',
  'source.service',
  'source.ip',
  'remote.ip',
  'destination.port',
] as const;

const Values = (description: string) =>
  Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: `${description} Any one may match.` });

const PortValues = (description: string) =>
  Type.Array(Type.Union([Type.Integer({ minimum: 1, maximum: 65535 }), Type.String({ pattern: '^[0-9]{1,5}$' })]), {
    minItems: 1,
    description: `${description} Numbers, or strings of digits as in Istio. Any one may match.`,
  });

const PRINCIPAL_FORM =
  'A SPIFFE ID `spiffe://<trust-domain>/ns/<namespace>/sa/<service>`, or Istio’s form without the scheme ' +
  '(`cluster.local/ns/default/sa/photo-service`).';

export const AuthzSourceSchema = Type.Object(
  {
    principals: Type.Optional(
      Values(
        `Callers by verified workload identity (the client certificate’s SPIFFE ID). ${PRINCIPAL_FORM} A request ` +
          'without a verified identity matches none.',
      ),
    ),
    notPrincipals: Type.Optional(Values('Callers whose identity is none of these (same forms as `principals`).')),
    services: Type.Optional(
      Values(
        'Callers by service name: the `sa` segment of their SPIFFE ID (meshgate’s shorthand for principals of any ' +
          'trust domain and namespace).',
      ),
    ),
    notServices: Type.Optional(Values('Callers whose service name is none of these.')),
    namespaces: Type.Optional(Values('Callers by the `ns` segment of their SPIFFE ID.')),
    notNamespaces: Type.Optional(Values('Callers whose namespace is none of these.')),
    requestPrincipals: Type.Optional(
      Values(
        'Requests by the principal of the token the `jwt` plugin verified on the route: `<iss>/<sub>` (Istio’s ' +
          'requestPrincipals). `*` matches any request with a verified token that has both claims; a request ' +
          'without one matches none.',
      ),
    ),
    notRequestPrincipals: Type.Optional(
      Values('Requests whose token principal is none of these, or that have no verified token.'),
    ),
  },
  {
    additionalProperties: false,
    description: 'One kind of caller: every field given must match (an absent field matches any caller).',
  },
);

export const AuthzOperationSchema = Type.Object(
  {
    methods: Type.Optional(Values('HTTP methods, upper case, e.g. `GET`.')),
    notMethods: Type.Optional(Values('Methods other than these.')),
    paths: Type.Optional(Values('Request paths (normalised, without the query), e.g. `/api/v1/*` or `*/healthz`.')),
    notPaths: Type.Optional(Values('Paths other than these.')),
    hosts: Type.Optional(Values('Host names the request was sent to (case-insensitive), e.g. `*.example.com`.')),
    notHosts: Type.Optional(Values('Hosts other than these.')),
    ports: Type.Optional(PortValues('The port the request arrived on (the listener’s).')),
    notPorts: Type.Optional(PortValues('Ports other than these.')),
  },
  {
    additionalProperties: false,
    description: 'One kind of request: every field given must match (an absent field matches any request).',
  },
);

export const AuthzConditionSchema = Type.Object(
  {
    key: Type.String({
      minLength: 1,
      description:
        'What to test: `request.headers[<name>]`, `request.auth.claims[<claim>]` (a claim of the token the jwt ' +
        'plugin verified; a list claim matches when any element does), `source.principal`, `source.namespace`, ' +
        '`source.service`, `source.ip` (the connection’s peer address), `remote.ip` (the client address through ' +
        'the listener’s trusted hops) or `destination.port`.',
    }),
    values: Type.Optional(
      Values('Values that match (IP keys: addresses or CIDR blocks). An absent value (no such header) matches none.'),
    ),
    notValues: Type.Optional(
      Values('Values that must not be present; an absent value (no such header or claim) counts as none of them.'),
    ),
  },
  {
    additionalProperties: false,
    description: 'A condition: at least one of `values` and `notValues`, both must hold.',
  },
);

export const AuthzRuleSchema = Type.Object(
  {
    from: Type.Optional(
      Type.Array(AuthzSourceSchema, {
        minItems: 1,
        description: 'Who: any one entry may match. Absent: any caller, identified or not.',
      }),
    ),
    to: Type.Optional(
      Type.Array(AuthzOperationSchema, {
        minItems: 1,
        description: 'What: any one entry may match. Absent: any request.',
      }),
    ),
    when: Type.Optional(
      Type.Array(AuthzConditionSchema, {
        minItems: 1,
        description: 'Further conditions: every one must hold. Absent: none.',
      }),
    ),
  },
  {
    additionalProperties: false,
    description: 'Matches a request when `from`, `to` and `when` all match. `{}` matches every request.',
  },
);

export const AuthorizationPolicySchema = Type.Object(
  {
    name: Type.String({
      minLength: 1,
      maxLength: 128,
      pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$',
      description: 'Unique name of the policy; named in access logs and metrics, never shown to clients.',
    }),
    service: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'The service the policy protects (requests routed to it). Absent: every route (mesh-wide).',
      }),
    ),
    action: Type.Optional(
      Type.Unsafe<AuthzAction>({
        type: 'string',
        enum: [...AUTHZ_ACTIONS],
        description:
          '`ALLOW` (default): once a service has an ALLOW policy, only requests some ALLOW policy matches pass. ' +
          '`DENY`: requests it matches are refused, whatever ALLOW policies say. `AUDIT`: requests it matches are ' +
          'logged and counted, nothing else.',
      }),
    ),
    rules: Type.Optional(
      Type.Array(AuthzRuleSchema, {
        description:
          'The policy matches a request when any rule does. Absent or empty: it matches nothing (an ALLOW policy ' +
          'with no rules therefore refuses every request; `rules: [{}]` matches every request).',
      }),
    ),
    dryRun: Type.Optional(
      Type.Boolean({
        description:
          'Evaluate, log and count, but never enforce: the access log and `*_authz_decisions_total` show what the ' +
          'policy would have refused (`dry-run-deny`) before it is turned on. Default false.',
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'Who may call a service. Order of evaluation: a matching DENY refuses; else, if the service has ALLOW ' +
      'policies and none matches, refused; else allowed. Refusals are 403 `MG_RBAC_DENIED`.',
  },
);

export type AuthorizationPolicyConfig = Static<typeof AuthorizationPolicySchema>;
export type AuthzRuleConfig = Static<typeof AuthzRuleSchema>;
export type AuthzSourceConfig = Static<typeof AuthzSourceSchema>;
export type AuthzOperationConfig = Static<typeof AuthzOperationSchema>;
export type AuthzConditionConfig = Static<typeof AuthzConditionSchema>;
