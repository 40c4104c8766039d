/**
 * The mesh contract: what proxies, instances and tools exchange with the control plane. The proxy
 * and the control plane share only these types (and the config schema); docs/mesh-protocol.md
 * describes the exchange. Schemas are TypeBox (JSON Schema) so the control plane validates what it
 * receives at the boundary; the proxy imports types only.
 */
import { type Static, Type } from '@sinclair/typebox';
import { DURATION_PATTERN } from '../core/duration.ts';
import type { Config, ServiceConfig } from './config.ts';
import type { ExplainedTrail } from './explain.ts';
import type { ConfigIssue } from './issues.ts';
import type { ShadowReport } from './shadow.ts';
import {
  MAX_LOOKUP_RECORDS,
  MAX_LOOKUP_TRAILS,
  MAX_TELEMETRY_SERIES,
  renewalProofPayload,
  SERVICE_NAME,
  SERVICE_PATTERN,
  STREAM_EVENTS,
} from './values.ts';

export type { ConfigIssue };
// Defined where code that runs in a proxy can import them without TypeBox.
export { MAX_LOOKUP_RECORDS, MAX_TELEMETRY_SERIES, renewalProofPayload, SERVICE_NAME, SERVICE_PATTERN, STREAM_EVENTS };

/** Name of a service or an id: the same characters as config names, so they can appear in one. */
const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]*$';
const MeshName = (description: string) =>
  Type.String({ minLength: 1, maxLength: 128, pattern: NAME_PATTERN, description });
const Labels = Type.Record(Type.String({ minLength: 1, maxLength: 128 }), Type.String({ maxLength: 256 }), {
  description: 'Free-form labels, e.g. `{ version: v2, zone: eu-1 }`; subsets select instances by them.',
});

export const HEALTH_STATES = ['healthy', 'unhealthy'] as const;
export type HealthState = (typeof HEALTH_STATES)[number];

// ── Registry ──────────────────────────────────────────────────────────────────────────────────────

/** `PUT /instances/{id}`: registers (or replaces) one instance of a service. */
export const InstanceRegistrationSchema = Type.Object(
  {
    service: Type.String({
      minLength: 1,
      maxLength: 128,
      pattern: SERVICE_PATTERN,
      description: 'Name of the service this instance belongs to; apps reach it by this host name.',
    }),
    address: Type.String({
      minLength: 1,
      maxLength: 253,
      pattern: '^[A-Za-z0-9.:_-]+$',
      description: 'IP address or host name other proxies connect to.',
    }),
    port: Type.Integer({ minimum: 1, maximum: 65535, description: 'Port other proxies connect to.' }),
    labels: Type.Optional(Labels),
    health: Type.Optional(
      Type.Unsafe<HealthState>({
        type: 'string',
        enum: [...HEALTH_STATES],
        description: 'Only healthy instances receive traffic. Default healthy.',
      }),
    ),
    ttlMs: Type.Optional(
      Type.Integer({
        minimum: 1,
        description:
          'Milliseconds without a heartbeat after which the instance is removed. Default 3000; the control plane ' +
          'clamps it to 1000–300000.',
      }),
    ),
  },
  { additionalProperties: false },
);
export type InstanceRegistration = Static<typeof InstanceRegistrationSchema> & { id: string };

/** `PUT /instances/{id}/heartbeat`: keeps an instance alive and may report a new health state. */
export const HeartbeatSchema = Type.Object(
  {
    health: Type.Optional(Type.Unsafe<HealthState>({ type: 'string', enum: [...HEALTH_STATES] })),
  },
  { additionalProperties: false },
);
export type Heartbeat = Static<typeof HeartbeatSchema>;

/** An instance as the registry holds it. Times are milliseconds since the epoch. */
export interface Instance {
  readonly id: string;
  readonly service: string;
  readonly address: string;
  readonly port: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly health: HealthState;
  readonly ttlMs: number;
  readonly registeredAt: number;
  readonly lastHeartbeatAt: number;
}

// ── Push stream ───────────────────────────────────────────────────────────────────────────────────

export const PROXY_KINDS = ['sidecar', 'gateway'] as const;
export type ProxyKind = (typeof PROXY_KINDS)[number];

