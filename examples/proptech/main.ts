/**
 * `npm start`: the PropTech demo (docs/demo.md). A control plane with the model in ./mesh, the gateway
 * taking its config from it, six service instances (property v1 and v2, photo, valuation, search,
 * enrichment), each with its own sidecar, and an OTLP/HTTP receiver that shows the traces: all on
 * 127.0.0.1, nothing external. It prints the URLs, a token and curl commands to paste, then waits for
 * Ctrl-C. `--load` also sends steady traffic.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, statSync } from 'node:fs';
import type { Server } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SignJWT } from 'jose';
import type { ProxyStatusView } from '../../src/api/mesh.ts';
import { type AppInstance, closeApps, startApp } from './apps.ts';
import { startLoad } from './load.ts';
import { demoPorts, HOST, listOfPorts, MAX_PORT_OFFSET } from './ports.ts';
import { Supervisor } from './processes.ts';
import { startTraceReceiver, TraceStore } from './traces.ts';

const USAGE = `Usage: npm start [-- --load] [-- --port-offset N]

Runs the PropTech demo: a control plane, the gateway, six service instances with their sidecars and
a trace viewer, on 127.0.0.1. Ctrl-C stops everything (twice: at once).

  --load            also send steady traffic (5 requests a second) until stopped
  --stats           once up, print each proxy's resident memory (RSS) and the total
  --port-offset N   add N to every port (gateway 8080 + N, …), to run beside what holds the usual ones`;

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(ROOT, 'dist', 'cli', 'main.js');
const MODEL = join(ROOT, 'examples', 'proptech', 'mesh');

/** The ports in use: the documented ones unless `--port-offset` shifts them (see ports.ts). */
let PORTS = demoPorts();

interface Instance extends AppInstance {
  /** The sidecar's ports: admin = base, outbound = base + 1, inbound = base + 6 (as in docs/mesh.md). */
  sidecarBase: number;
  /** Services the app calls (its sidecar hears only of those). */
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
/** Gives every instance its ports from PORTS. */
function placeInstances() {
  for (const i of INSTANCES) {
    const ports = PORTS.instances[i.name]!;
    i.port = ports.app;
    i.sidecarBase = ports.sidecarBase;
    if (i.upstreams.length > 0) i.outbound = `http://${HOST}:${i.sidecarBase + 1}`;
  }
}

const READY_TIMEOUT_MS = 30_000;
/** A property request makes six spans: the gateway; property's sidecar in, out to photos and to valuations; their sidecars in. */
const PROBE_SPANS = 6;
const POLL_MS = 50;
/** Proxies drain in well under this (sidecars deregister, wait 1 s for callers to notice, then close). */
const PROXY_STOP_GRACE_MS = 8_000;
const CONTROL_PLANE_STOP_GRACE_MS = 5_000;
/** Two SIGINTs closer than this are one Ctrl-C delivered twice (terminal and parent), not a second one. */
const SIGNAL_REPEAT_MS = 500;

let CP_URL = '';
let GATEWAY_URL = '';
let TRACES_URL = '';

function usePorts(offset: number) {
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
  controlPlaneMetrics: boolean;
  load: boolean;
}): string {
  const { token } = options;
  const auth = `-H 'Authorization: Bearer ${token}'`;
  const search = `'${GATEWAY_URL}/api/v1/search/homes?city=austin'`;
  const metrics = [
    [`http://${HOST}:${PORTS.gatewayAdmin}/metrics`, 'gateway'],
    ...INSTANCES.map((i) => [`http://${HOST}:${i.sidecarBase}/metrics`, `${i.service} ${i.version} sidecar`]),
    ...(options.controlPlaneMetrics ? [[`${CP_URL}/metrics`, 'control plane']] : []),
  ];
  const width = Math.max(...metrics.map(([u]) => u!.length));
  return `
meshgate PropTech demo is up in ${options.seconds.toFixed(1)} s

  Gateway        ${GATEWAY_URL}
  Traces         ${TRACES_URL}/traces
  Control plane  ${CP_URL}/status
  Metrics        ${metrics.map(([u, what]) => `${u!.padEnd(width)}  ${what}`).join('\n                 ')}
  Logs           ${options.logDir}/  (a file per process; proxies' access log lines included)

Token (consumer demo-app, scope property:read, valid 24 h):
  ${token}

Try these; each runs alone in a fresh shell:

  # A property (JWT with scope property:read, 1000 requests/hour): 90% from v1, 10% from v2
  curl -si ${auth} ${GATEWAY_URL}/api/v1/properties/42

  # The canary: with \`canary: true\` it always comes from v2 (see "version")
  curl -si ${auth} -H 'canary: true' ${GATEWAY_URL}/api/v1/properties/42

  # Search, no token needed; asked twice in one command: the second answer is from the cache (X-Cache-Status: HIT)
  curl -si ${search} ${search}

  # Error on purpose: no token, so 401 with an application/problem+json body
  curl -si ${GATEWAY_URL}/api/v1/properties/42

  # Error on purpose: no route, so 404 with an application/problem+json body
  curl -si ${GATEWAY_URL}/api/v1/agents/7

  # The gateway's Prometheus metrics
  curl -s http://${HOST}:${PORTS.gatewayAdmin}/metrics

  # The latest traces: one span per proxy hop, gateway → sidecars → services
  curl -s ${TRACES_URL}/traces

  # The mesh: proxies, instances, config versions
  curl -s ${CP_URL}/status
${options.load ? '\nSending steady traffic (--load); a summary every 10 s.\n' : '\n`npm start -- --load` also sends steady traffic.\n'}Ctrl-C stops everything.
`;
}

