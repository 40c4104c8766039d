/**
 * The control plane at scale: one real control plane (`meshgate control-plane`, its own process), a
 * mesh of S services with E endpoints registered over HTTP, and N simulated proxies (real push
 * streams and real ACKs through the proxy's own ControlPlaneSubscription, a few processes of them;
 * what is pushed is received and answered, not compiled into a data plane). Each proxy is a sidecar
 * that names the services it calls (`upstreams`): one of the "hot" services, each called by exactly
 * `--affected` proxies, and a few others. Then a series of one-endpoint changes to hot services (an
 * instance joins, then leaves), one at a time, each waited for until every affected proxy ACKed.
 *
 *   node_modules/.bin/node bench/control-plane-scale.ts [--proxies 100] [--services 1000] [--endpoints 10000]
 *       [--upstreams 5] [--affected 100] [--full-mesh 0] [--changes 20] [--processes 4] [--gap 100ms]
 *       [--profile DIR]
 *
 * Reports the control plane's RSS (after every proxy is in sync, and its peak) and CPU (connecting
 * everyone, per change, and at idle), the time from each change to each affected proxy's ACK (from
 * the change records, `GET /changes/{id}`: p50/p99 over every ACK, and the time until the last ACK
 * of each change), and the bytes pushed per change (counted on the simulated proxies' streams).
 * `--full-mesh K` makes K of the proxies name no upstreams (they get, and hear about, every service).
 * `--profile DIR` writes a CPU profile of the control plane there.
 *
 * Bounded: every wait has a deadline, every process is stopped by PID at the end. Exit 1 when a
 * change was not applied by every proxy it affects.
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { ChangeRecord, ProxyIdentity } from '../src/api/mesh.ts';
import { parseDuration } from '../src/core/duration.ts';
import { createLogger, silentLogger } from '../src/observability/logger.ts';
import { requestJson } from '../src/proxy/mesh/http.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const node = process.execPath;
const serviceName = (n: number) => `svc-${String(n).padStart(4, '0')}`;

interface Plan {
  proxies: number;
  services: number;
  upstreams: number;
  affected: number;
  fullMesh: number;
}

/** How many hot services there are: each is called by `affected` proxies. */
const hotCount = (plan: Plan) => Math.max(1, Math.ceil((plan.proxies - plan.fullMesh) / plan.affected));

/**
 * Proxy `i`: a sidecar of some service that calls hot service `i mod H` and `upstreams - 1` others
 * that are not hot (so a change to a hot service affects exactly its `affected` callers). The first
 * `fullMesh` proxies name no upstreams at all.
 */
function identityOf(plan: Plan, i: number): ProxyIdentity {
  const hot = hotCount(plan);
  const upstreams = new Set([serviceName((i - plan.fullMesh) % hot)]);
  for (let k = 1; upstreams.size < Math.min(plan.upstreams, plan.services); k++)
    upstreams.add(serviceName(hot + ((i * 7919 + k * 104_729) % (plan.services - hot))));
  return {
    id: `sim-${i}`,
    kind: 'sidecar',
    service: serviceName((i * 31 + 17) % plan.services),
    address: '127.0.0.1',
    inboundPort: 15006,
    outboundPort: 15001,
    app: 'http://127.0.0.1:8080',
    ...(i < plan.fullMesh ? {} : { upstreams: [...upstreams] }),
  };
}

// ── proxy process: `--worker URL FIRST COUNT PLAN` ─────────────────────────────────────────────────
if (process.argv[2] === '--worker') await worker();
else await main();

