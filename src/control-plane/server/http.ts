/**
 * The control plane's HTTP API (docs/mesh-protocol.md): the push stream and ACKs for proxies, the
 * registry for instances, and read/apply endpoints for people and tools. JSON everywhere; the push
 * stream is `text/event-stream`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { addDashboard } from '../../admin/dashboard/api.ts';
import { type AdminHandler, type AdminReply, AdminServer, readBody } from '../../admin/server.ts';
import { readShadowPut } from '../../admin/shadow-endpoints.ts';
import {
  type Ack,
  AckSchema,
  type CertificateRequest,
  CertificateRequestSchema,
  type CertificateResponse,
  type Heartbeat,
  HeartbeatSchema,
  type Instance,
  type InstanceRegistration,
  type LookupAnswer,
  LookupAnswerSchema,
  type RolloutRequest,
  RolloutRequestSchema,
  type StreamHello,
  StreamHelloSchema,
  type TelemetryReport,
  TelemetryReportSchema,
  type WelcomeEvent,
} from '../../api/mesh.ts';
import type { LoadOptions } from '../../config/load.ts';
import { redact, redactText } from '../../config/redact.ts';
import { adminApiChange } from '../../config/sources/admin-api/admin-api.ts';
import { MAX_MESH_MESSAGE_BYTES, MAX_MODEL_BODY_BYTES } from '../../core/defaults.ts';
import { spiffeIdOf } from '../../core/spiffe.ts';
import type { Logger } from '../../observability/logger.ts';
import { verifyRenewalProof } from '../auth/renewal.ts';
import {
  Authenticator,
  describePrincipal,
  mayActAs,
  mayRegister,
  namespaceOf,
  type Principal,
  serviceAccountOf,
} from '../auth/tokens.ts';
import type { CertificateAuthority } from '../ca/ca.ts';
import { CaError } from '../ca/errors.ts';
import { RegistrationError } from '../registry/registry.ts';
import { RolloutRefused } from '../rollout/rollout.ts';
import { MeshShadow } from '../shadow/shadow.ts';
import type { ControlPlane } from './control-plane.ts';
import { ControlPlaneDashboard } from './dashboard.ts';
import { type ModelPipeline, modelPipeline } from './model-pipeline.ts';
import { ProxyQuestions } from './questions.ts';
import type { TraceQuery } from './trace-query.ts';

const ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false });
const validators = {
  hello: ajv.compile(StreamHelloSchema),
  ack: ajv.compile(AckSchema),
  heartbeat: ajv.compile(HeartbeatSchema),
  certificate: ajv.compile(CertificateRequestSchema),
  telemetry: ajv.compile(TelemetryReportSchema),
  lookup: ajv.compile(LookupAnswerSchema),
  rollout: ajv.compile(RolloutRequestSchema),
};

const REALM = 'Bearer realm="meshgate-control-plane"';

/** A problem+json reply (RFC 9457) with a stable code; never names the token that was presented. */
function problem(status: number, code: string, title: string, detail: string): AdminReply {
  return {
    status,
    body: JSON.stringify({ type: 'about:blank', title, status, code, detail, error: detail }),
    contentType: 'application/problem+json',
    ...(status === 401 ? { headers: { 'www-authenticate': REALM } } : {}),
  };
}

const unauthorized = (detail: string) => problem(401, 'MG_UNAUTHORIZED', 'Authentication required', detail);
const forbidden = (detail: string) => problem(403, 'MG_FORBIDDEN', 'Not allowed', detail);
const NO_TOKEN = 'send Authorization: Bearer <token> (a join token for proxies, an operator token for tools)';

type Json = Record<string, unknown>;

function problems(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? [])
    .map((e) =>
      e.keyword === 'additionalProperties'
        ? `${e.instancePath || '/'}: unknown field "${(e.params as { additionalProperty: string }).additionalProperty}"`
        : `${e.instancePath || '/'}: ${e.message}`,
    )
    .join('; ');
}

async function readJson<T>(req: IncomingMessage, validate: ValidateFunction | null, limit = MAX_MESH_MESSAGE_BYTES) {
  const text = await readBody(req, limit);
  let value: unknown;
  try {
    value = text.trim() === '' ? {} : JSON.parse(text);
  } catch (e) {
    return { ok: false as const, error: `the body is not JSON: ${(e as Error).message}` };
  }
  if (validate && !validate(value)) return { ok: false as const, error: problems(validate.errors) };
  return { ok: true as const, value: value as T };
}

