/**
 * Real servers for tests, on 127.0.0.1 and port 0: upstreams that record what reached them, and a
 * gateway built from a config object exactly as the CLI builds it.
 */
import { once } from 'node:events';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { addProxyEndpoints } from '../admin/proxy-endpoints.ts';
import { AdminServer } from '../admin/server.ts';
import { formatIssue } from '../config/issues.ts';
import { loadConfigObject } from '../config/load.ts';
import { createPluginCatalog } from '../plugins/index.ts';
import type { PluginRegistry } from '../plugins/registry.ts';
import type { StreamContext } from '../proxy/context.ts';
import { InProcessDataPlane } from '../proxy/data-plane.ts';
import type { IdentityProvider } from '../proxy/identity/mesh-tls.ts';
import { ProxyServer } from '../proxy/proxy.ts';

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
}

export interface Upstream {
  url: string;
  port: number;
  server: Server;
  /** Every request that reached this upstream, in order. */
  seen: SeenRequest[];
  close(): Promise<void>;
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** By default answers 200 with a JSON echo of method, url and headers. */
export const echo: Handler = (req, res) => {
  const body = JSON.stringify({ method: req.method, url: req.url, headers: req.headers });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
};

export async function startUpstream(handler: Handler = echo, name = 'upstream'): Promise<Upstream> {
  const seen: SeenRequest[] = [];
  const server = createServer((req, res) => {
    seen.push({ method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders });
    res.setHeader('x-upstream', name);
    handler(req, res);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export interface TestGateway {
  proxy: ProxyServer;
  admin: AdminServer;
  /** `http://127.0.0.1:PORT` of a listener (the first when no name is given). */
  url(listener?: string): string;
  adminUrl: string;
  /** Streams that ended, in order (the log phase's view). */
  ended: StreamContext[];
  apply(config: unknown): Promise<void>;
  close(): Promise<void>;
}

/** A gateway from a config object; listeners without a port get port 0 on 127.0.0.1. */
export interface GatewayOptions {
  catalog?: PluginRegistry;
  /** A clock for plugins (rate limits, token expiry). */
  now?: () => number;
  /** Metric prefix: `gateway` (default) or `mesh`. */
  role?: 'gateway' | 'mesh';
  /** A workload identity, for `mtls` listeners and services (see ProxyOptions.identity). */
  identity?: IdentityProvider;
}

export async function startGateway(
  config: Record<string, unknown>,
  options: GatewayOptions = {},
): Promise<TestGateway> {
  const ended: StreamContext[] = [];
  const catalog = options.catalog ?? createPluginCatalog();
  const loaded = await load(config, catalog);
  const proxy = await ProxyServer.start(loaded, {
    onStreamEnd: (ctx) => ended.push(ctx),
    catalog,
    now: options.now,
    role: options.role,
    ...(options.identity !== undefined && { identity: options.identity }),
  });
  const admin = new AdminServer();
  addProxyEndpoints(admin, new InProcessDataPlane(proxy));
  await admin.listen(0);
  return {
    proxy,
    admin,
    ended,
    adminUrl: `http://127.0.0.1:${admin.port}`,
    url(listener?: string) {
      const ports = proxy.ports();
      const port = listener === undefined ? Object.values(ports)[0] : ports[listener];
      if (port === undefined) throw new Error(`no listener ${listener}`);
      return `http://127.0.0.1:${port}`;
    },
    async apply(next: unknown) {
      await proxy.apply(await load(next as Record<string, unknown>, catalog));
    },
    async close() {
      await proxy.close(1000);
      await admin.close();
    },
  };
}

/**
 * `MESHGATE_TEST_ENGINE=node` serves the plain HTTP/1.1 listeners of test gateways with that engine
 * instead of the default, lean (listeners that name an engine, or use TLS, HTTP/2 or mutual TLS, keep
 * theirs): the same suites then check both engines (test/e2e/node-engine/).
 */
export function withTestEngine(listener: Record<string, unknown>): Record<string, unknown> {
  const engine = process.env.MESHGATE_TEST_ENGINE;
  if (engine === undefined || engine === '' || listener.engine !== undefined) return listener;
  const mtls = listener.mtls as { mode?: string } | undefined;
  if (listener.tls !== undefined || listener.http2 === true || (mtls !== undefined && mtls.mode !== 'DISABLE'))
    return listener;
  return { ...listener, engine };
}

/** The engine that serves the plain listeners of test gateways: the one the suite names, else lean. */
export function testListenerEngine(): string {
  return process.env.MESHGATE_TEST_ENGINE || 'lean';
}

/** The same choice for a listener written as YAML flow mapping fields: `, engine: node` or nothing. */
export function testEngineYaml(): string {
  const engine = process.env.MESHGATE_TEST_ENGINE;
  return engine === undefined || engine === '' ? '' : `, engine: ${engine}`;
}

/**
 * `MESHGATE_TEST_CLIENT=undici` makes the plain HTTP/1.1 services of test gateways call their endpoints
 * with undici's client instead of the default, lean (services that name an engine, use HTTP/2 or
 * `https://` endpoints keep theirs): the same suites then check both clients (test/e2e/undici-client/).
 */
export function withTestClient(service: Record<string, unknown>): Record<string, unknown> {
  const engine = process.env.MESHGATE_TEST_CLIENT;
  if (engine === undefined || engine === '' || service.engine !== undefined) return service;
  if (service.protocol === 'http2' || service.protocol === 'auto') return service;
  const endpoints = service.endpoints as { url?: unknown }[] | undefined;
  if (endpoints?.some((e) => typeof e.url === 'string' && e.url.startsWith('https:'))) return service;
  return { ...service, engine };
}

/** The same choice for a service written as a YAML flow mapping: `, engine: undici` or nothing. */
export function testClientYaml(): string {
  const engine = process.env.MESHGATE_TEST_CLIENT;
  return engine === undefined || engine === '' ? '' : `, engine: ${engine}`;
}

async function load(config: Record<string, unknown>, catalog: PluginRegistry) {
  const services = config.services as Record<string, unknown>[] | undefined;
  const withDefaults = {
    ...config,
    ...(services !== undefined && { services: services.map(withTestClient) }),
    listeners: ((config.listeners as Record<string, unknown>[] | undefined) ?? [{ name: 'main' }]).map((l) =>
      withTestEngine({
        port: 0,
        address: '127.0.0.1',
        ...l,
      }),
    ),
  };
  const result = await loadConfigObject(withDefaults, 'test', { catalog });
  if (!result.ok) throw new Error(result.issues.map(formatIssue).join('\n'));
  return result.value;
}

/** A minimal config forwarding everything to `upstreamUrl`. */
export function simpleConfig(upstreamUrl: string, route: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    services: [{ name: 'svc', endpoints: [{ url: upstreamUrl }] }],
    routes: [{ name: 'all', service: 'svc', ...route }],
  };
}
