/**
 * The dashboard on an admin server (the control plane's API, or a gateway's admin listener): the page
 * at `/dashboard/` and its API at `/dashboard/api/…` (docs/dashboard.md). What it shows comes from a
 * backend: the control plane's (every proxy of the mesh) or a lone gateway's (itself).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ChangeRecord, RequestRecord } from '../../api/mesh.ts';
import {
  DASHBOARD_EVENT_TICK_MS,
  DEFAULT_DASHBOARD_WINDOW_MS,
  DEFAULT_TELEMETRY_HISTORY_MS,
} from '../../core/defaults.ts';
import { type AdminHandler, type AdminReply, type AdminServer, readBody } from '../server.ts';
import { DASHBOARD_HEADERS, DashboardFiles } from './static.ts';
import type { Overview } from './telemetry-store.ts';

/** A weighted route the canary control can change. */
export interface WeightedRoute {
  name: string;
  destinations: { service: string; subset: string | null; weight: number }[];
}

/** What a weight change would do, or did. */
export interface WeightsOutcome {
  /** 200 applied or previewed; 400 invalid (issues say why); 404 no such route; 409 not a weighted route. */
  status: number;
  route?: WeightedRoute;
  /** Unified diff lines of the model (secrets redacted): ` ` context, `-` removed, `+` added, `@@` a cut. */
  diff?: string[];
  issues?: unknown[];
  error?: string;
  /** Applied: the change record's id (GET /changes/{id}), null when the model was already so. */
  change?: number | null;
  version?: string;
}

/** One proxy's record of a looked-up request, with the proxy that kept it. */
export interface LookupHop extends RequestRecord {
  proxy: string;
  kind: string;
  /** The proxy's own service (a sidecar's), or its gateway name. */
  proxyService: string | null;
}

/** A span of the request's trace, from the tracing backend (`control-plane --trace-query`). */
export interface LookupSpan {
  traceId: string;
  spanId: string;
  /** Empty for a root span. */
  parentSpanId: string;
  /** `service.name` of the process that sent it. */
  service: string;
  /** The meshgate route of a proxy's span, else the span's name. */
  name: string;
  /** ms since the epoch. */
  start: number;
  durationMs: number;
  /** `http.response.status_code`, when the span has one. */
  status: number | null;
  /** The span's status is an error. */
  error: boolean;
}

export interface LookupResult {
  id: string;
  hops: LookupHop[];
  /**
   * The spans of the hops' traces from the tracing backend, when the control plane has one
   * (`--trace-query`); absent otherwise.
   */
  spans?: LookupSpan[];
  /** Why the tracing backend could not be read (the hops are still the proxies'). */
  spansError?: string;
  /** Proxies asked and proxies that answered (an older proxy, or one that is gone, does not). */
  asked: number;
  answered: number;
}

export interface DashboardBackend {
  /** `control-plane`: the mesh; `gateway`: a gateway on its own. */
  readonly kind: 'control-plane' | 'gateway';
  readonly intervalMs: number;
  overview(windowMs: number): Overview | Promise<Overview>;
  proxies(): unknown[] | Promise<unknown[]>;
  changes(limit: number): ChangeRecord[] | Promise<ChangeRecord[]>;
  /** The diff a config change made; undefined: no such change, or its models are no longer kept. */
  changeDiff(id: number): Promise<{ id: number; diff: string[] | null; note?: string } | undefined>;
  routes(): WeightedRoute[];
  /** Absent: weights cannot be changed here (a lone gateway's config is its file). */
  setWeights?(route: string, weights: number[], dryRun: boolean): Promise<WeightsOutcome>;
  lookup(id: string): Promise<LookupResult>;
}

/** Returns a reply that refuses the request (401/403), or undefined to let it through. */
export type DashboardGuard = (req: IncomingMessage) => AdminReply | undefined;

const MAX_WEIGHTS_BODY_BYTES = 16 * 1024;

