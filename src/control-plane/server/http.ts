/**
 * The control plane's HTTP API (docs/mesh-protocol.md): the push stream and ACKs for proxies, the
 * registry for instances, and read/apply endpoints for people and tools. JSON everywhere; the push
 * stream is `text/event-stream`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { AdminServer, readBody } from '../../admin/server.ts';
import {
  type Ack,
  AckSchema,
  type Heartbeat,
  HeartbeatSchema,
  type Instance,
  type InstanceRegistration,
  type StreamHello,
  StreamHelloSchema,
} from '../../api/mesh.ts';
import type { LoadOptions } from '../../config/load.ts';
import { redact, redactText } from '../../config/redact.ts';
import { adminApiChange } from '../../config/sources/admin-api/admin-api.ts';
import { MAX_MESH_MESSAGE_BYTES, MAX_MODEL_BODY_BYTES } from '../../core/defaults.ts';
import type { Logger } from '../../observability/logger.ts';
import { RegistrationError } from '../registry/registry.ts';
import type { ControlPlane } from './control-plane.ts';
import { type ModelPipeline, modelPipeline } from './model-pipeline.ts';

const ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false });
const validators = {
  hello: ajv.compile(StreamHelloSchema),
  ack: ajv.compile(AckSchema),
  heartbeat: ajv.compile(HeartbeatSchema),
};

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
  options: Pick<LoadOptions, 'catalog'> & { pipeline?: ModelPipeline } = {},
): AdminServer {
  const admin = new AdminServer();
  const pipeline = options.pipeline ?? modelPipeline(cp, log, options.catalog);
  const bad = (error: string) => ({ status: 400, body: { error } });

  admin
    .route('GET /live', () => ({ status: 200, body: { status: 'live' } }))
    .route('GET /ready', () => ({ status: 200, body: { status: cp.isWarm ? 'ready' : 'warming up' } }))
    .route('GET /status', async () => ({
      status: 200,
      body: { ...(await statusView(cp)), pipeline: pipeline.status() },
    }))
    .route('GET /metrics', async () => {
      const registry = cp.metrics.registry;
      return { status: 200, body: await registry.metrics(), contentType: registry.contentType };
    });

  // ── model ──
  admin
    .route('GET /config', () => {
      const m = cp.currentModel;
      return {
        status: 200,
        body: { version: m.version, source: m.source, loadedAt: m.loadedAt.toISOString(), config: redact(m.config) },
      };
    })
    .route('GET /config/source', () => {
      const m = cp.currentModel;
      const texts = m.texts.map((t) => ({ ...t, text: redactText(t.text) }));
      return { status: 200, body: { version: m.version, source: m.source, texts } };
    })
    .route('PUT /config', async (req) => {
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
          return { status: 500, body: { error: outcome.status === 'failed' ? outcome.error.message : 'superseded' } };
      }
    });

  // ── registry ──
  admin
    .route('GET /instances', () => ({ status: 200, body: { instances: cp.instanceList().map(instanceView) } }))
    .route('PUT /instances/:id', async (req, _url, { id }) => {
      const body = await readJson<Omit<InstanceRegistration, 'id'>>(req, null);
      if (!body.ok) return bad(body.error);
      try {
        const instance = await cp.registry.register({ ...body.value, id: id! });
        return { status: 200, body: instanceView(instance) };
      } catch (e) {
        if (e instanceof RegistrationError) return bad(e.message);
        throw e;
      }
    })
    .route('PUT /instances/:id/heartbeat', async (req, _url, { id }) => {
      const body = await readJson<Heartbeat>(req, validators.heartbeat);
      if (!body.ok) return bad(body.error);
      const instance = await cp.registry.heartbeat(id!, body.value);
      return instance
        ? { status: 200, body: instanceView(instance) }
        : { status: 404, body: { error: `no instance ${id}; register it again` } };
    })
    .route('DELETE /instances/:id', async (_req, _url, { id }) =>
      (await cp.registry.deregister(id!))
        ? { status: 200, body: { deregistered: id } }
        : { status: 404, body: { error: `no instance ${id}` } },
    );

  // ── proxies and changes ──
  admin
    .route('GET /proxies', () => ({ status: 200, body: { proxies: cp.proxyStatuses() } }))
    .route('GET /proxies/:id', (_req, _url, { id }) => {
      const view = cp.proxyStatus(id!);
      if (!view) return { status: 404, body: { error: `no proxy ${id}`, proxies: cp.proxyIds() } };
      return {
        status: 200,
        body: { ...view, config: redact(view.config), expectedConfig: redact(view.expectedConfig) },
      };
    })
    .route('GET /changes', async (_req, url) => {
      const limit = Math.min(1000, Math.max(1, Number(url.searchParams.get('limit') ?? 20) || 20));
      return { status: 200, body: { changes: await cp.changes.readRecent(limit) } };
    })
    .route('GET /changes/:id', async (_req, _url, { id }) => {
      const record = /^\d+$/.test(id!) ? await cp.changes.read(Number(id)) : undefined;
      return record
        ? { status: 200, body: record }
        : { status: 404, body: { error: `no change ${id} (the last is ${cp.changes.lastId})` } };
    });

  // ── push stream ──
  admin
    .raw('POST /stream', (req, res) => {
      openStream(cp, req, res, log).catch((e: Error) => {
        log.error({ err: e.message }, 'push stream failed');
        if (!res.headersSent) sendJson(res, 500, { error: e.message });
        else res.destroy();
      });
    })
    .route('POST /ack', async (req) => {
      const body = await readJson<Ack>(req, validators.ack);
      if (!body.ok) return bad(body.error);
      const result = cp.acknowledge(body.value);
      return result.ok
        ? { status: 200, body: { status: 'recorded' } }
        : { status: result.status, body: { error: result.error } };
    });
  return admin;
}

async function openStream(cp: ControlPlane, req: IncomingMessage, res: ServerResponse, log: Logger) {
  const body = await readJson<StreamHello>(req, validators.hello);
  if (!body.ok) {
    sendJson(res, 400, { error: body.error });
    return;
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
  const { close } = cp.connect(body.value, sink);
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
    proxies: { total: proxies.length, byState },
    changes: await cp.changes.readRecent(10),
  };
}