export function instanceView(i: Instance) {
  return {
    ...i,
    registeredAt: new Date(i.registeredAt).toISOString(),
    lastHeartbeatAt: new Date(i.lastHeartbeatAt).toISOString(),
    expiresAt: new Date(i.lastHeartbeatAt + i.ttlMs).toISOString(),
  };
}

/**
 * `options.catalog`: the plugins a model applied with `PUT /config` may name. `options.pipeline`: the
 * config pipeline `PUT /config` submits to, shared with the control plane's other sources so their
 * changes run one at a time (default: one of its own).
 */
export function controlPlaneApi(
  cp: ControlPlane,
  log: Logger,
  options: Pick<LoadOptions, 'catalog'> & {
    pipeline?: ModelPipeline;
    /** Who may call what (docs/security.md). Default: no tokens, every caller allowed (open mode). */
    auth?: Authenticator;
    /** Issues workload certificates at `POST /certificates`; without it the endpoint answers 404. */
    ca?: CertificateAuthority;
    /** Where a request lookup reads the spans of its traces (`--trace-query`). */
    traceQuery?: TraceQuery;
  } = {},
): AdminServer {
  const admin = new AdminServer();
  const pipeline = options.pipeline ?? modelPipeline(cp, log, options.catalog);
  const auth = options.auth ?? new Authenticator({});
  const ca = options.ca;
  const bad = (error: string) => ({ status: 400, body: { error } });
  /** Operator endpoints: views and changes of the whole mesh. */
  const operator =
    (handler: AdminHandler): AdminHandler =>
    (req, url, params) => {
      const p = auth.authenticate(req);
      if (p === undefined) return unauthorized(NO_TOKEN);
      if (p.kind !== 'operator' && p.kind !== 'open')
        return forbidden(`this endpoint needs an operator token; the request has a ${describePrincipal(p)}`);
      return handler(req, url, params);
    };
  /** Proxy endpoints: the handler decides, from the principal, what the caller may touch. */
  const proxy =
    (handler: (p: Principal, ...args: Parameters<AdminHandler>) => ReturnType<AdminHandler>): AdminHandler =>
    (req, url, params) => {
      const p = auth.authenticate(req);
      if (p === undefined) return unauthorized(NO_TOKEN);
      return handler(p, req, url, params);
    };
  /** Instances a principal may not touch: registered under another service. */
  const instanceRefusal = (p: Principal, service: string, id: string) =>
    mayRegister(p, service)
      ? undefined
      : forbidden(`a ${describePrincipal(p)} may not register or change instance ${id} of service ${service}`);

  admin
    .route('GET /live', () => ({ status: 200, body: { status: 'live' } }))
    .route('GET /ready', () => ({ status: 200, body: { status: cp.isWarm ? 'ready' : 'warming up' } }))
    .route(
      'GET /status',
      operator(async () => ({ status: 200, body: { ...(await statusView(cp)), pipeline: pipeline.status() } })),
    )
    .route(
      'GET /metrics',
      operator(async () => {
        const registry = cp.metrics.registry;
        return { status: 200, body: await registry.metrics(), contentType: registry.contentType };
      }),
    );

  // ── model ──
  admin
    .route(
      'GET /config',
      operator(() => {
        const m = cp.currentModel;
        return {
          status: 200,
          body: { version: m.version, source: m.source, loadedAt: m.loadedAt.toISOString(), config: redact(m.config) },
        };
      }),
    )
    .route(
      'GET /config/source',
      operator(() => {
        const m = cp.currentModel;
        const texts = m.texts.map((t) => ({ ...t, text: redactText(t.text) }));
        return { status: 200, body: { version: m.version, source: m.source, texts } };
      }),
    )
    .route(
      'PUT /config',
      operator(async (req) => {
        const text = await readBody(req, MAX_MODEL_BODY_BYTES);
        const outcome = await pipeline.submit(adminApiChange(text));
        switch (outcome.status) {
          case 'rejected':
            return { status: 400, body: { error: 'the config is not valid', issues: outcome.issues } };
          case 'applied':
            return { status: 200, body: { version: outcome.hash, change: outcome.report.change, unchanged: false } };
          case 'unchanged':
            return { status: 200, body: { version: outcome.hash, change: null, unchanged: true } };
          default:
            if (outcome.status === 'failed' && outcome.error instanceof RolloutRefused)
              return problem(outcome.error.status, outcome.error.code, 'Model change refused', outcome.error.message);
            return { status: 500, body: { error: outcome.status === 'failed' ? outcome.error.message : 'superseded' } };
        }
      }),
    );

  // ── guarded rollouts (docs/rollout.md) ──
  admin
    .route(
      'POST /rollouts',
      operator(async (req) => {
        const body = await readJson<RolloutRequest>(req, validators.rollout, MAX_MODEL_BODY_BYTES);
        if (!body.ok) return bad(body.error);
        const { config, rollout } = body.value;
        const outcome = await pipeline.submit({ ...adminApiChange(config), intent: { rollout } });
        switch (outcome.status) {
          case 'rejected':
            return { status: 400, body: { error: 'the config is not valid', issues: outcome.issues } };
          case 'applied': {
            const change = outcome.report.change;
            const record = change === null ? undefined : await cp.changes.read(change);
            return {
              status: 202,
              body: { version: outcome.hash, change, unchanged: false, rollout: record?.rollout ?? null },
            };
          }
          case 'unchanged':
            return { status: 200, body: { version: outcome.hash, change: null, unchanged: true, rollout: null } };
          default:
            if (outcome.status === 'failed' && outcome.error instanceof RolloutRefused)
              return problem(outcome.error.status, outcome.error.code, 'Rollout refused', outcome.error.message);
            return { status: 500, body: { error: outcome.status === 'failed' ? outcome.error.message : 'superseded' } };
        }
      }),
    )
    .route(
      'GET /rollouts/current',
      operator(() => {
        const current = cp.rollouts?.current();
        return current
          ? { status: 200, body: current }
          : { status: 404, body: { error: 'no rollout is being watched', lastChange: cp.rollouts?.last ?? null } };
      }),
    )
    .route(
      'POST /rollouts/current/promote',
      operator(() => {
        const promoted = cp.rollouts?.promoteNow();
        return promoted
          ? { status: 202, body: { change: promoted.change, status: 'promoting' } }
          : { status: 404, body: { error: 'no rollout is being watched' } };
      }),
    )
    .route(
      'POST /rollouts/current/abort',
      operator(() => {
        const aborted = cp.rollouts?.abort();
        return aborted
          ? {
              status: 200,
              body: { change: aborted.change, status: 'rolled-back', rollbackChange: aborted.rollbackChange },
            }
          : { status: 404, body: { error: 'no rollout is being watched' } };
      }),
    );

  // ── registry ──
  admin
    .route(
      'GET /instances',
      operator(() => ({ status: 200, body: { instances: cp.instanceList().map(instanceView) } })),
    )
    .route(
      'PUT /instances/:id',
      proxy(async (p, req, _url, { id }) => {
        const body = await readJson<Omit<InstanceRegistration, 'id'>>(req, null);
        if (!body.ok) return bad(body.error);
        // Both the service it claims and, when the id exists, the service it would replace.
        const existing = cp.instance(id!);
        const refused =
          (existing && instanceRefusal(p, existing.service, id!)) ??
          instanceRefusal(p, String(body.value.service), id!);
        if (refused) return refused;
        try {
          const instance = await cp.registry.register({ ...body.value, id: id! });
          return { status: 200, body: instanceView(instance) };
        } catch (e) {
          if (e instanceof RegistrationError) return bad(e.message);
          throw e;
        }
      }),
    )
    .route(
      'PUT /instances/:id/heartbeat',
      proxy(async (p, req, _url, { id }) => {
        const existing = cp.instance(id!);
        const refused = existing && instanceRefusal(p, existing.service, id!);
        if (refused) return refused;
        const body = await readJson<Heartbeat>(req, validators.heartbeat);
        if (!body.ok) return bad(body.error);
        const instance = await cp.registry.heartbeat(id!, body.value);
        return instance
          ? { status: 200, body: instanceView(instance) }
          : { status: 404, body: { error: `no instance ${id}; register it again` } };
      }),
    )
    .route(
      'DELETE /instances/:id',
      proxy(async (p, _req, _url, { id }) => {
        const existing = cp.instance(id!);
        const refused = existing && instanceRefusal(p, existing.service, id!);
        if (refused) return refused;
        return (await cp.registry.deregister(id!))
          ? { status: 200, body: { deregistered: id } }
          : { status: 404, body: { error: `no instance ${id}` } };
      }),
    );

  // ── proxies and changes ──
  admin
    .route(
      'GET /proxies',
      operator(() => ({ status: 200, body: { proxies: cp.proxyStatuses() } })),
    )
    .route(
      'GET /proxies/:id',
      proxy((p, _req, _url, { id }) => {
        const known = cp.knownIdentity(id!);
        const isOperator = p.kind === 'operator' || p.kind === 'open';
        // A proxy may read its own config; only an operator learns which proxies exist.
        if (!isOperator && (known === undefined || !mayActAs(p, known)))
          return forbidden(`a ${describePrincipal(p)} may read only its own proxies' config`);
        const view = cp.proxyStatus(id!);
        if (!view) return { status: 404, body: { error: `no proxy ${id}`, proxies: cp.proxyIds() } };
        return {
          status: 200,
          body: {
            ...view,
            config: redact(view.config),
            expectedConfig: redact(view.expectedConfig),
            trustBundle: ca ? bundleView(ca) : null,
          },
        };
      }),
    )
    .route(
      'GET /changes',
      operator(async (_req, url) => {
        const limit = Math.min(1000, Math.max(1, Number(url.searchParams.get('limit') ?? 20) || 20));
        return { status: 200, body: { changes: await cp.changes.readRecent(limit) } };
      }),
    )
    .route(
      'GET /changes/:id',
      operator(async (_req, _url, { id }) => {
        const record = /^\d+$/.test(id!) ? await cp.changes.read(Number(id)) : undefined;
        return record
          ? { status: 200, body: record }
          : { status: 404, body: { error: `no change ${id} (the last is ${cp.changes.lastId})` } };
      }),
    )
    .route('GET /trust-bundle', () =>
      // Public by nature (roots only): anyone may learn what the mesh trusts.
      ca
        ? { status: 200, body: bundleView(ca) }
        : { status: 404, body: { error: 'this control plane issues no identities' } },
    );

  // ── certificates ──
  admin.route('POST /certificates', async (req) => {
    if (!ca) return { status: 404, body: { error: 'this control plane issues no identities (it has no CA)' } };
    // The principal first (a bearer token), so an unauthenticated caller learns nothing from the body.
    const bearer = auth.authenticate(req);
    const body = await readJson<CertificateRequest>(req, validators.certificate);
    if (!body.ok) return bearer === undefined ? unauthorized(NO_TOKEN) : bad(body.error);
    const request = body.value;
    let p: Principal | undefined;
    if (request.proof !== undefined) {
      const proven = verifyRenewalProof(
        { ...request, proof: request.proof },
        ca.bundle().pem,
        ca.trustDomain,
        Date.now(),
      );
      if ('problem' in proven) return unauthorized(proven.problem);
      p = proven;
    } else p = bearer;
    if (p === undefined) return unauthorized(NO_TOKEN);
    if (p.kind === 'operator') return forbidden('certificates are issued to proxies (a join token), not operators');
    const identity = cp.connectedIdentity(request.proxy);
    if (identity === undefined)
      return problem(
        409,
        'MG_PROXY_NOT_CONNECTED',
        'Proxy not connected',
        `proxy ${request.proxy} has no open stream: open POST /stream first`,
      );
    if (!mayActAs(p, identity))
      return forbidden(`a ${describePrincipal(p)} may not get a certificate for proxy ${request.proxy}`);
    try {
      const issued = await ca.issue(request.csr, {
        namespace: namespaceOf(p),
        serviceAccount: serviceAccountOf(identity),
      });
      const authenticatedBy = p.kind === 'svid' ? 'certificate' : p.kind === 'open' ? 'open' : 'join token';
      cp.recordCertificate(request.proxy, {
        spiffeId: issued.spiffeId,
        serial: issued.serial,
        issuer: issued.issuer,
        notBefore: issued.notBefore.toISOString(),
        notAfter: issued.notAfter.toISOString(),
        authenticatedBy,
      });
      log.info(
        {
          proxy: request.proxy,
          spiffeId: issued.spiffeId,
          serial: issued.serial,
          notAfter: issued.notAfter,
          authenticatedBy,
        },
        'certificate issued',
      );
      const response: CertificateResponse = {
        spiffeId: issued.spiffeId,
        certChainPem: issued.certChainPem,
        bundlePem: issued.bundlePem,
        serial: issued.serial,
        notAfter: issued.notAfter.toISOString(),
      };
      return { status: 200, body: response };
    } catch (e) {
      if (e instanceof CaError) return problem(e.status, e.code, 'Certificate refused', e.message);
      throw e;
    }
  });

  // ── push stream ──
  admin
    .raw('POST /stream', (req, res) => {
      const p = auth.authenticate(req);
      if (p === undefined) {
        req.resume();
        sendProblem(res, unauthorized(NO_TOKEN));
        return;
      }
      openStream(cp, p, ca, req, res, log).catch((e: Error) => {
        log.error({ err: e.message }, 'push stream failed');
        if (!res.headersSent) sendJson(res, 500, { error: e.message });
        else res.destroy();
      });
    })
    .route(
      'POST /ack',
      proxy(async (p, req) => {
        const body = await readJson<Ack>(req, validators.ack);
        if (!body.ok) return bad(body.error);
        // An answer is tied to the proxy its stream was opened as: only a caller that may act as it.
        const identity = cp.knownIdentity(body.value.proxy);
        if (identity !== undefined && !mayActAs(p, identity))
          return forbidden(`a ${describePrincipal(p)} may not answer for proxy ${body.value.proxy}`);
        const result = cp.acknowledge(body.value);
        return result.ok
          ? { status: 200, body: { status: 'recorded' } }
          : { status: result.status, body: { error: result.error } };
      }),
    );
  // ── the dashboard (docs/dashboard.md): reports and lookup answers from proxies, the page for operators ──
  const questions = new ProxyQuestions(cp);
  const dashboard = new ControlPlaneDashboard(cp, pipeline, questions, {
    catalog: options.catalog,
    traceQuery: options.traceQuery,
  });
  const shadow = new MeshShadow(cp, pipeline, questions);
  /** A proxy's report or answer: from the proxy itself, on its open stream. */
  const fromProxy = (p: Principal, proxy: string, stream: string) => {
    const identity = cp.knownIdentity(proxy);
    if (identity !== undefined && !mayActAs(p, identity))
      return forbidden(`a ${describePrincipal(p)} may not report for proxy ${proxy}`);
    if (identity === undefined || !cp.isOpenStream(proxy, stream))
      return { status: 409, body: { error: `stream ${stream} of proxy ${proxy} is not open` } };
    return undefined;
  };
  admin
    .route(
      'POST /telemetry',
      proxy(async (p, req) => {
        const body = await readJson<TelemetryReport>(req, validators.telemetry);
        if (!body.ok) return bad(body.error);
        const refused = fromProxy(p, body.value.proxy, body.value.stream);
        if (refused) return refused;
        dashboard.ingest(cp.knownIdentity(body.value.proxy)!, body.value);
        cp.rollouts?.observe(body.value.proxy, body.value);
        return { status: 200, body: { status: 'recorded' } };
      }),
    )
    .route(
      'POST /lookups',
      proxy(async (p, req) => {
        const body = await readJson<LookupAnswer>(req, validators.lookup);
        if (!body.ok) return bad(body.error);
        const refused = fromProxy(p, body.value.proxy, body.value.stream);
        if (refused) return refused;
        return questions.answer(body.value)
          ? { status: 200, body: { status: 'recorded' } }
          : { status: 409, body: { error: `no lookup ${body.value.id} waits for proxy ${body.value.proxy}` } };
      }),
    );
  // `meshgate diff --live --control-plane`: a candidate model evaluated by every proxy beside its live config.
  admin
    .route(
      'PUT /shadow',
      operator(async (req, url) => {
        const put = await readShadowPut(req, url);
        return 'status' in put ? put : shadow.set(put.text, put.file, put.samplePercent);
      }),
    )
    .route(
      'GET /shadow/report',
      operator(() => shadow.report()),
    )
    .route(
      'DELETE /shadow',
      operator(() => shadow.clear()),
    );
  // `meshgate explain`: every proxy's decision trails of one request, gathered over the push streams.
  admin.route(
    'GET /requests/:id/explain',
    operator(async (_req, _url, { id }) => {
      if (id!.length === 0 || id!.length > 256)
        return { status: 400, body: { error: 'a request id has 1 to 256 characters' } };
      const result = await dashboard.explain(id!);
      return result.hops.length === 0
        ? {
            status: 404,
            body: {
              ...result,
              error: `no proxy of ${result.answered} answering (of ${result.asked} asked) has a decision trail of request ${id}`,
            },
          }
        : { status: 200, body: result };
    }),
  );
  addDashboard(admin, dashboard, (req) => {
    const p = auth.authenticate(req);
    if (p === undefined) return unauthorized(NO_TOKEN);
    if (p.kind !== 'operator' && p.kind !== 'open')
      return forbidden(`the dashboard needs an operator token; the request has a ${describePrincipal(p)}`);
    return undefined;
  });
  return admin;
}

