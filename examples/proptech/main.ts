/**
 * `npm start`: the PropTech demo (docs/demo.md). A control plane with the model in ./mesh, the gateway
 * taking its config from it, six service instances (property v1 and v2, photo, valuation, search,
 * enrichment), each with its own sidecar, and an OTLP/HTTP receiver that shows the traces: all on
 * 127.0.0.1, nothing external. It prints the URLs, a token and curl commands to paste, then waits for
 * Ctrl-C. `--load` also sends steady traffic.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SignJWT } from 'jose';
import type { ProxyStatusView } from '../../src/api/mesh.ts';
import { type AppInstance, closeApps, startApp } from './apps.ts';
import { startGrpcValuation } from './grpc-valuation.ts';
import { startLoad } from './load.ts';
import { demoPorts, HOST, listOfPorts, MAX_PORT_OFFSET } from './ports.ts';
import { Supervisor } from './processes.ts';
import { startTraceReceiver, TraceStore } from './traces.ts';

const USAGE = `Usage: npm start [-- --load] [-- --port-offset N] [-- --stage gateway|partial|mesh]

Runs the PropTech demo: a control plane, the gateway, six service instances with their sidecars and
a trace viewer, on 127.0.0.1. Ctrl-C stops everything (twice: at once).

  --load            also send steady traffic (5 requests a second) until stopped
  --stats           once up, print each proxy's resident memory (RSS) and the total
  --port-offset N   add N to every port (gateway 8080 + N, …), to run beside what holds the usual ones
  --stage S         how far the system has moved into the mesh (docs/adoption.md): \`gateway\` (the
                    gateway alone in front of plain services), \`partial\` (sidecars for property and
                    photo only), \`mesh\` (every service with its sidecar; the default)`;

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(ROOT, 'dist', 'cli', 'main.js');
const MODEL = join(ROOT, 'examples', 'proptech', 'mesh');

/** The same system at each step of docs/adoption.md, from the gateway alone to the whole mesh. */
const STAGE_NAMES = ['gateway', 'partial', 'mesh'] as const;
type Stage = (typeof STAGE_NAMES)[number];
interface StagePlan {
  /** The gateway's config (`gateway`) or the control plane's model (the others). */
  config: string;
  /** A control plane configures the gateway and the sidecars; without it the gateway reads `config`. */
  controlPlane: boolean;
  /** The instances that run with a sidecar; the others are reached at their own address. */
  sidecars: readonly string[];
  /** Spans of one property request: one per proxy hop on its way. */
  probeSpans: number;
  /** What the banner says of the stage. */
  summary: string;
}
const STAGES: Record<Stage, StagePlan> = {
  gateway: {
    config: join(ROOT, 'examples', 'proptech', 'stage-gateway'),
    controlPlane: false,
    sidecars: [],
    // The gateway's own span: the apps call each other directly.
    probeSpans: 1,
    summary: 'gateway: the gateway alone (no control plane) in front of plain services that call each other directly',
  },
  partial: {
    config: join(ROOT, 'examples', 'proptech', 'stage-partial'),
    controlPlane: true,
    sidecars: ['property-v1', 'property-v2', 'photo'],
    // The gateway; property's sidecar in, out to photos and to valuations; photo's sidecar in.
    probeSpans: 5,
    summary: 'partial: sidecars for property-service and photo-service; the other services are reached directly',
  },
  mesh: {
    config: MODEL,
    controlPlane: true,
    sidecars: ['property-v1', 'property-v2', 'photo', 'valuation', 'search', 'enrichment'],
    // The gateway; property's sidecar in, out to photos and to valuations; their sidecars in.
    probeSpans: 6,
    summary: 'mesh: every service with its sidecar, mutual TLS on every hop',
  },
};
let STAGE: StagePlan = STAGES.mesh;

/** The ports in use: the documented ones unless `--port-offset` shifts them (see ports.ts). */
let PORTS = demoPorts();

interface Instance extends AppInstance {
  /** The sidecar's ports: admin = base, outbound = base + 1, inbound = base + 6 (as in docs/mesh.md). */
  sidecarBase: number;
  /** Services the app calls: its service's `dependsOn` in the model (so its sidecar hears only of those). */
  upstreams: string[];
}