async function worker() {
  const [url, first, count, plan] = [
    process.argv[3]!,
    Number(process.argv[4]),
    Number(process.argv[5]),
    JSON.parse(process.argv[6]!) as Plan,
  ];
  // Counts what arrives on push streams (not ACK answers): wraps node:http's request before the
  // subscription module binds it.
  let streamBytes = 0;
  let acks = 0;
  const http = createRequire(import.meta.url)('node:http') as typeof import('node:http');
  const original = http.request;
  http.request = ((...args: Parameters<typeof original>) => {
    const req = original(...args);
    req.on('response', (res) => {
      if (String(res.headers['content-type']).startsWith('text/event-stream'))
        res.on('data', (chunk: string | Buffer) => (streamBytes += Buffer.byteLength(chunk)));
      else if (req.path === '/ack' && res.statusCode === 200) res.on('end', () => acks++);
    });
    return req;
  }) as typeof original;
  syncBuiltinESMExports();
  const { ControlPlaneSubscription } = await import('../src/proxy/mesh/subscription.ts');

  let pushes = 0;
  const subs: InstanceType<typeof ControlPlaneSubscription>[] = [];
  for (let i = first; i < first + count; i++) {
    const sub = new ControlPlaneSubscription({
      url,
      identity: identityOf(plan, i),
      log: process.env.SIM_DEBUG ? createLogger({ level: 'debug' }) : silentLogger(),
      // A simulated proxy takes every config as it comes: the control plane's side is what is measured.
      pipeline: {
        async submit(change) {
          await change.read();
          pushes++;
          return { status: 'applied', hash: '', report: null };
        },
      },
    });
    sub.start();
    subs.push(sub);
  }
  await Promise.all(subs.map((s) => s.firstConfig));
  process.send?.({ ready: count });
  process.on('message', (m: { counters?: number }) => {
    if (m.counters === undefined) return;
    const cpu = process.cpuUsage();
    process.send?.({ counters: m.counters, streamBytes, pushes, acks, cpuMs: (cpu.user + cpu.system) / 1000 });
  });
  process.on('disconnect', () => {
    for (const s of subs) s.close();
    process.exit(0);
  });
}

