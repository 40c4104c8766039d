/**
 * The per-proxy admin API: liveness, readiness and what the proxy holds (config, routes, services).
 * Binds 127.0.0.1 unless configured otherwise; answers JSON. Endpoints are a table so other parts
 * (metrics, control-plane status) add theirs without touching this file's logic.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DEFAULT_ADMIN_ADDRESS } from '../core/defaults.ts';
import { http } from '../core/node-http.ts';

export interface AdminReply {
  status: number;
  /** Serialised as JSON unless `contentType` is set, in which case it must be a string. */
  body: unknown;
  contentType?: string;
  /** Extra response headers (e.g. `www-authenticate` on a 401). */
  headers?: Record<string, string>;
}

/** `params` holds the values of `:name` segments of the route's path. */
export type AdminHandler = (
  req: IncomingMessage,
  url: URL,
  params: Record<string, string>,
) => AdminReply | Promise<AdminReply>;

/** A handler that writes the response itself (a long-lived stream). */
export type RawAdminHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  params: Record<string, string>,
) => void;

interface PatternRoute {
  method: string;
  segments: string[];
  handler: AdminHandler | RawAdminHandler;
  raw: boolean;
}

export class AdminServer {
  private readonly server: Server;
  private readonly handlers = new Map<string, AdminHandler>();
  private readonly raws = new Map<string, RawAdminHandler>();
  private readonly patterns: PatternRoute[] = [];

  constructor() {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    this.server.keepAliveTimeout = 5_000;
    this.route('GET /', () => ({
      status: 200,
      body: {
        endpoints: [
          ...this.handlers.keys(),
          ...this.raws.keys(),
          ...this.patterns.map((p) => `${p.method} ${p.segments.join('/')}`),
        ].sort(),
      },
    }));
  }

  /** Registers `METHOD /path`; a segment `:name` matches any one segment and is passed in `params`. */
  route(key: string, handler: AdminHandler): this {
    if (key.includes('/:')) this.addPattern(key, handler, false);
    else this.handlers.set(key, handler);
    return this;
  }

  /** Registers a handler that writes its own response (e.g. an event stream). */
  raw(key: string, handler: RawAdminHandler): this {
    if (key.includes('/:')) this.addPattern(key, handler, true);
    else this.raws.set(key, handler);
    return this;
  }

  private addPattern(key: string, handler: AdminHandler | RawAdminHandler, raw: boolean) {
    const [method, path] = key.split(' ') as [string, string];
    this.patterns.push({ method, segments: path.split('/'), handler, raw });
  }

  private find(method: string, path: string) {
    const key = `${method} ${path}`;
    const exact = this.handlers.get(key);
    if (exact) return { handler: exact as AdminHandler | RawAdminHandler, raw: false, params: {} };
    const raw = this.raws.get(key);
    if (raw) return { handler: raw, raw: true, params: {} };
    const segments = path.split('/');
    for (const p of this.patterns) {
      if (p.method !== method || p.segments.length !== segments.length) continue;
      const params: Record<string, string> = {};
      if (
        p.segments.every((s, i) => {
          if (!s.startsWith(':')) return s === segments[i];
          if (segments[i] === '') return false;
          try {
            params[s.slice(1)] = decodeURIComponent(segments[i]!);
          } catch {
            return false;
          }
          return true;
        })
      )
        return { handler: p.handler, raw: p.raw, params };
    }
    return undefined;
  }

  private allowed(path: string): string[] {
    const keys = [...this.handlers.keys(), ...this.raws.keys()].filter((k) => k.endsWith(` ${path}`));
    const segments = path.split('/');
    for (const p of this.patterns)
      if (p.segments.length === segments.length && p.segments.every((s, i) => s.startsWith(':') || s === segments[i]))
        keys.push(`${p.method} ${path}`);
    return [...new Set(keys.map((k) => k.split(' ')[0]!))];
  }

  listen(port: number, address = DEFAULT_ADMIN_ADDRESS): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, address, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  get port(): number {
    return (this.server.address() as AddressInfo | null)?.port ?? 0;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://admin');
    const found = this.find(req.method ?? 'GET', url.pathname);
    let reply: AdminReply;
    if (!found) {
      const allowed = this.allowed(url.pathname);
      reply = allowed.length
        ? { status: 405, body: { error: `use ${allowed.join(' or ')}` } }
        : { status: 404, body: { error: `no admin endpoint ${url.pathname}; GET / lists them` } };
    } else if (found.raw) {
      (found.handler as RawAdminHandler)(req, res, url, found.params);
      return;
    } else {
      try {
        reply = await (found.handler as AdminHandler)(req, url, found.params);
      } catch (e) {
        reply = { status: 500, body: { error: (e as Error).message } };
      }
    }
    const text = reply.contentType ? String(reply.body) : JSON.stringify(reply.body, null, 2) + '\n';
    res.writeHead(reply.status, {
      'content-type': reply.contentType ?? 'application/json',
      'content-length': Buffer.byteLength(text),
      'cache-control': 'no-store',
      ...reply.headers,
    });
    res.end(text);
  }
}

/** Reads a request body up to `limit` bytes (admin requests only: never on the proxy's hot path). */
export async function readBody(req: IncomingMessage, limit = 4 * 1024 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new Error(`body larger than ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