/** Their ports (0 here) are set from PORTS when the demo starts. */
const INSTANCES: Instance[] = [
  {
    name: 'property-v1',
    service: 'property-service',
    version: 'v1',
    port: 0,
    sidecarBase: 0,
    upstreams: ['photo-service', 'valuation-service'],
  },
  {
    name: 'property-v2',
    service: 'property-service',
    version: 'v2',
    port: 0,
    sidecarBase: 0,
    upstreams: ['photo-service', 'valuation-service'],
  },
  { name: 'photo', service: 'photo-service', version: 'v1', port: 0, sidecarBase: 0, upstreams: [] },
  { name: 'valuation', service: 'valuation-service', version: 'v1', port: 0, sidecarBase: 0, upstreams: [] },
  {
    name: 'search',
    service: 'search-service',
    version: 'v1',
    port: 0,
    sidecarBase: 0,
    upstreams: ['enrichment-service'],
  },
  { name: 'enrichment', service: 'enrichment-service', version: 'v1', port: 0, sidecarBase: 0, upstreams: [] },
];
/** Gives every instance its ports from PORTS; an app without a sidecar calls the others at their own address. */
function placeInstances() {
  for (const i of INSTANCES) {
    const ports = PORTS.instances[i.name]!;
    i.port = ports.app;
    i.sidecarBase = ports.sidecarBase;
  }
  for (const i of INSTANCES) {
    if (i.upstreams.length === 0) continue;
    if (STAGE.sidecars.includes(i.name)) i.outbound = `http://${HOST}:${i.sidecarBase + 1}`;
    else
      i.direct = Object.fromEntries(
        i.upstreams.map((service) => [service, `http://${HOST}:${INSTANCES.find((o) => o.service === service)!.port}`]),
      );
  }
}

const withSidecar = () => INSTANCES.filter((i) => STAGE.sidecars.includes(i.name));

/** What the config files take from the environment: the secret, the paths and the ports (`--port-offset`). */
function configEnv(secret: string, usageDb: string): Record<string, string> {
  const appPort = (name: string) => String(PORTS.instances[name]!.app);
  return {
    PROPTECH_JWT_SECRET: secret,
    PROPTECH_GATEWAY_PORT: String(PORTS.gateway),
    PROPTECH_TRACES_PORT: String(PORTS.traces),
    PROPTECH_USAGE_DB: usageDb,
    PROPTECH_GRPC_PORT: String(PORTS.valuationGrpc),
    // The stages before the mesh reach some services at their own address.
    PROPTECH_GATEWAY_ADMIN_PORT: String(PORTS.gatewayAdmin),
    PROPTECH_PROPERTY_V1_PORT: appPort('property-v1'),
    PROPTECH_PROPERTY_V2_PORT: appPort('property-v2'),
    PROPTECH_PHOTO_PORT: appPort('photo'),
    PROPTECH_VALUATION_PORT: appPort('valuation'),
    PROPTECH_SEARCH_PORT: appPort('search'),
    PROPTECH_ENRICHMENT_PORT: appPort('enrichment'),
  };
}

const READY_TIMEOUT_MS = 30_000;
const POLL_MS = 50;
/** Proxies drain in well under this (sidecars deregister, wait 1 s for callers to notice, then close). */
const PROXY_STOP_GRACE_MS = 8_000;
const CONTROL_PLANE_STOP_GRACE_MS = 5_000;
/** Two SIGINTs closer than this are one Ctrl-C delivered twice (terminal and parent), not a second one. */
const SIGNAL_REPEAT_MS = 500;

let CP_URL = '';
let GATEWAY_URL = '';
let TRACES_URL = '';

function usePorts(offset: number, stage: Stage) {
  STAGE = STAGES[stage];
  PORTS = demoPorts(offset);
  placeInstances();
  CP_URL = `http://${HOST}:${PORTS.controlPlane}`;
  GATEWAY_URL = `http://${HOST}:${PORTS.gateway}`;
  TRACES_URL = `http://${HOST}:${PORTS.traces}`;
}

class DemoError extends Error {}
/** Ctrl-C while starting: stop quietly. */
class Interrupted extends Error {}