/** Who a proxy is: the input, with the model and the registry, of the config generated for it. */
export const ProxyIdentitySchema = Type.Object(
  {
    id: MeshName('Unique id of the proxy; a second stream with the same id replaces the first.'),
    kind: Type.Unsafe<ProxyKind>({ type: 'string', enum: [...PROXY_KINDS] }),
    service: Type.Optional(
      MeshName(
        'Sidecar: the service of the instance beside it. Gateway: its name (default `gateway`). Either way the ' +
          'service account of its workload identity.',
      ),
    ),
    instance: Type.Optional(Type.String({ minLength: 1, description: 'Sidecar: its instance id in the registry.' })),
    address: Type.Optional(
      Type.String({ minLength: 1, description: 'Sidecar: the address its inbound listener binds.' }),
    ),
    inboundPort: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
    outboundPort: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
    app: Type.Optional(
      Type.String({ pattern: '^https?://[^/?#]+/?$', description: 'Sidecar: origin of the app it fronts.' }),
    ),
    upstreams: Type.Optional(
      Type.Array(MeshName('A service'), {
        uniqueItems: true,
        description:
          "Sidecar: the services its app calls (its egress, as in Istio's Sidecar resource); it receives only " +
          'those, and hears of changes to no other. Absent: every service in the mesh.',
      }),
    ),
    labels: Type.Optional(Labels),
    meshgateVersion: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);
export type ProxyIdentity = Static<typeof ProxyIdentitySchema>;

/** Body of `POST /stream`, which the control plane answers with a stream of events. */
export const StreamHelloSchema = Type.Object(
  {
    proxy: ProxyIdentitySchema,
    version: Type.Union([Type.String({ minLength: 1 }), Type.Null()], {
      description: 'The version the proxy serves (last ACKed), or null when it has none.',
    }),
    trustBundleDigest: Type.Optional(
      Type.Union([Type.String({ minLength: 1 }), Type.Null()], {
        description: 'Digest of the trust bundle the proxy holds (last ACKed with a push), or null when it has none.',
      }),
    ),
    delta: Type.Optional(
      Type.Boolean({
        description:
          'The proxy applies `delta` events: after the first push on a stream, a change may be sent as what ' +
          'differs from the config last sent on it. Absent or false: every config is sent whole.',
      }),
    ),
  },
  { additionalProperties: false },
);
export type StreamHello = Static<typeof StreamHelloSchema>;

/** First event of every stream. */
export interface WelcomeEvent {
  /** Id of this stream; ACKs name it, and ACKs for an older stream are ignored. */
  stream: string;
  controlPlane: { id: string; startedAt: string };
  /** The control plane writes at least this often; silence for 3× means the stream is dead. */
  keepaliveMs: number;
  /**
   * Present when the control plane issues workload identities: the SPIFFE ID this proxy gets from
   * `POST /certificates` (decided by its credential and its hello), and the trust domain.
   */
  identity?: { spiffeId: string; trustDomain: string };
  /**
   * Present when the control plane collects telemetry (the dashboard, docs/dashboard.md): the proxy
   * posts a `TelemetryReport` to `POST /telemetry` every `intervalMs`. Absent: it sends none.
   */
  telemetry?: { intervalMs: number };
}

/** The roots every proxy trusts (docs/security.md), carried with each push when the control plane has a CA. */
export interface TrustBundleRef {
  /** Concatenated PEM certificates, the active root first. */
  pem: string;
  /** SHA-256 (hex) of `pem`: changes exactly when the bundle does. */
  digest: string;
}

/** A config for the proxy, state of the world: it replaces whatever the proxy had. */
export interface PushEvent {
  /** Hash of `config`: equal versions are equal configs, across control plane restarts. */
  version: string;
  /** Unique per push; the ACK or NACK quotes it. */
  nonce: string;
  /** Ids of the changes this push carries (see `GET /changes/{id}`). */
  changes: number[];
  config: Config;
  /**
   * The trust bundle, when the control plane issues identities. A push is also sent when only the
   * bundle changed (a root rotation), with the same `version`.
   */
  trustBundle?: TrustBundleRef;
}

/**
 * `lookup` event: the control plane asks every proxy for its recent records of some requests (the
 * dashboard's request lookup). The proxy answers at `POST /lookups` with the records whose request id
 * or trace id is one of `match`; a proxy that keeps no records (or an older one) does not answer.
 */
export interface LookupEvent {
  /** Quoted by the answer. */
  id: string;
  /** Request ids and trace ids, at most 16. */
  match: string[];
  /**
   * Ask for the decision trails of these requests (`meshgate explain`) rather than their records: the
   * proxy answers with `trails` (and no records). A proxy that keeps no trails answers none.
   */
  explain?: boolean;
}

/**
 * The control plane's shadow config (docs/shadow.md): `set` carries the config this proxy would get
 * from the candidate model, which the proxy validates and puts beside its live one (replacing any
 * shadow it had); `report` asks for its counts; `clear` removes it. Every one is answered on
 * `POST /lookups` with `shadow` (and the event's id).
 */
export interface ShadowEvent {
  /** Quoted by the answer. */
  id: string;
  op: 'set' | 'report' | 'clear';
  /** With `set`. */
  shadow?: {
    /** Names the shadow, the same at every proxy. */
    id: string;
    config: Config;
    samplePercent: number;
  };
}

/**
 * What differs between the config last sent on this stream (`base`, pushed whole or reached by earlier
 * deltas) and the next one, `version`. Sent only to proxies that said `delta: true` in their hello.
 * The proxy rebuilds the whole config (base, then `unset`, `set`, `services`), checks that its hash is
 * `version`, and answers it like a push. A proxy that does not hold `base`, or rebuilds another
 * version, reconnects (its hello says what it serves, and the control plane pushes whole).
 */
export interface DeltaEvent {
  version: string;
  nonce: string;
  changes: number[];
  base: string;
  /** Services replaced whole, each in the place of the base's service of that name (names and order unchanged). */
  services?: ServiceConfig[];
  /** Top-level fields replaced whole (`services` among them when the names or their order changed). */
  set?: Partial<Config>;
  /** Top-level fields the new config no longer has. */
  unset?: string[];
  trustBundle?: TrustBundleRef;
}

/** `POST /ack`: the proxy's answer to one push. */
export const AckSchema = Type.Object(
  {
    proxy: Type.String({ minLength: 1 }),
    stream: Type.String({ minLength: 1 }),
    nonce: Type.String({ minLength: 1 }),
    /** The version pushed (ACK: now in force; NACK: refused). */
    version: Type.String({ minLength: 1 }),
    status: Type.Unsafe<'ack' | 'nack'>({ type: 'string', enum: ['ack', 'nack'] }),
    /** ACK: milliseconds the proxy spent validating and applying. */
    applyMs: Type.Optional(Type.Number({ minimum: 0 })),
    /** The proxy process's resident memory (bytes) when it answered: `GET /status` sums them. */
    rssBytes: Type.Optional(Type.Integer({ minimum: 0 })),
    /** NACK: why, and the version the proxy keeps serving. */
    error: Type.Optional(
      Type.Object(
        {
          message: Type.String(),
          issues: Type.Optional(Type.Array(Type.Unknown())),
        },
        { additionalProperties: false },
      ),
    ),
    kept: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  },
  { additionalProperties: false },
);
export type Ack = Omit<Static<typeof AckSchema>, 'error'> & { error?: { message: string; issues?: ConfigIssue[] } };

// ── Views the control plane serves (for `meshgate status`, `proxy-status`, `proxy-config`) ────────

/** Sync state of one proxy, as in `istioctl proxy-status`. */
export const SYNC_STATES = ['SYNCED', 'PENDING', 'NACKED', 'NOT_SENT', 'DISCONNECTED'] as const;
export type SyncState = (typeof SYNC_STATES)[number];

export interface ProxyStatusView {
  id: string;
  kind: ProxyKind;
  service: string | null;
  identity: ProxyIdentity;
  connected: boolean;
  state: SyncState;
  /** The version the control plane would push now. */
  expectedVersion: string | null;
  /** Last version pushed, and last version ACKed (the one in force). */
  sentVersion: string | null;
  ackedVersion: string | null;
  lastAckAt: string | null;
  lastNack: { version: string; nonce: string; at: string; error: { message: string; issues?: ConfigIssue[] } } | null;
  connectedAt: string | null;
  disconnectedAt: string | null;
  stream: string | null;
  /** Digest of the trust bundle the proxy ACKed last (or said it holds), null when unknown. */
  ackedTrustBundle?: string | null;
  /** The last certificate issued to this proxy by this control plane (since its start), null when none. */
  certificate?: IssuedCertificateView | null;
  /** The proxy process's resident memory (bytes) at its last answer, and when; null before one. */
  rssBytes?: number | null;
  rssAt?: string | null;
}

/** What tools show of an issued certificate: never the key (the control plane never has it). */
export interface IssuedCertificateView {
  spiffeId: string;
  /** Upper-case hex. */
  serial: string;
  issuer: string;
  notBefore: string;
  notAfter: string;
  /** How the proxy proved itself: `join token`, `certificate` (a renewal), or `open`. */
  authenticatedBy: string;
}

// ── Certificates ──────────────────────────────────────────────────────────────────────────────────

/**
 * `POST /certificates`: a CSR for the proxy `proxy` (whose stream is open). Authenticated by a join
 * token, or, for a renewal, by `proof`: a signature with the key of the proxy's current certificate.
 */
export const CertificateRequestSchema = Type.Object(
  {
    proxy: Type.String({ minLength: 1, maxLength: 128 }),
    csr: Type.String({ minLength: 1, description: 'PEM PKCS#10 request (ECDSA P-256).' }),
    proof: Type.Optional(
      Type.Object(
        {
          certChainPem: Type.String({ minLength: 1, description: 'The current certificate, then any intermediate.' }),
          signedAt: Type.String({
            minLength: 1,
            description: 'ISO 8601; within 5 minutes of the control plane clock.',
          }),
          signature: Type.String({
            minLength: 1,
            description:
              'Base64 ECDSA/SHA-256 signature, by the current key, of renewalProofPayload(proxy, signedAt, csr).',
          }),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type CertificateRequest = Static<typeof CertificateRequestSchema>;

/** The answer to `POST /certificates`. */
export interface CertificateResponse {
  spiffeId: string;
  certChainPem: string;
  bundlePem: string;
  serial: string;
  notAfter: string;
}

/** What became of one change at one proxy. */
export interface ChangeResult {
  proxy: string;
  status: 'pending' | 'applied' | 'rejected' | 'disconnected';
  version: string;
  nonce: string;
  pushedAt: string;
  /** When the ACK or NACK arrived. */
  answeredAt: string | null;
  /** From the change to the ACK (the propagation time at this proxy). */
  propagationMs: number | null;
  error?: { message: string; issues?: ConfigIssue[] };
}

export interface ChangeRecord {
  id: number;
  kind: 'config' | 'registry' | 'startup';
  /** What happened, for a human: `instance photo-service-1 registered`, `config reloaded from …`. */
  cause: string;
  at: string;
  /** Model version after the change. */
  modelVersion: string;
  /**
   * `no-op`: no proxy's config changed; `propagating`: some proxy has not answered; `applied`: every
   * proxy it was pushed to ACKed; `rejected`: some proxy NACKed; `incomplete`: some proxy disconnected
   * before it answered.
   */
  status: 'no-op' | 'propagating' | 'applied' | 'rejected' | 'incomplete' | 'rolled-back';
  /** Proxies whose config did not change, so they were sent nothing. */
  unaffected: number;
  results: ChangeResult[];
  propagation: { applied: number; p50Ms: number | null; p99Ms: number | null; maxMs: number | null };
  /** A change rolled out to canary proxies first (`POST /rollouts`): how it went. */
  rollout?: RolloutView;
}

// ── Guarded rollouts (docs/rollout.md) ───────────────────────────────────────────────────────────

/** `10%` (of the proxies the change affects) or a count of proxies, e.g. `2`. */
export const CANARY_SHARE_PATTERN = '^(100|[1-9][0-9]?)(\\.[0-9]+)?%$|^[1-9][0-9]*$';

/** How a change is rolled out: to a share of the affected proxies first, watched, then promoted or rolled back. */
export const RolloutOptionsSchema = Type.Object(
  {
    canaryProxies: Type.Union([Type.String({ pattern: CANARY_SHARE_PATTERN }), Type.Integer({ minimum: 1 })], {
      description:
        'Which proxies get the change first: a share of the proxies whose config it changes (`10%`, rounded up) or a count (`2`); always at least one.',
    }),
    watch: Type.Optional(
      Type.String({
        pattern: DURATION_PATTERN,
        description:
          'How long the canary proxies are watched after each has applied the change, before it goes to every proxy. Default 60s; 0: promoted as soon as every canary ACKed.',
      }),
    ),
    thresholds: Type.Optional(
      Type.Object(
        {
          errorRate: Type.Optional(
            Type.Number({
              minimum: 0,
              maximum: 1,
              description:
                "Share of the canaries' requests answered 5xx (or not at all) above which the change is rolled back. Default 0.05; 0: any error.",
            }),
          ),
          p99: Type.Optional(
            Type.String({
              pattern: DURATION_PATTERN,
              description:
                "The canaries' p99 latency above which the change is rolled back. Default: latency is not judged.",
            }),
          ),
          minRequests: Type.Optional(
            Type.Integer({
              minimum: 0,
              description:
                'Requests the canaries must have served before the thresholds are judged. Default 20; 0: from the first request.',
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type RolloutOptions = Static<typeof RolloutOptionsSchema>;

/** `POST /rollouts`: a model (as `PUT /config` takes it) and how to roll it out. */
export const RolloutRequestSchema = Type.Object(
  {
    config: Type.String({ description: 'The whole model, YAML or JSON text, as the body of PUT /config.' }),
    rollout: RolloutOptionsSchema,
  },
  { additionalProperties: false },
);
export type RolloutRequest = Static<typeof RolloutRequestSchema>;

/** Golden signals of a group of proxies (the canaries, or the baseline) since the rollout began. */
export interface RolloutSignals {
  /** Proxies that reported twice or more since (the first report is the starting point). */
  proxies: number;
  requests: number;
  /** Answered 5xx, or not answered. */
  errors: number;
  /** errors / requests; null without requests. */
  errorRate: number | null;
  /** From the summed latency buckets (interpolated inside a bucket); null without requests. */
  p99Ms: number | null;
}

/** Why a rollout ended as it did. */
export interface RolloutDecision {
  outcome: 'promoted' | 'rolled-back';
  /**
   * `watch`: the window passed with no threshold crossed; `threshold`: a canary metric crossed one;
   * `nack`: a canary proxy rejected its config; `operator`: promoted or aborted by API;
   * `no-answer`: a canary did not answer in time; `canaries-gone`: every canary disconnected;
   * `no-proxies`: no connected proxy's config changes, so it went to all at once; `superseded`:
   * another model was put in force (through another control plane).
   */
  by: 'watch' | 'threshold' | 'nack' | 'operator' | 'no-answer' | 'canaries-gone' | 'no-proxies' | 'superseded';
  /** The reason in one sentence, with the proxy, metric, measured value and threshold it names. */
  reason: string;
  at: string;
  proxy?: string;
  error?: { message: string; issues?: ConfigIssue[] };
  metric?: 'errorRate' | 'p99Ms';
  value?: number;
  threshold?: number;
}

export interface RolloutView {
  /** `canary`: only the canaries have it, and they are watched; then `promoted` or `rolled-back`. */
  state: 'canary' | 'promoted' | 'rolled-back';
  canaryProxies: string;
  watchMs: number;
  thresholds: { errorRate: number; p99Ms: number | null; minRequests: number };
  /** The model version every other proxy kept during the canary, and the canaries got back on a rollback. */
  previousVersion: string;
  /** Canary proxies, by id. */
  canaries: string[];
  /** The other proxies the change affects: kept on the previous version until promotion. */
  baseline: string[];
  startedAt: string;
  /** When every canary had answered (the watch began); null before. */
  watchStartedAt: string | null;
  /** When the watch ends (null before it began). */
  watchEndsAt: string | null;
  decision: RolloutDecision | null;
  /** The last measurement (updated with each canary report). */
  signals: { canary: RolloutSignals; baseline: RolloutSignals } | null;
  /** The change that pushed the previous version back to the canaries. */
  rollbackChange: number | null;
}

// ── Telemetry for the dashboard (docs/dashboard.md) ───────────────────────────────────────────────

const Count = Type.Number({ minimum: 0 });

/**
 * `POST /telemetry`: a proxy's traffic since its counters started, read from its own metrics (the
 * numbers `GET /metrics` shows), every `WelcomeEvent.telemetry.intervalMs`. Counts are cumulative, so
 * a lost report loses no traffic: the control plane takes differences between reports, as Prometheus
 * takes `rate()` of a counter.
 */
export const TelemetryReportSchema = Type.Object(
  {
    proxy: Type.String({ minLength: 1, maxLength: 128 }),
    stream: Type.String({ minLength: 1, maxLength: 128 }),
    /** When the counters started (ms since the epoch): another value means they restarted from zero. */
    since: Type.Number({ minimum: 0 }),
    /** Upper bounds (seconds) of the latency buckets; `series[].latency` has one more slot (+Inf). */
    latencyBounds: Type.Array(Type.Number({ minimum: 0 }), { maxItems: 64 }),
    series: Type.Array(
      Type.Object(
        {
          /** The route's name (`inbound` and `outbound.NAME` on a sidecar), '' when none matched. */
          route: Type.String({ maxLength: 256 }),
          /** The upstream service, '' when none. */
          service: Type.String({ maxLength: 256 }),
          requests: Count,
          /** Answered 5xx, or not answered at all. */
          errors: Count,
          /** Answered 4xx (refusals, rate limits included). */
          clientErrors: Count,
          retries: Count,
          rateLimited: Count,
          /** Requests per latency bucket (not cumulative); the last slot is +Inf. */
          latency: Type.Array(Count, { maxItems: 65 }),
        },
        { additionalProperties: false },
      ),
      { maxItems: MAX_TELEMETRY_SERIES },
    ),
    /** The state of each upstream service, as the proxy sees it now. */
    services: Type.Array(
      Type.Object(
        {
          name: Type.String({ minLength: 1, maxLength: 256 }),
          endpoints: Type.Object({ healthy: Count, ejected: Count, unhealthy: Count }, { additionalProperties: false }),
          /** Circuit breaker thresholds reached right now (`maxRequests`…); empty: closed. */
          breakerOpen: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 16 }),
          /** Endpoints ejected by outlier detection since start. */
          ejections: Count,
        },
        { additionalProperties: false },
      ),
      { maxItems: MAX_TELEMETRY_SERIES },
    ),
    inflight: Count,
  },
  { additionalProperties: false },
);
export type TelemetryReport = Static<typeof TelemetryReportSchema>;
export type TelemetrySeries = TelemetryReport['series'][number];

/** One request as a proxy remembers it (its small ring of recent requests). */
export const RequestRecordSchema = Type.Object(
  {
    requestId: Type.String({ maxLength: 256 }),
    traceId: Type.Union([Type.String({ maxLength: 64 }), Type.Null()]),
    /** This hop's span id, when traced. */
    spanId: Type.Union([Type.String({ maxLength: 32 }), Type.Null()]),
    /** Arrival, ms since the epoch. */
    start: Type.Number(),
    method: Type.String({ maxLength: 32 }),
    host: Type.String({ maxLength: 512 }),
    path: Type.String({ maxLength: 2048 }),
    route: Type.String({ maxLength: 256 }),
    service: Type.String({ maxLength: 256 }),
    subset: Type.Union([Type.String({ maxLength: 256 }), Type.Null()]),
    endpoint: Type.Union([Type.String({ maxLength: 512 }), Type.Null()]),
    status: Type.Integer(),
    code: Type.Union([Type.String({ maxLength: 64 }), Type.Null()]),
    durationMs: Type.Number(),
    upstreamMs: Type.Union([Type.Number(), Type.Null()]),
    tries: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
);
export type RequestRecord = Static<typeof RequestRecordSchema>;

/** `POST /lookups`: a proxy's answer to a `lookup` event. */
export const LookupAnswerSchema = Type.Object(
  {
    proxy: Type.String({ minLength: 1, maxLength: 128 }),
    stream: Type.String({ minLength: 1, maxLength: 128 }),
    id: Type.String({ minLength: 1, maxLength: 64 }),
    records: Type.Array(RequestRecordSchema, { maxItems: MAX_LOOKUP_RECORDS }),
    /** Decision trails, when the lookup asked for them (api/explain.ts `ExplainedTrail`, built by the proxy). */
    trails: Type.Optional(
      Type.Array(
        Type.Unsafe<ExplainedTrail>(
          Type.Object(
            { requestId: Type.String({ maxLength: 256 }), start: Type.Number() },
            { additionalProperties: true },
          ),
        ),
        { maxItems: MAX_LOOKUP_TRAILS },
      ),
    ),
    /**
     * The answer to a `shadow` event: the proxy's report (summed over its processes; null when it has
     * no shadow) or why it could not set the shadow config.
     */
    shadow: Type.Optional(
      Type.Object(
        {
          error: Type.Optional(Type.String({ maxLength: 4096 })),
          report: Type.Optional(
            Type.Union([
              Type.Null(),
              Type.Unsafe<ShadowReport>(
                Type.Object(
                  {
                    hash: Type.String({ maxLength: 128 }),
                    since: Type.String({ maxLength: 64 }),
                    processes: Type.Integer({ minimum: 0 }),
                    totals: Type.Object({}, { additionalProperties: true }),
                  },
                  { additionalProperties: true },
                ),
              ),
            ]),
          ),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type LookupAnswer = Static<typeof LookupAnswerSchema>;
/** A proxy's answer to a `shadow` event. */
export type ShadowAnswer = NonNullable<LookupAnswer['shadow']>;