function bundleView(ca: CertificateAuthority) {
  const b = ca.bundle();
  return {
    trustDomain: ca.trustDomain,
    digest: b.digest,
    roots: b.roots.map((r) => ({
      subject: r.subject,
      fingerprint256: r.fingerprint256,
      notAfter: r.notAfter.toISOString(),
      active: r.active,
      ...(r.retiresAt ? { retiresAt: r.retiresAt.toISOString() } : {}),
    })),
  };
}

function sendProblem(res: ServerResponse, reply: AdminReply) {
  const text = String(reply.body);
  res.writeHead(reply.status, {
    'content-type': reply.contentType ?? 'application/json',
    'content-length': Buffer.byteLength(text),
    ...reply.headers,
  });
  res.end(text);
}

async function openStream(
  cp: ControlPlane,
  p: Principal,
  ca: CertificateAuthority | undefined,
  req: IncomingMessage,
  res: ServerResponse,
  log: Logger,
) {
  const body = await readJson<StreamHello>(req, validators.hello);
  if (!body.ok) {
    sendJson(res, 400, { error: body.error });
    return;
  }
  const hello = body.value;
  if (!mayActAs(p, hello.proxy)) {
    const who =
      hello.proxy.kind === 'sidecar'
        ? `a sidecar of ${hello.proxy.service ?? '(no service)'}`
        : `gateway ${serviceAccountOf(hello.proxy)}`;
    sendProblem(res, forbidden(`a ${describePrincipal(p)} may not subscribe as ${who}`));
    return;
  }
  if (hello.proxy.kind === 'sidecar' && hello.proxy.service === undefined) {
    sendJson(res, 400, { error: 'a sidecar names its service' });
    return;
  }
  let identity: WelcomeEvent['identity'];
  if (ca) {
    try {
      identity = {
        spiffeId: spiffeIdOf(ca.trustDomain, namespaceOf(p), serviceAccountOf(hello.proxy)),
        trustDomain: ca.trustDomain,
      };
    } catch (e) {
      sendJson(res, 400, { error: (e as Error).message });
      return;
    }
  }
  // The proxy may have given up while the hello was read: no stream to open then.
  if (res.destroyed || req.socket.destroyed) return;
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
  res.socket?.setNoDelay(true);
  const sink = {
    send(event: string, data: unknown) {
      // JSON.stringify never emits a raw newline, so one `data:` line holds the whole event.
      res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    },
    close() {
      res.end();
    },
  };
  const { close } = cp.connect(hello, sink, identity ? { identity } : {});
  const keepalive = setInterval(() => res.write(': keepalive\n\n'), cp.keepaliveMs);
  keepalive.unref();
  res.on('close', () => {
    clearInterval(keepalive);
    close();
  });
  res.on('error', (e) => log.debug({ err: e.message }, 'push stream write failed'));
}

