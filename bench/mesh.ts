/**
 * What two sidecars cost: a control plane (`meshgate control-plane`), and client → sidecar A (outbound)
 * → sidecar B (inbound) → server on loopback, every party its own process and the proxies the real
 * CLI (`dist/`, so they run with the flags a user's would). A fixed-rate load generator, in its own
 * process, times each request from its scheduled send time, so a stall counts against every request
 * it delays (no coordinated omission). Per round: the direct call, then the mesh in plaintext
 * (`mesh.mtls: DISABLE`) and with mutual TLS (`STRICT`), each freshly started.
 *
 *   npm run build && node_modules/.bin/node bench/mesh.ts [--rate 1000] [--seconds 20] [--warmup 10]
 *       [--idle 5] [--rounds 3] [--connections 32] [--modes DISABLE,STRICT] [--node-flags "..."]
 *
 * Reports latency (p50/p90/p99/p99.9/max) and what the two sidecars add over the direct call; per
 * sidecar: RSS and private memory (what the process adds to the machine: RSS less the pages of the
 * node binary and libraries it shares with every other Node process) at idle and under load, CPU (in
 * vCPU, and per 1000 req/s), and from its own /metrics the GC pauses and the worst event-loop delay
 * in the measured window. `--node-flags` is given to the sidecars' node (e.g.
 * `--max-semi-space-size=16` to measure V8's default young generation against the proxy's).
 * Bounded: every phase has a fixed length, every wait a deadline, every child is stopped by PID.
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, get } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

type Message = Record<string, unknown> & { kind: string };
const self = fileURLToPath(import.meta.url);
const cli = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const role = process.argv[2];

// ── the server: answers every request with a small JSON body ──────────────────────────────────────
if (role === '--upstream') {
  const body = Buffer.from('{"id":42,"name":"item","ok":true}');
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () =>
    process.send!({ kind: 'ready', port: (server.address() as { port: number }).port }),
  );
}

// ── the load generator: `--load <origin> <host> <rate> <ms> <connections>` ─────────────────────────
if (role === '--load') {
  const [origin, host, rate, ms, connections] = process.argv.slice(3) as [string, string, string, string, string];
  const { Pool } = await import('undici');
  const pool = new Pool(origin, { connections: Number(connections), pipelining: 1 });
  const intervalMs = 1000 / Number(rate);
  const total = Math.floor(Number(ms) / intervalMs);
  const latencies = new Float64Array(total);
  let failed = 0;
  let done = 0;
  const finished = Promise.withResolvers<void>();
  const start = performance.now();
  for (let i = 0; i < total; i++) {
    const planned = start + i * intervalMs;
    const wait = planned - performance.now();
    if (wait > 1) await sleep(wait);
    const record = (ok: boolean) => {
      latencies[i] = performance.now() - planned;
      if (!ok) failed++;
      if (++done === total) finished.resolve();
    };
    pool.request({ method: 'GET', path: '/api/v1/items/42', headers: { host } }).then(
      async (res) => {
        await res.body.dump();
        record(res.statusCode === 200);
      },
      () => record(false),
    );
  }
  await finished.promise;
  await pool.close();
  const sorted = Array.from(latencies).sort((x, y) => x - y);
  const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
  process.send!({
    kind: 'result',
    p50: q(0.5),
    p90: q(0.9),
    p99: q(0.99),
    p999: q(0.999),
    max: sorted[sorted.length - 1]!,
    count: total,
    failed,
    seconds: (performance.now() - start) / 1000,
  });
}

// ── the driver ────────────────────────────────────────────────────────────────────────────────────
interface Latency {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  failed: number;
  count: number;
}
interface SidecarFigures {
  idleRss: number;
  idlePrivate: number;
  idleCpu: number;
  loadRss: number;
  loadPrivate: number;
  cpu: number;
  gcCount: number;
  gcMs: number;
  loopMaxMs: number;
}

const MiB = 2 ** 20;
const TICKS_PER_SECOND = 100;

/** RSS and private memory (bytes) of a process, from /proc. */
function memoryOf(pid: number): { rss: number; private: number } {
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(rollup)?.[1] ?? 0) * 1024;
  return { rss: kb('Rss'), private: kb('Private_Clean') + kb('Private_Dirty') };
}