async function main(): Promise<number> {
  const started = performance.now();
  let args: { load?: boolean; stats?: boolean; help?: boolean; 'port-offset'?: string };
  try {
    args = parseArgs({
      options: {
        load: { type: 'boolean' },
        stats: { type: 'boolean' },
        'port-offset': { type: 'string' },
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
  usePorts(offset);
  checkBuild();
  await checkPorts();

  const envSecret = process.env.PROPTECH_JWT_SECRET || undefined;
  if (envSecret !== undefined && envSecret.length < 32)
    throw new DemoError('PROPTECH_JWT_SECRET must be at least 32 characters (or unset: the demo makes one).');
  const secret = envSecret ?? randomBytes(32).toString('base64url');
  const logDir = mkdtempSync(join(tmpdir(), 'meshgate-demo-'));
  const supervisor = new Supervisor({ cli: CLI, cwd: ROOT, logDir });
  const servers: Server[] = [];
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
    // The model takes the ports the proxies are told of (the gateway's listener, the trace receiver)
    // from the environment, as it takes the token secret.
    supervisor.start(
      'control-plane',
      ['control-plane', '--config', MODEL, '--warmup', '0', '--port', String(PORTS.controlPlane)],
      {
        PROPTECH_JWT_SECRET: secret,
        PROPTECH_GATEWAY_PORT: String(PORTS.gateway),
        PROPTECH_TRACES_PORT: String(PORTS.traces),
      },
    );
    // Each wait ends early when a child fails, or when Ctrl-C stops the demo before it is up.
    const interrupted = stopRequest.then(() => {
      throw new Interrupted();
    });
    interrupted.catch(() => {});
    const race = <T>(p: Promise<T>) => Promise.race([p, childFailed, interrupted]);
    await race(
      until('the control plane', deadline, async () =>
        (await getJson(`${CP_URL}/ready`)).status === 200 ? true : undefined,
      ),
    );

    // The proxies start together; each registers (sidecars) and gets its config as soon as it is up.
    const drain = ['--drain', '5s', '--control-plane', CP_URL];
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
    for (const i of INSTANCES)
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
        `--upstreams=${i.upstreams.join(',')}`,
        ...drain,
      ]);

    // Ready: every instance registered and healthy, and every proxy holds the config that says so.
    await race(
      until('every proxy to be in sync with the control plane', deadline, async () => {
        const [proxies, instances] = await Promise.all([getJson(`${CP_URL}/proxies`), getJson(`${CP_URL}/instances`)]);
        const list = (proxies.body as { proxies: ProxyStatusView[] }).proxies;
        const nacked = list.find((p) => p.state === 'NACKED');
        if (nacked)
          throw new DemoError(`${nacked.id} rejected its config: ${JSON.stringify(nacked.lastNack, null, 2)}`);
        const healthy = (instances.body as { instances: { health: string }[] }).instances.filter(
          (i) => i.health === 'healthy',
        );
        const synced = list.filter((p) => p.state === 'SYNCED');
        return healthy.length === INSTANCES.length && synced.length === INSTANCES.length + 1 ? true : undefined;
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
        (traces.get(probeTrace)?.spans.length ?? 0) >= PROBE_SPANS ? true : undefined,
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