/** Mounts the page and its API on `admin`; `guard` decides who may read and change (the page itself is public). */
export function addDashboard(admin: AdminServer, backend: DashboardBackend, guard: DashboardGuard): void {
  const files = new DashboardFiles();
  const api =
    (handler: AdminHandler): AdminHandler =>
    async (req, url, params) => {
      const refused = guard(req);
      const reply = refused ?? (await handler(req, url, params));
      return { ...reply, headers: { ...DASHBOARD_HEADERS, ...reply.headers } };
    };
  const page = (name: string) => (req: IncomingMessage, res: ServerResponse) => {
    if (files.serve(name, req, res)) return;
    const text = JSON.stringify({ error: files.missing ?? `no file ${name}` });
    res.writeHead(404, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  admin
    .raw('GET /dashboard', (_req, res) => {
      res.writeHead(308, { location: '/dashboard/', 'content-length': 0 });
      res.end();
    })
    .raw('GET /dashboard/', page(''))
    .raw('GET /dashboard/app.js', page('app.js'))
    .raw('GET /dashboard/app.css', page('app.css'));

  const windowOf = (url: URL) => {
    const w = Number(url.searchParams.get('window') ?? DEFAULT_DASHBOARD_WINDOW_MS);
    return Number.isFinite(w)
      ? Math.min(DEFAULT_TELEMETRY_HISTORY_MS, Math.max(backend.intervalMs, w))
      : DEFAULT_DASHBOARD_WINDOW_MS;
  };
  admin
    .route(
      'GET /dashboard/api/info',
      api(() => ({
        status: 200,
        body: {
          kind: backend.kind,
          intervalMs: backend.intervalMs,
          windowMs: DEFAULT_DASHBOARD_WINDOW_MS,
          canWeights: backend.setWeights !== undefined,
        },
      })),
    )
    .route(
      'GET /dashboard/api/overview',
      api(async (_req, url) => ({ status: 200, body: await backend.overview(windowOf(url)) })),
    )
    .route(
      'GET /dashboard/api/proxies',
      api(async () => ({ status: 200, body: { proxies: await backend.proxies() } })),
    )
    .route(
      'GET /dashboard/api/changes',
      api(async (_req, url) => {
        const limit = Math.min(200, Math.max(1, Number(url.searchParams.get('limit') ?? 30) || 30));
        return { status: 200, body: { changes: await backend.changes(limit) } };
      }),
    )
    .route(
      'GET /dashboard/api/changes/:id/diff',
      api(async (_req, _url, { id }) => {
        const found = /^\d+$/.test(id!) ? await backend.changeDiff(Number(id)) : undefined;
        return found ? { status: 200, body: found } : { status: 404, body: { error: `no change ${id}` } };
      }),
    )
    .route(
      'GET /dashboard/api/routes',
      api(() => ({ status: 200, body: { routes: backend.routes() } })),
    )
    .route(
      'POST /dashboard/api/routes/:name/weights',
      api(async (req, url, { name }) => {
        if (!backend.setWeights)
          return { status: 405, body: { error: 'weights are changed in the config file of a gateway on its own' } };
        let body: { weights?: unknown };
        try {
          body = JSON.parse((await readBody(req, MAX_WEIGHTS_BODY_BYTES)) || '{}') as { weights?: unknown };
        } catch (e) {
          return { status: 400, body: { error: `the body is not JSON: ${(e as Error).message}` } };
        }
        const weights = body.weights;
        if (!Array.isArray(weights) || !weights.every((w) => Number.isInteger(w) && w >= 0))
          return { status: 400, body: { error: 'give {"weights": [w1, w2, …]}: whole numbers, one per destination' } };
        const dryRun = url.searchParams.get('dryRun') === 'true';
        const outcome = await backend.setWeights(name!, weights as number[], dryRun);
        const { status, ...rest } = outcome;
        return { status, body: { dryRun, ...rest } };
      }),
    )
    .route(
      'GET /dashboard/api/requests/:id',
      api(async (_req, _url, { id }) => {
        if (!/^[\w.:-]{1,128}$/.test(id!))
          return { status: 400, body: { error: 'a request id or trace id: letters, digits, ".", ":", "_", "-"' } };
        return { status: 200, body: await backend.lookup(id!) };
      }),
    );

  admin.raw('GET /dashboard/api/events', (req, res) => {
    const refused = guard(req);
    if (refused) {
      const text = JSON.stringify(refused.body);
      res.writeHead(refused.status, {
        ...DASHBOARD_HEADERS,
        'content-type': refused.contentType ?? 'application/json',
        'content-length': Buffer.byteLength(text),
        ...refused.headers,
      });
      res.end(text);
      return;
    }
    streamEvents(backend, windowOf(new URL(req.url ?? '/', 'http://dashboard')), res);
  });
}

/**
 * Server-sent events: `overview` at each telemetry interval, `changes` and `proxies` when they change
 * (checked every second). Each is the whole view, so a page that missed some needs nothing else.
 */
function streamEvents(backend: DashboardBackend, windowMs: number, res: ServerResponse) {
  res.writeHead(200, { ...DASHBOARD_HEADERS, 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
  res.socket?.setNoDelay(true);
  const last = new Map<string, string>();
  let lastOverviewAt = 0;
  let busy = false;
  const send = (event: string, data: unknown, onlyIfChanged: boolean) => {
    const text = JSON.stringify(data);
    if (onlyIfChanged && last.get(event) === text) return;
    last.set(event, text);
    res.write(`event: ${event}\ndata: ${text}\n\n`);
  };
  const tick = async () => {
    if (busy || res.destroyed) return;
    busy = true;
    try {
      const now = Date.now();
      if (now - lastOverviewAt >= backend.intervalMs) {
        lastOverviewAt = now;
        send('overview', await backend.overview(windowMs), false);
      }
      send('changes', await backend.changes(30), true);
      send('proxies', await backend.proxies(), true);
      res.write(': tick\n\n');
    } catch (e) {
      res.write(`event: failure\ndata: ${JSON.stringify({ error: (e as Error).message })}\n\n`);
    } finally {
      busy = false;
    }
  };
  void tick();
  const timer = setInterval(() => void tick(), DASHBOARD_EVENT_TICK_MS);
  timer.unref();
  res.on('close', () => clearInterval(timer));
  res.on('error', () => clearInterval(timer));
}