function checkBuild() {
  if (!existsSync(CLI)) throw new DemoError('dist/ is missing: run `npm run build` (`npm ci` runs it).');
  const built = statSync(CLI).mtimeMs;
  const src = join(ROOT, 'src');
  const newer = readdirSync(src, { recursive: true, encoding: 'utf8' }).find(
    (f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && statSync(join(src, f)).mtimeMs > built,
  );
  if (newer) console.log(`note: src/${newer} is newer than dist/: run \`npm run build\` to run your changes\n`);
}

/** Every port the demo needs, free on 127.0.0.1; otherwise one clear message naming them. */
async function checkPorts() {
  const ports = listOfPorts(PORTS);
  const taken = await Promise.all(
    ports.map(
      ([port, what]) =>
        new Promise<string | null>((resolve) => {
          const probe = createServer();
          probe.once('error', (e: NodeJS.ErrnoException) => resolve(`${port} (${what}): ${e.code}`));
          probe.listen(port, HOST, () => probe.close(() => resolve(null)));
        }),
    ),
  );
  const busy = taken.filter((t) => t !== null);
  if (busy.length > 0)
    throw new DemoError(
      `ports in use on ${HOST}:\n  ${busy.join('\n  ')}\nIs the demo already running? Stop it (or what holds them) and try again, or pass --port-offset N.`,
    );
}

/** Each proxy's RSS as it reported to the control plane (GET /status), and their total. */
async function proxyMemory(): Promise<string> {
  const { proxies } = (await getJson(`${CP_URL}/status`)).body as {
    proxies: { rssBytes: number; rss: Record<string, number> };
  };
  const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
  const lines = Object.entries(proxies.rss).map(([id, bytes]) => `  ${id.padEnd(22)} ${mib(bytes)}`);
  return ['Proxy memory (RSS):', ...lines, `  ${'together'.padEnd(22)} ${mib(proxies.rssBytes)}`].join('\n');
}

async function getJson(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(2000) });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON; the text is the body.
  }
  return { status: res.status, body };
}