/** CPU seconds (user + system) a process has used. */
function cpuOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** From prom-client's default metrics: GC pauses (count, seconds) so far, and the loop's worst delay since the last scrape. */
async function scrape(adminPort: number): Promise<{ gcCount: number; gcSeconds: number; loopMax: number }> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  let gcCount = 0;
  let gcSeconds = 0;
  let loopMax = 0;
  for (const line of text.split('\n')) {
    const [name, value] = [line.slice(0, line.lastIndexOf(' ')), Number(line.slice(line.lastIndexOf(' ') + 1))];
    if (name.startsWith('nodejs_gc_duration_seconds_count')) gcCount += value;
    else if (name.startsWith('nodejs_gc_duration_seconds_sum')) gcSeconds += value;
    else if (name === 'nodejs_eventloop_lag_max_seconds') loopMax = value;
  }
  return { gcCount, gcSeconds, loopMax };
}

interface Proc {
  child: ChildProcess;
  logs: Record<string, unknown>[];
  waitLog(msg: string, ms: number): Promise<Record<string, unknown>>;
}

if (!['--upstream', '--load'].includes(role ?? '')) {
  const { values } = parseArgs({
    options: {
      rate: { type: 'string', default: '1000' },
      seconds: { type: 'string', default: '20' },
      warmup: { type: 'string', default: '10' },
      idle: { type: 'string', default: '5' },
      rounds: { type: 'string', default: '3' },
      connections: { type: 'string', default: '32' },
      modes: { type: 'string', default: 'DISABLE,STRICT' },
      'node-flags': { type: 'string', default: '' },
    },
  });
  const rate = Number(values.rate);
  const modes = values.modes.split(',').filter(Boolean);
  const nodeFlags = values['node-flags'].split(/\s+/).filter(Boolean);
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-bench-mesh-'));
  const children = new Set<ChildProcess>();

  /** A meshgate command, its JSON log lines kept to wait on. */
  const meshgate = (args: string[], flags: string[] = []): Proc => {
    const child = spawn(process.execPath, [...flags, cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
    children.add(child);
    const logs: Record<string, unknown>[] = [];
    let buffered = '';
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffered += chunk;
      for (let nl = buffered.indexOf('\n'); nl !== -1; nl = buffered.indexOf('\n')) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        try {
          logs.push(JSON.parse(line) as Record<string, unknown>);
        } catch {}
      }
    });
    const waitLog = async (msg: string, ms: number) => {
      const deadline = performance.now() + ms;
      for (;;) {
        const found = logs.find((l) => l.msg === msg);
        if (found) return found;
        if (child.exitCode !== null || performance.now() > deadline)
          throw new Error(`meshgate ${args[0]}: no "${msg}" (exit ${child.exitCode})\n${stderr}`);
        await sleep(20);
      }
    };
    return { child, logs, waitLog };
  };
  const stop = async (child: ChildProcess) => {
    children.delete(child);
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const exited = once(child, 'exit');
    if ((await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)])) === false) {
      child.kill('SIGKILL');
      await exited;
    }
  };
  const load = async (port: number, host: string, ms: number): Promise<Latency> => {
    const child = fork(self, ['--load', `http://127.0.0.1:${port}`, host, values.rate, String(ms), values.connections]);
    children.add(child);
    const [result] = (await once(child, 'message')) as [Message & Latency];
    await stop(child);
    return result;
  };
  /** Sends through A until service-b answers (B registered, its endpoint pushed to A). */
  const untilServed = async (port: number) => {
    const deadline = performance.now() + 30_000;
    let last = '';
    while (performance.now() < deadline) {
      // node:http, not fetch: fetch will not send another Host.
      last = await new Promise<string>((resolve) => {
        const req = get(
          { host: '127.0.0.1', port, path: '/api/v1/items/42', headers: { host: 'service-b' } },
          (res) => {
            let body = '';
            res.setEncoding('utf8').on('data', (c: string) => (body += c));
            res.on('end', () => resolve(`${res.statusCode} ${body}`));
          },
        );
        req.on('error', (e) => resolve(e.message));
      });
      if (last.startsWith('200 ')) return;
      await sleep(100);
    }
    throw new Error(`the mesh did not serve service-b within 30 s; last answer: ${last}`);
  };

  try {
    const upstreamChild = fork(self, ['--upstream']);
    children.add(upstreamChild);
    const [{ port: upstreamPort }] = (await once(upstreamChild, 'message')) as [{ port: number }];
    const app = `http://127.0.0.1:${upstreamPort}`;
    const latency: Record<string, Latency[]> = {};
    const figures: Record<string, [SidecarFigures[], SidecarFigures[]]> = {};
    const loads: number[] = [];
    for (let round = 1; round <= Number(values.rounds); round++) {
      loads.push(loadavg()[0]!);
      await load(upstreamPort, 'service-b', Number(values.warmup) * 1000);
      (latency.direct ??= []).push(await load(upstreamPort, 'service-b', Number(values.seconds) * 1000));
      for (const mode of modes) {
        const model = join(dir, `mesh-${mode}.json`);
        writeFileSync(
          model,
          JSON.stringify({
            mesh: { trustDomain: 'cluster.local', mtls: { mode } },
            services: [{ name: 'service-a' }, { name: 'service-b' }],
          }),
        );
        const cp = meshgate([
          'control-plane',
          '--config',
          model,
          '--port',
          '0',
          '--warmup',
          '0',
          '--no-watch',
          '--state-dir',
          join(dir, 'ca'),
        ]);
        const cpUrl = `http://127.0.0.1:${(await cp.waitLog('control plane started', 30_000)).port}`;
        const sidecar = (service: string, upstreams: string) =>
          meshgate(
            [
              'sidecar',
              '--service',
              service,
              '--app',
              app,
              '--ready-path',
              '/',
              '--control-plane',
              cpUrl,
              '--inbound-port',
              '0',
              '--outbound-port',
              '0',
              '--admin-port',
              '0',
              `--upstreams=${upstreams}`,
              '--drain',
              '1s',
            ],
            nodeFlags,
          );
        const b = sidecar('service-b', '');
        const a = sidecar('service-a', 'service-b');
        const [aStarted, bStarted] = await Promise.all([a, b].map((s) => s.waitLog('sidecar started', 30_000)));
        const aPort = (aStarted!.listeners as { outbound: number }).outbound;
        await untilServed(aPort);
        const sides = [
          { proc: a, admin: aStarted!.admin as number },
          { proc: b, admin: bStarted!.admin as number },
        ];
        const pid = (s: (typeof sides)[number]) => s.proc.child.pid!;
        const idleCpu0 = sides.map((s) => cpuOf(pid(s)));
        await sleep(Number(values.idle) * 1000);
        const idle = sides.map((s) => ({
          ...memoryOf(pid(s)),
          cpu: (cpuOf(pid(s)) - idleCpu0[sides.indexOf(s)]!) / Number(values.idle),
        }));
        await load(aPort, 'service-b', Number(values.warmup) * 1000);
        const before = await Promise.all(sides.map((s) => scrape(s.admin)));
        const cpu0 = sides.map((s) => cpuOf(pid(s)));
        const t0 = performance.now();
        const peak = sides.map(() => ({ rss: 0, private: 0 }));
        const sampler = setInterval(() => {
          for (const [i, s] of sides.entries()) {
            const m = memoryOf(pid(s));
            peak[i] = { rss: Math.max(peak[i]!.rss, m.rss), private: Math.max(peak[i]!.private, m.private) };
          }
        }, 250);
        const result = await load(aPort, 'service-b', Number(values.seconds) * 1000);
        clearInterval(sampler);
        const wall = (performance.now() - t0) / 1000;
        const after = await Promise.all(sides.map((s) => scrape(s.admin)));
        (latency[mode] ??= []).push(result);
        const perSide = (figures[mode] ??= [[], []]);
        for (const i of [0, 1]) {
          const side = sides[i]!;
          perSide[i]!.push({
            idleRss: idle[i]!.rss / MiB,
            idlePrivate: idle[i]!.private / MiB,
            idleCpu: idle[i]!.cpu,
            loadRss: peak[i]!.rss / MiB,
            loadPrivate: peak[i]!.private / MiB,
            cpu: (cpuOf(pid(side)) - cpu0[i]!) / wall,
            gcCount: after[i]!.gcCount - before[i]!.gcCount,
            gcMs: (after[i]!.gcSeconds - before[i]!.gcSeconds) * 1000,
            loopMaxMs: after[i]!.loopMax * 1000,
          });
        }
        for (const s of [a, b]) await stop(s.child);
        await stop(cp.child);
        console.error(
          `round ${round} ${mode}: p50 ${result.p50.toFixed(3)} p99 ${result.p99.toFixed(3)} p99.9 ${result.p999.toFixed(3)} max ${result.max.toFixed(1)} ms, failed ${result.failed}; load average ${loadavg()[0]!.toFixed(1)}`,
        );
      }
    }

    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? Number.NaN;
    const m = (rows: Latency[], k: keyof Latency) => median(rows.map((r) => r[k]));
    const f = (rows: SidecarFigures[], k: keyof SidecarFigures) => median(rows.map((r) => r[k]));
    const direct = latency.direct!;
    console.log(
      `${rate} req/s over ${values.connections} connections, ${values.seconds} s measured after ${values.warmup} s warm-up, median of ${values.rounds} rounds; load average ${loads.map((l) => l.toFixed(1)).join(', ')} at the rounds' starts${nodeFlags.length ? `; sidecars with ${nodeFlags.join(' ')}` : ''}`,
    );
    console.log('');
    console.log(
      '| path | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | added p50 | added p99 | added p99.9 | failed |',
    );
    console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    const row = (label: string, rows: Latency[], isDirect: boolean) => {
      const add = (k: keyof Latency) => (isDirect ? '—' : (m(rows, k) - m(direct, k)).toFixed(3));
      console.log(
        `| ${label} | ${m(rows, 'p50').toFixed(3)} | ${m(rows, 'p90').toFixed(3)} | ${m(rows, 'p99').toFixed(3)} | ${m(rows, 'p999').toFixed(3)} | ${m(rows, 'max').toFixed(1)} | ${add('p50')} | ${add('p99')} | ${add('p999')} | ${rows.reduce((s, r) => s + r.failed, 0)} |`,
      );
    };
    row('client → server', direct, true);
    for (const mode of modes) row(`client → A → B → server, mtls ${mode}`, latency[mode]!, false);
    console.log('');
    console.log(
      '| sidecar | idle RSS MiB | idle private MiB | idle vCPU | RSS MiB under load | private MiB under load | vCPU | vCPU per 1000 req/s | GC pauses | GC ms | worst loop delay ms |',
    );
    console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const mode of modes)
      for (const [i, name] of ['A (outbound)', 'B (inbound)'].entries()) {
        const rows = figures[mode]![i]!;
        console.log(
          `| ${name}, ${mode} | ${f(rows, 'idleRss').toFixed(0)} | ${f(rows, 'idlePrivate').toFixed(0)} | ${f(rows, 'idleCpu').toFixed(3)} | ${f(rows, 'loadRss').toFixed(0)} | ${f(rows, 'loadPrivate').toFixed(0)} | ${f(rows, 'cpu').toFixed(3)} | ${((f(rows, 'cpu') * 1000) / rate).toFixed(3)} | ${f(rows, 'gcCount').toFixed(0)} | ${f(rows, 'gcMs').toFixed(1)} | ${f(rows, 'loopMaxMs').toFixed(1)} |`,
        );
      }
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}
