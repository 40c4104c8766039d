/**
 * The per-proxy admin API: liveness, readiness and what the proxy holds (config, routes, services).
 * Binds 127.0.0.1 unless configured otherwise; answers JSON. Endpoints are a table so other parts
 * (metrics, control-plane status) add theirs without touching this file's logic.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DEFAULT_ADMIN_ADDRESS } from '../core/defaults.ts';

export interface AdminReply {
  status: number;
  /** Serialised as JSON unless `contentType` is set, in which case it must be a string. */
  body: unknown;
  contentType?: string;
}

export type AdminHandler = (req: IncomingMessage, url: URL) => AdminReply | Promise<AdminReply>;

export class AdminServer {
  private readonly server: Server;
  private readonly handlers = new Map<string, AdminHandler>();

  constructor() {
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.keepAliveTimeout = 5_000;
    this.route('GET /', () => ({ status: 200, body: { endpoints: [...this.handlers.keys()].sort() } }));
  }

  /** Registers `METHOD /path` (exact path). */
  route(key: string, handler: AdminHandler): this {
    this.handlers.set(key, handler);
    return this;
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
    const handler = this.handlers.get(`${req.method} ${url.pathname}`);
    let reply: AdminReply;
    if (!handler) {
      const allowed = [...this.handlers.keys()].filter((k) => k.endsWith(` ${url.pathname}`));
      reply = allowed.length
        ? { status: 405, body: { error: `use ${allowed.map((k) => k.split(' ')[0]).join(' or ')}` } }
        : { status: 404, body: { error: `no admin endpoint ${url.pathname}; GET / lists them` } };
    } else {
      try {
        reply = await handler(req, url);
      } catch (e) {
        reply = { status: 500, body: { error: (e as Error).message } };
      }
    }
    const text = reply.contentType ? String(reply.body) : JSON.stringify(reply.body, null, 2) + '\n';
    res.writeHead(reply.status, {
      'content-type': reply.contentType ?? 'application/json',
      'content-length': Buffer.byteLength(text),
      'cache-control': 'no-store',
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
