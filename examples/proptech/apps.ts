/**
 * The demo's services: small node:http apps answering JSON, one server per instance. Each would be a
 * separate program in real life; they share this process to start fast. None knows where another
 * runs: an app calls another service by name (`Host: photo-service`) through its own sidecar's
 * outbound listener, and forwards the trace context it received, as any instrumented app does.
 */
import { Agent, createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import { buildSchema } from 'graphql';
import { createHandler } from 'graphql-http/lib/use/http';

export interface AppInstance {
  /** e.g. `property-v1`: names its log and its sidecar. */
  name: string;
  service: string;
  version: string;
  port: number;
  /** Its sidecar's outbound listener, e.g. `http://127.0.0.1:15101`, for apps that call others. */
  outbound?: string;
  /**
   * Services this app calls at their own address, not through a sidecar (before a service joins the
   * mesh, docs/adoption.md): service name → URL, e.g. `photo-service` → `http://127.0.0.1:8103`.
   */
  direct?: Record<string, string>;
}

type Json = Record<string, unknown>;
type Handler = (req: IncomingMessage, url: URL, app: AppInstance) => Promise<{ status: number; body: Json }>;

/** What an app passes on when it calls another service: the trace it is part of, the request id. */
const PROPAGATED = ['traceparent', 'tracestate', 'x-request-id'] as const;
const CALL_TIMEOUT_MS = 3000;
const agent = new Agent({ keepAlive: true, maxSockets: 32 });

/** GET http://SERVICE/path through the app's sidecar (or directly, if so told); the answer's JSON, or an error. */
function call(app: AppInstance, service: string, path: string, incoming: IncomingMessage): Promise<Json> {
  const outbound = new URL(app.direct?.[service] ?? app.outbound!);
  const headers: Record<string, string> = { host: service, accept: 'application/json' };
  for (const name of PROPAGATED) {
    const value = incoming.headers[name];
    if (typeof value === 'string') headers[name] = value;
  }
  return new Promise((resolve, reject) => {
    const req = request(
      { host: outbound.hostname, port: outbound.port, path, headers, agent, timeout: CALL_TIMEOUT_MS },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          if (res.statusCode !== 200) return reject(new Error(`${service} answered ${res.statusCode}`));
          try {
            resolve(JSON.parse(text) as Json);
          } catch {
            reject(new Error(`${service} answered something that is not JSON`));
          }
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${service} did not answer within ${CALL_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** A stable small number from a string: the same property always has the same data. */
function seed(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}

const STREETS = ['Maple Ave', 'Harbor St', 'Cedar Ln', 'Elm Row', 'Lake Dr', 'Oak Ct'];
const CITIES = ['austin', 'denver', 'portland', 'raleigh'];

function traceIdOf(req: IncomingMessage): string | null {
  const tp = req.headers.traceparent;
  return typeof tp === 'string' && /^[\da-f]{2}-[\da-f]{32}-/.test(tp) ? tp.slice(3, 35) : null;
}

/** The listing itself, as both versions of the property API describe it. */
function listing(id: string, app: AppInstance): Json {
  const n = seed(id);
  return {
    id,
    version: app.version,
    address: `${100 + (n % 900)} ${STREETS[n % STREETS.length]}`,
    city: CITIES[n % CITIES.length],
    bedrooms: 1 + (n % 5),
    areaSqft: 600 + (n % 2400),
    // v2 is the release being tried out: it adds the energy rating.
    ...(app.version === 'v2' ? { energyRating: 'ABCDEF'[n % 6] } : {}),
  };
}

const handlers: Record<string, Handler> = {
  /**
   * GET /api/v1/properties/:id: the listing, with its photos and a valuation from two other services.
   * GET /properties/:id: the listing alone (the gateway's v2 API composes the rest itself).
   */
  async 'property-service'(req, url, app) {
    const bare = /^\/properties\/([\w-]{1,64})$/.exec(url.pathname)?.[1];
    if (bare !== undefined) return { status: 200, body: { ...listing(bare, app), servedBy: app.name } };
    const id = /^\/api\/v1\/properties\/([\w-]{1,64})$/.exec(url.pathname)?.[1];
    if (id === undefined) return { status: 404, body: { error: 'no such property' } };
    const [photos, valuation] = await Promise.allSettled([
      call(app, 'photo-service', `/photos?property=${encodeURIComponent(id)}`, req),
      call(app, 'valuation-service', `/valuations/${encodeURIComponent(id)}`, req),
    ]);
    const unavailable = [photos, valuation].flatMap((r, i) =>
      r.status === 'rejected' ? [`${i === 0 ? 'photo' : 'valuation'}-service: ${(r.reason as Error).message}`] : [],
    );
    return {
      status: 200,
      body: {
        ...listing(id, app),
        photos: photos.status === 'fulfilled' ? photos.value.photos : null,
        valuation: valuation.status === 'fulfilled' ? valuation.value : null,
        ...(unavailable.length > 0 ? { unavailable } : {}),
        servedBy: app.name,
        traceId: traceIdOf(req),
      },
    };
  },

  /** GET /photos?property=ID */
  async 'photo-service'(_req, url) {
    const id = url.searchParams.get('property');
    if (url.pathname !== '/photos' || !id) return { status: 404, body: { error: 'try /photos?property=ID' } };
    const count = 2 + (seed(id) % 3);
    const photos = Array.from({ length: count }, (_, i) => ({
      url: `https://photos.proptech.example/${encodeURIComponent(id)}/${i + 1}.jpg`,
      caption: ['front', 'kitchen', 'living room', 'garden'][i],
    }));
    return { status: 200, body: { property: id, photos } };
  },

  /** GET /valuations/:id */
  async 'valuation-service'(_req, url) {
    const id = /^\/valuations\/([\w-]{1,64})$/.exec(url.pathname)?.[1];
    if (id === undefined) return { status: 404, body: { error: 'try /valuations/ID' } };
    const n = seed(id);
    return {
      status: 200,
      body: { property: id, estimate: 250_000 + (n % 750) * 1000, currency: 'USD', confidence: (70 + (n % 25)) / 100 },
    };
  },

  /** GET /api/v1/search/*?city=NAME: matching listings, with the neighbourhood from the enrichment service. */
  async 'search-service'(req, url, app) {
    const city = (url.searchParams.get('city') ?? 'austin').toLowerCase();
    const kind = url.pathname.slice('/api/v1/search/'.length) || 'homes';
    const n = seed(`${kind}:${city}`);
    const results = Array.from({ length: 3 + (n % 3) }, (_, i) => {
      const id = String(((n >>> (i * 3)) % 900) + 100);
      return { id, href: `/api/v1/properties/${id}`, price: 200_000 + (seed(id) % 800) * 1000 };
    });
    let neighborhood: Json | null = null;
    try {
      neighborhood = await call(app, 'enrichment-service', `/neighborhoods?city=${encodeURIComponent(city)}`, req);
    } catch {
      // Search still answers without the extras.
    }
    return { status: 200, body: { query: { kind, city }, results, neighborhood, servedBy: app.name } };
  },

  /** GET /neighborhoods?city=NAME */
  async 'enrichment-service'(_req, url) {
    const city = url.searchParams.get('city');
    if (url.pathname !== '/neighborhoods' || !city)
      return { status: 404, body: { error: 'try /neighborhoods?city=NAME' } };
    const n = seed(city);
    return { status: 200, body: { city, walkScore: 40 + (n % 60), schoolRating: 1 + (n % 10), transit: n % 2 === 0 } };
  },
};

/** The search service also answers GraphQL at /graphql: listings by city (the gateway's REST → GraphQL route). */
const LISTINGS_SCHEMA = buildSchema(`
  type Listing { id: ID! city: String! price: Int! bedrooms: Int! href: String! agent: Agent! }
  type Agent { name: String! listings: [Listing!]! }
  type Query { listings(city: String!, limit: Int = 5, minBedrooms: Int): [Listing!]! }
`);

interface Listing {
  id: string;
  city: string;
  price: number;
  bedrooms: number;
  href: string;
  agent: { name: string; listings: () => Listing[] };
}

function listingsIn(args: { city: string; limit: number; minBedrooms?: number | null }): Listing[] {
  const city = args.city.toLowerCase();
  const n = seed(`listings:${city}`);
  return Array.from({ length: 12 }, (_, i) => {
    const id = String(((n >>> (i * 2)) % 900) + 100 + i);
    const m = seed(id);
    const agent = {
      name: ['Ana Ruiz', 'Sam Lee', 'Kim Ode'][m % 3]!,
      listings: (): Listing[] => listingsIn({ city, limit: 2 }),
    };
    return {
      id,
      city,
      price: 200_000 + (m % 800) * 1000,
      bedrooms: 1 + (m % 5),
      href: `/api/v1/properties/${id}`,
      agent,
    };
  })
    .filter((l) => args.minBedrooms == null || l.bedrooms >= args.minBedrooms)
    .slice(0, Math.max(0, Math.min(args.limit, 12)));
}

const graphqlHandler = createHandler({
  schema: LISTINGS_SCHEMA,
  rootValue: { listings: listingsIn },
});

function send(res: ServerResponse, status: number, body: Json) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export async function startApp(app: AppInstance): Promise<Server> {
  const handle = handlers[app.service];
  if (!handle) throw new Error(`no app for ${app.service}`);
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://app');
    if (url.pathname === '/healthz') return send(res, 200, { status: 'ok', instance: app.name });
    if (app.service === 'search-service' && url.pathname === '/graphql') return void graphqlHandler(req, res);
    if (req.method !== 'GET') return send(res, 405, { error: 'GET only' });
    handle(req, url, app).then(
      (r) => send(res, r.status, r.body),
      (e: Error) => send(res, 500, { error: e.message }),
    );
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(app.port, '127.0.0.1', () => resolve());
  });
  return server;
}

export function closeApps(servers: Server[]): Promise<void> {
  agent.destroy();
  return Promise.all(
    servers.map(
      (s) =>
        new Promise<void>((resolve) => {
          s.close(() => resolve());
          s.closeAllConnections();
        }),
    ),
  ).then(() => undefined);
}