function sendJson(res: ServerResponse, status: number, body: Json) {
  const text = JSON.stringify(body) + '\n';
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function statusView(cp: ControlPlane) {
  const proxies = cp.proxyStatuses();
  const byState: Record<string, number> = {};
  for (const p of proxies) byState[p.state] = (byState[p.state] ?? 0) + 1;
  // Connected proxies' resident memory, as each reported with its last answer.
  const reporting = proxies.filter((p) => p.connected && typeof p.rssBytes === 'number');
  const rssBytes = reporting.reduce((sum, p) => sum + p.rssBytes!, 0);
  const instances = cp.instanceList();
  const services = new Map<string, { instances: number; healthy: number }>();
  for (const i of instances) {
    const s = services.get(i.service) ?? { instances: 0, healthy: 0 };
    s.instances++;
    if (i.health === 'healthy') s.healthy++;
    services.set(i.service, s);
  }
  const m = cp.currentModel;
  return {
    controlPlane: { id: cp.id, startedAt: new Date(cp.startedAt).toISOString(), warm: cp.isWarm },
    model: { version: m.version, source: m.source, loadedAt: m.loadedAt.toISOString() },
    instances: { total: instances.length, services: Object.fromEntries(services) },
    proxies: {
      total: proxies.length,
      byState,
      rssBytes,
      rss: Object.fromEntries(reporting.map((p) => [p.id, p.rssBytes!])),
    },
    changes: await cp.changes.readRecent(10),
    rollout: cp.rollouts?.current() ?? null,
  };
}