async function main() {
  const { values } = parseArgs({
    options: {
      proxies: { type: 'string', default: '100' },
      services: { type: 'string', default: '1000' },
      endpoints: { type: 'string', default: '10000' },
      upstreams: { type: 'string', default: '5' },
      affected: { type: 'string', default: '100' },
      'full-mesh': { type: 'string', default: '0' },
      changes: { type: 'string', default: '20' },
      processes: { type: 'string', default: '4' },
      gap: { type: 'string', default: '100ms' },
      profile: { type: 'string' },
    },
  });
  const plan: Plan = {
    proxies: Number(values.proxies),
    services: Number(values.services),
    upstreams: Number(values.upstreams),
    affected: Number(values.affected),
    fullMesh: Number(values['full-mesh']),
  };
  const endpoints = Number(values.endpoints);
  const changes = Number(values.changes);
  const processes = Math.min(plan.proxies, Number(values.processes));
  const gapMs = parseDuration(values.gap!) ?? 100;
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  const children: ChildProcess[] = [];
  const stopAll = () => {
    for (const c of children) if (c.exitCode === null && c.pid) process.kill(c.pid, 'SIGKILL');
  };
  process.on('exit', stopAll);
  const dir = mkdtempSync(join(tmpdir(), 'cp-scale-'));
  const loadBefore = loadavg()[0]!;

  // The model: every service declared with a policy, no static endpoints (they are registered).
  const model = {
    services: Array.from({ length: plan.services }, (_, n) => ({
      name: serviceName(n),
      timeouts: { connect: '1s', request: '5s' },
    })),
  };
  writeFileSync(join(dir, 'mesh.json'), JSON.stringify(model));
  const cp = spawn(
    node,
    [
      ...(values.profile ? ['--cpu-prof', '--cpu-prof-dir', values.profile] : []),
      `${root}src/cli/main.ts`,
      'control-plane',
      '--config',
      join(dir, 'mesh.json'),
      '--no-watch',
      '--port',
      '0',
      '--warmup',
      '0',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  children.push(cp);
  const url = await controlPlaneUrl(cp);
  const api = (method: string, path: string, body?: unknown) => requestJson(agent, url + path, method, body, 30_000);
  const usage = () => processUsage(cp.pid!);

  // The registry: `endpoints` instances spread evenly over the services, 16 registrations in flight.
  const registered = performance.now();
  const register = (n: number, service: string, port: number) =>
    api('PUT', `/instances/${service}-${n}`, {
      service,
      address: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`,
      port,
      labels: { version: n % 2 ? 'v1' : 'v2' },
      ttlMs: 300_000,
    });
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      for (let n = next++; n < endpoints; n = next++) {
        const res = await register(n, serviceName(n % plan.services), 8080);
        if (res.status !== 200) throw new Error(`registering: ${JSON.stringify(res.body)}`);
      }
    }),
  );
  const registerMs = performance.now() - registered;
  let refreshedAt = performance.now();
  console.error(`${endpoints} instances of ${plan.services} services registered in ${Math.round(registerMs)} ms`);

  // The proxies.
  const before = usage();
  await sleep(1_000);
  const registeredRssKb = usage().rssKb;
  const started = performance.now();
  const per = Math.ceil(plan.proxies / processes);
  const workers: ChildProcess[] = [];
  await Promise.all(
    Array.from({ length: processes }, async (_, p) => {
      const count = Math.min(per, plan.proxies - p * per);
      if (count <= 0) return;
      const child = fork(
        fileURLToPath(import.meta.url),
        ['--worker', url, String(p * per), String(count), JSON.stringify(plan)],
        {
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
          ...(values.profile ? { execArgv: ['--cpu-prof', '--cpu-prof-dir', join(values.profile, 'simulator')] } : {}),
        },
      );
      children.push(child);
      workers.push(child);
      const [message] = (await Promise.race([once(child, 'message'), sleep(300_000).then(() => [null])])) as [unknown];
      if (!message) throw new Error(`proxy process ${p} had not every proxy configured within 300 s`);
    }),
  );
  const syncMs = performance.now() - started;
  const synced = usage();
  console.error(`${plan.proxies} proxies in ${processes} processes in sync after ${Math.round(syncMs)} ms`);

  let counterRound = 0;
  const counters = async () => {
    const round = ++counterRound;
    const answers = await Promise.all(
      workers.map(async (w) => {
        w.send({ counters: round });
        for (;;) {
          const [m] = (await once(w, 'message')) as [
            { counters: number; streamBytes: number; pushes: number; acks: number; cpuMs: number },
          ];
          if (m.counters === round) return m;
        }
      }),
    );
    return answers.reduce(
      (a, m) => ({
        bytes: a.bytes + m.streamBytes,
        pushes: a.pushes + m.pushes,
        acks: a.acks + m.acks,
        cpuMs: a.cpuMs + m.cpuMs,
      }),
      { bytes: 0, pushes: 0, acks: 0, cpuMs: 0 },
    );
  };

  // Idle: keep-alives only.
  const idleFrom = usage();
  await sleep(5_000);
  const idle = usage();
  const idleCpuPct = ((idle.cpuMs - idleFrom.cpuMs) / (idle.at - idleFrom.at)) * 100;

  // The changes: an instance of a hot service joins, then leaves.
  const changesFrom = performance.now();
  const hot = hotCount(plan);
  const expected = Math.min(plan.affected, plan.proxies - plan.fullMesh) + plan.fullMesh;
  const firstChange =
    lastChange(((await api('GET', '/changes?limit=1')).body as { changes: ChangeRecord[] }).changes) + 1;
  const perChange: { cpuMs: number; bytes: number; pushes: number; simulatorCpuMs: number }[] = [];
  for (let n = 0; n < changes; n++) {
    // Registrations expire after 300 s: refresh them between changes on a long run.
    if (performance.now() - refreshedAt > 150_000) {
      for (let i = 0; i < endpoints; i++)
        await api('PUT', `/instances/${serviceName(i % plan.services)}-${i}/heartbeat`);
      refreshedAt = performance.now();
    }
    const service = serviceName(Math.floor(n / 2) % hot);
    const c0 = await counters();
    const u0 = usage();
    if (n % 2 === 0) await register(1_000_000 + n, service, 9000 + n).then(() => {});
    else await api('DELETE', `/instances/${service}-${1_000_000 + n - 1}`);
    // Waits on the simulated proxies, not on the control plane (whose CPU is measured): done when every
    // affected proxy's ACK was answered. The records are read after the last change.
    await until(
      async () => (await counters()).acks - c0.acks >= expected,
      60_000,
      `change ${n} to be answered by ${expected} proxies`,
    ).catch((e: Error) => console.error(e.message));
    const u1 = usage();
    const c1 = await counters();
    perChange.push({
      cpuMs: u1.cpuMs - u0.cpuMs,
      bytes: c1.bytes - c0.bytes,
      pushes: c1.pushes - c0.pushes,
      simulatorCpuMs: c1.cpuMs - c0.cpuMs,
    });
    await sleep(gapMs);
  }
  const end = usage();
  // Each change made one record, in order, after the registrations' (a heartbeat makes none).
  const records: ChangeRecord[] = [];
  for (let id = firstChange; id < firstChange + changes; id++) {
    let seen: ChangeRecord | undefined;
    records.push(
      await until(
        async () => {
          seen = (await api('GET', `/changes/${id}`)).body as ChangeRecord;
          return seen.status === 'propagating' ? undefined : seen;
        },
        30_000,
        `change ${id} to settle`,
      ).catch((e: Error) => {
        const states: Record<string, number> = {};
        for (const r of seen?.results ?? []) states[r.status] = (states[r.status] ?? 0) + 1;
        throw new Error(`${e.message}: ${JSON.stringify({ results: states, cause: seen?.cause })}`);
      }),
    );
  }

  const acks = records
    .flatMap((r) => r.results.map((x) => x.propagationMs).filter((x): x is number => x !== null))
    .sort((a, b) => a - b);
  const everywhere = records.map((r) => r.propagation.maxMs ?? Number.NaN).sort((a, b) => a - b);
  const incomplete = records.filter((r) => r.status !== 'applied' || r.propagation.applied !== expected);
  const pct = (list: number[], p: number) => list[Math.min(list.length - 1, Math.ceil(p * list.length) - 1)] ?? null;
  const mean = (list: number[]) => Math.round(list.reduce((a, b) => a + b, 0) / Math.max(1, list.length));
  const mib = (kb: number) => Math.round(kb / 1024);
  const report = {
    node: process.version,
    cpu: `${cpus()[0]?.model ?? '?'} (${availableParallelism()} CPUs)`,
    loadAverage1m: { before: loadBefore, after: loadavg()[0] },
    plan: { ...plan, endpoints, proxyProcesses: processes, changes: records.length },
    registerMs: Math.round(registerMs),
    connect: {
      allInSyncMs: Math.round(syncMs),
      cpuMs: synced.cpuMs - before.cpuMs,
      bytes: (await counters()).bytes - perChange.reduce((a, c) => a + c.bytes, 0),
    },
    controlPlane: {
      rssMiB: {
        beforeProxies: mib(registeredRssKb),
        inSync: mib(synced.rssKb),
        afterChanges: mib(end.rssKb),
        peak: mib(end.hwmKb),
      },
      idleCpuPercent: Math.round(idleCpuPct * 10) / 10,
      cpuMsPerChange: { mean: mean(perChange.map((c) => c.cpuMs)), max: Math.max(...perChange.map((c) => c.cpuMs)) },
    },
    perChange: {
      affectedProxies: { min: Math.min(...records.map((r) => r.results.length)), expected },
      unaffectedProxies: Math.min(...records.map((r) => r.unaffected)),
      pushesReceived: mean(perChange.map((c) => c.pushes)),
      simulatorCpuMs: mean(perChange.map((c) => c.simulatorCpuMs)),
      bytesPushed: mean(perChange.map((c) => c.bytes)),
    },
    ackMs: { p50: pct(acks, 0.5), p99: pct(acks, 0.99), max: acks.at(-1) ?? null, count: acks.length },
    everywhereMs: { p50: pct(everywhere, 0.5), p99: pct(everywhere, 0.99), max: everywhere.at(-1) ?? null },
    appliedEverywhere: records.length - incomplete.length,
  };
  console.log(JSON.stringify(report, null, 2));

  for (const w of workers) w.disconnect();
  // A profile's last this-many ms are the changes (and the stop).
  if (values.profile)
    console.error(`profile: the changes are its last ${Math.round(performance.now() - changesFrom)} ms`);
  cp.kill('SIGTERM');
  await Promise.race([Promise.all([cp, ...workers].map((c) => c.exitCode ?? once(c, 'exit'))), sleep(10_000)]);
  stopAll();
  agent.destroy();
  rmSync(dir, { recursive: true, force: true });
  process.exit(incomplete.length === 0 ? 0 : 1);
}

/** CPU time (user + system) and RSS of a process, from /proc (Linux). */
function processUsage(pid: number): { at: number; cpuMs: number; rssKb: number; hwmKb: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of stat, in clock ticks (100 a second on Linux).
  const cpuMs = (Number(fields[11]) + Number(fields[12])) * 10;
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { at: performance.now(), cpuMs, rssKb: kb('VmRSS'), hwmKb: kb('VmHWM') };
}

function lastChange(changes: ChangeRecord[]): number {
  return changes[0]?.id ?? 0;
}

async function until<T>(check: () => Promise<T | undefined | false>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined && value !== false) return value as T;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** The port from the control plane's `control plane started` log line; the rest of its log is drained. */
async function controlPlaneUrl(cp: ChildProcess): Promise<string> {
  let buffered = '';
  cp.stdout!.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the control plane did not start within 30 s')), 30_000);
    const onData = (chunk: string) => {
      buffered += chunk;
      for (const line of buffered.split('\n')) {
        if (!line.includes('"control plane started"')) continue;
        clearTimeout(timer);
        cp.stdout!.off('data', onData);
        cp.stdout!.resume();
        resolve(`http://127.0.0.1:${(JSON.parse(line) as { port: number }).port}`);
        return;
      }
    };
    cp.stdout!.on('data', onData);
    cp.once('exit', (code) => reject(new Error(`the control plane exited with ${code}`)));
  });
}