/** Polls `check` until it returns a value (not undefined) or the deadline passes. */
async function until<T>(what: string, deadline: number, check: () => Promise<T | undefined>): Promise<T> {
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (e) {
      if (e instanceof DemoError) throw e;
      // Not up yet.
    }
    if (performance.now() > deadline) throw new DemoError(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

async function sign(secret: string, issuer: string, subject: string) {
  return new SignJWT({ scope: 'property:read' })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer(issuer)
    .setSubject(subject)
    .setIssuedAt()
    .setExpirationTime('24h')
    .sign(new TextEncoder().encode(secret));
}

function banner(options: {
  seconds: number;
  token: string;
  logDir: string;
  /** A config naming only the usage store, for `meshgate usage export`. */
  usageConfig: string;
  controlPlaneMetrics: boolean;
  load: boolean;
}): string {
  const { token } = options;
  const auth = `-H 'Authorization: Bearer ${token}'`;
  const search = `'${GATEWAY_URL}/api/v1/search/homes?city=austin'`;
  const metrics = [
    [`http://${HOST}:${PORTS.gatewayAdmin}/metrics`, 'gateway'],
    ...withSidecar().map((i) => [`http://${HOST}:${i.sidecarBase}/metrics`, `${i.service} ${i.version} sidecar`]),
    ...(STAGE.controlPlane && options.controlPlaneMetrics ? [[`${CP_URL}/metrics`, 'control plane']] : []),
  ];
  const width = Math.max(...metrics.map(([u]) => u!.length));
  const cp = STAGE.controlPlane;
  return `
meshgate PropTech demo is up in ${options.seconds.toFixed(1)} s

  Stage          ${STAGE.summary}
${cp ? `  Dashboard      ${CP_URL}/dashboard/\n` : ''}  Gateway        ${GATEWAY_URL}
  Traces         ${TRACES_URL}/traces
${cp ? `  Control plane  ${CP_URL}/status\n` : ''}  Metrics        ${metrics.map(([u, what]) => `${u!.padEnd(width)}  ${what}`).join('\n                 ')}
  Logs           ${options.logDir}/  (a file per process; proxies' access log lines included)

Token (consumer demo-app, scope property:read, valid 24 h):
  ${token}

Try these; each runs alone in a fresh shell:

  # A property (JWT with scope property:read, 1000 requests/hour): 90% from v1, 10% from v2. API v1 is
  # deprecated (Deprecation, Sunset, Link to v2); the consumer's plan allows 5000 a day (X-RateLimit-Remaining-Day)
  curl -si ${auth} ${GATEWAY_URL}/api/v1/properties/42

  # API v2: the listing, its photos and its valuation from three services, composed in one answer at the gateway
  curl -si ${auth} ${GATEWAY_URL}/api/v2/properties/42/full

  # The canary: with \`canary: true\` it always comes from v2 (see "version")
  curl -si ${auth} -H 'canary: true' ${GATEWAY_URL}/api/v1/properties/42

  # Search, no token needed; asked twice in one command: the second answer is from the cache (X-Cache-Status: HIT)
  curl -si ${search} ${search}

  # REST in, gRPC behind: the gateway transcodes JSON to the valuation service's gRPC API, and back
  curl -si '${GATEWAY_URL}/api/v1/valuations/42?currency=EUR'

  # A gRPC server stream, as one JSON object a line (NDJSON): the last 3 months
  curl -si '${GATEWAY_URL}/api/v1/valuations/42/history?months=3'

  # REST in, GraphQL behind: the search service answers a GraphQL query made from the path and the query string
  curl -si '${GATEWAY_URL}/api/v1/listings/denver?limit=3'

  # GraphQL as is, checked at the door: nested deeper than 3, so 400 before it reaches the service
  curl -si ${GATEWAY_URL}/graphql -H 'content-type: application/json' -d '{"query":"{ listings(city: \\"austin\\") { agent { listings { agent { name } } } } }"}'

  # Error on purpose: no token, so 401 with an application/problem+json body
  curl -si ${GATEWAY_URL}/api/v1/properties/42

  # Error on purpose: no route, so 404 with an application/problem+json body
  curl -si ${GATEWAY_URL}/api/v1/agents/7

  # The gateway's Prometheus metrics
  curl -s http://${HOST}:${PORTS.gatewayAdmin}/metrics

  # The latest traces: one span per proxy hop, ${cp ? 'gateway → sidecars → services' : 'here the gateway alone (no sidecars yet)'}
  curl -s ${TRACES_URL}/traces
${
  cp
    ? `
  # The mesh: proxies, instances, config versions
  curl -s ${CP_URL}/status
`
    : ''
}
  # Usage per hour, consumer, route and API version (who still calls v1?), as CSV
  curl -s 'http://${HOST}:${PORTS.gatewayAdmin}/usage?format=csv'

The same usage from the store itself, with the CLI (from this directory):
  npx meshgate usage export --config ${options.usageConfig} --format csv
${options.load ? '\nSending steady traffic (--load); a summary every 10 s.\n' : '\n`npm start -- --load` also sends steady traffic.\n'}Ctrl-C stops everything.
`;
}

async function main(): Promise<number> {
  const started = performance.now();
  let args: { load?: boolean; stats?: boolean; help?: boolean; 'port-offset'?: string; stage?: string };
  try {
    args = parseArgs({
      options: {
        load: { type: 'boolean' },
        stats: { type: 'boolean' },
        'port-offset': { type: 'string' },
        stage: { type: 'string', default: 'mesh' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (e) {
    console.error(`${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (args.help) {
    console.log(USAGE);
    return 0;
  }
  const offset = Number(args['port-offset'] ?? 0);
  if (!Number.isInteger(offset) || offset < 0 || offset > MAX_PORT_OFFSET) {
    console.error(`--port-offset must be a whole number from 0 to ${MAX_PORT_OFFSET}\n\n${USAGE}`);
    return 2;
  }
  const stage = args.stage as Stage;
  if (!STAGE_NAMES.includes(stage)) {
    console.error(`--stage must be one of ${STAGE_NAMES.join(', ')}\n\n${USAGE}`);
    return 2;
  }
  usePorts(offset, stage);
  checkBuild();
  await checkPorts();

  const envSecret = process.env.PROPTECH_JWT_SECRET || undefined;
  if (envSecret !== undefined && envSecret.length < 32)
    throw new DemoError('PROPTECH_JWT_SECRET must be at least 32 characters (or unset: the demo makes one).');
  const secret = envSecret ?? randomBytes(32).toString('base64url');
  const logDir = mkdtempSync(join(tmpdir(), 'meshgate-demo-'));
  // The gateway meters its consumers' usage into this file; `usage.yaml` names it for `meshgate usage`.
  const usageDb = join(logDir, 'usage.db');
  const usageConfig = join(logDir, 'usage.yaml');
  writeFileSync(
    usageConfig,
    `# The demo gateway's usage store (docs/metering.md)\nmetering: { path: ${JSON.stringify(usageDb)} }\n`,
  );
  const supervisor = new Supervisor({ cli: CLI, cwd: ROOT, logDir });
  const servers: Server[] = [];
  let grpcServer: { forceShutdown(): void } | null = null;
  const traces = new TraceStore();

  let stopping: Promise<void> | null = null;
  let stopRequested!: () => void;
  const stopRequest = new Promise<void>((resolve) => (stopRequested = resolve));
  let firstSignalAt = 0;
  let load: { stop(): Promise<void> } | null = null;
  let exitCode = 0;
  const stop = (code: number): Promise<void> => {
    exitCode = Math.max(exitCode, code);
    stopping ??= (async () => {
      console.log('\nstopping (Ctrl-C again to stop at once)…');
      await load?.stop();
      // Proxies first: sidecars deregister while the control plane still listens.
      const proxies = ['gateway', ...INSTANCES.map((i) => `${i.name}-sidecar`)];
      await supervisor.stop(proxies, PROXY_STOP_GRACE_MS);
      await supervisor.stop(['control-plane'], CONTROL_PLANE_STOP_GRACE_MS);
      await closeApps(servers.slice(1));
      grpcServer?.forceShutdown();
      if (servers[0]) {
        servers[0].closeAllConnections();
        servers[0].close();
      }
      console.log(`stopped. Logs are in ${logDir}/`);
    })();
    stopRequested();
    return stopping;
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping === null) {
      firstSignalAt = performance.now();
      void stop(0);
    } else if (signal === 'SIGINT' && performance.now() - firstSignalAt > SIGNAL_REPEAT_MS) {
      console.log('stopping at once');
      supervisor.killAll();
      process.exit(130);
    }
  };
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, onSignal);

  let failed: ((e: Error) => void) | null = null;
  const childFailed = new Promise<never>((_, reject) => (failed = reject));
  childFailed.catch(() => {});
  supervisor.onUnexpectedExit = (child, reason) => {
    const tail = supervisor.tail(child);
    const message = `${child.name} stopped (${reason}). The end of ${child.log}:\n${tail}`;
    if (failed !== null) return failed(new DemoError(message));
    // Once up, a stopped process is something to watch (the mesh routes around a stopped sidecar), not the end.
    console.error(`\n${message}\nThe rest keeps running; Ctrl-C stops it.`);
  };

  try {
    const deadline = performance.now() + READY_TIMEOUT_MS;
    servers.push(await startTraceReceiver(PORTS.traces, traces), ...(await Promise.all(INSTANCES.map(startApp))));
    grpcServer = await startGrpcValuation(PORTS.valuationGrpc, HOST);
    // The model takes the ports the proxies are told of (the gateway's listener, the trace receiver)
    // from the environment, as it takes the token secret.
    const env = configEnv(secret, usageDb);
    if (STAGE.controlPlane)
      supervisor.start(
        'control-plane',
        [
          ...['control-plane', '--config', STAGE.config, '--warmup', '0', '--port', String(PORTS.controlPlane)],
          // The dashboard's request lookup shows each request's trace from the demo's receiver.
          ...['--trace-query', `${TRACES_URL}/api/traces/{traceId}`],
        ],
        env,
      );
    // Each wait ends early when a child fails, or when Ctrl-C stops the demo before it is up.
    const interrupted = stopRequest.then(() => {
      throw new Interrupted();
    });
    interrupted.catch(() => {});
    const race = <T>(p: Promise<T>) => Promise.race([p, childFailed, interrupted]);
    if (STAGE.controlPlane)
      await race(
        until('the control plane', deadline, async () =>
          (await getJson(`${CP_URL}/ready`)).status === 200 ? true : undefined,
        ),
      );

    // The proxies start together; each registers (sidecars) and gets its config as soon as it is up.
    const drain = ['--drain', '5s', '--control-plane', CP_URL];
    // Before the mesh, the gateway reads its own files (the same public API) and reaches the apps directly.
    if (!STAGE.controlPlane)
      supervisor.start('gateway', ['gateway', '--config', STAGE.config, '--workers', '0', '--drain', '5s'], env);
    else
      supervisor.start('gateway', [
        'gateway',
        '--id',
        'gateway',
        '--workers',
        '0',
        '--admin-port',
        String(PORTS.gatewayAdmin),
        ...drain,
      ]);
    for (const i of withSidecar())
      supervisor.start(`${i.name}-sidecar`, [
        'sidecar',
        '--service',
        i.service,
        '--id',
        i.name,
        '--app',
        `http://${HOST}:${i.port}`,
        '--labels',
        `version=${i.version}`,
        '--admin-port',
        String(i.sidecarBase),
        '--outbound-port',
        String(i.sidecarBase + 1),
        '--inbound-port',
        String(i.sidecarBase + 6),
        ...drain,
      ]);

    // Ready: every instance registered and healthy, and every proxy holds the config that says so.
    const sidecars = withSidecar().length;
    if (STAGE.controlPlane)
      await race(
        until('every proxy to be in sync with the control plane', deadline, async () => {
          const [proxies, instances] = await Promise.all([
            getJson(`${CP_URL}/proxies`),
            getJson(`${CP_URL}/instances`),
          ]);
          const list = (proxies.body as { proxies: ProxyStatusView[] }).proxies;
          const nacked = list.find((p) => p.state === 'NACKED');
          if (nacked)
            throw new DemoError(`${nacked.id} rejected its config: ${JSON.stringify(nacked.lastNack, null, 2)}`);
          const healthy = (instances.body as { instances: { health: string }[] }).instances.filter(
            (i) => i.health === 'healthy',
          );
          const synced = list.filter((p) => p.state === 'SYNCED');
          return healthy.length === sidecars && synced.length === sidecars + 1 ? true : undefined;
        }),
      );
    const loadToken = await sign(secret, 'proptech-load', 'load-generator');
    // One request end to end (as the load generator's consumer, so the demo token's count stays at 0),
    // and its trace: every hop's span reaches the receiver, so the traces curl has something to show.
    const probeTrace = await race(
      until('a first answer through the gateway', deadline, async () => {
        const r = await getJson(`${GATEWAY_URL}/api/v1/properties/1`, {
          authorization: `Bearer ${loadToken}`,
          'user-agent': 'proptech-demo-readiness',
        });
        return r.status === 200 ? String((r.body as { traceId: string }).traceId) : undefined;
      }),
    );
    await race(
      until('the spans of the first request', deadline, async () =>
        (traces.get(probeTrace)?.spans.length ?? 0) >= STAGE.probeSpans ? true : undefined,
      ),
    );
    failed = null;
    const controlPlaneMetrics = await getJson(`${CP_URL}/metrics`).then(
      (r) => r.status === 200,
      () => false,
    );
    const token = await sign(secret, 'proptech-demo', 'demo-user');
    console.log(
      banner({
        seconds: (performance.now() - started) / 1000,
        token,
        logDir,
        usageConfig,
        controlPlaneMetrics,
        load: args.load === true,
      }),
    );
    if (args.stats) console.log(await proxyMemory());
    if (args.load && stopping === null)
      load = startLoad({
        gateway: GATEWAY_URL,
        token: loadToken,
        requestsPerSecond: 5,
        maxInFlight: 10,
        summaryEveryMs: 10_000,
        onSummary: (line) => console.log(line),
      });
  } catch (e) {
    if (!(e instanceof Interrupted)) {
      console.error(`\nthe demo did not start: ${(e as Error).message}\nLogs: ${logDir}/`);
      await stop(1);
    }
  }
  await stopRequest;
  await stopping;
  return exitCode;
}

main().then(
  (code) => process.exit(code),
  (e: Error) => {
    console.error(e instanceof DemoError ? e.message : e);
    process.exit(1);
  },
);
