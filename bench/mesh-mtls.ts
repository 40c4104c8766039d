/**
 * What two sidecars add to a call, with mutual TLS and without: client → sidecar A (outbound) →
 * sidecar B (inbound) → server, at a fixed rate, beside the client calling the server directly. Each
 * party is its own process; sidecars hold real workload identities (keys made in the sidecar, CSRs
 * signed by the control plane's CA in this process, over IPC).
 *
 *   node_modules/.bin/node bench/mesh-mtls.ts [--rate 1000] [--seconds 10] [--warmup 5] [--rounds 3] [--connections 64]
 *
 * Latency is measured from each request's scheduled send time (so a stall counts against every
 * request it delays). Reports p50/p99 per path, what the two proxies add over the direct call, and
 * each sidecar's CPU (share of one core) and RSS during the measured window. Bounded: every phase
 * has a fixed length, every child is stopped by PID.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

type Message = Record<string, unknown> & { kind: string };

const self = new URL(import.meta.url).pathname;
const role = process.argv[2];

function send(message: Message): void {
  process.send!(message);
}

function nextMessage(child: NodeJS.Process | ChildProcess, kind: string): Promise<Message> {
  return new Promise((resolve) => {
    const on = (m: Message) => {
      if (m.kind !== kind) return;
      child.off('message', on);
      resolve(m);
    };
    child.on('message', on);
  });
}

// ── the server ────────────────────────────────────────────────────────────────────────────────────
if (role === '--upstream') {
  const body = Buffer.from('{"id":42,"name":"item","ok":true}');
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => send({ kind: 'ready', port: (server.address() as { port: number }).port }));
}

// ── a sidecar: `--sidecar <a|b> <STRICT|DISABLE> <target origin>` ──────────────────────────────────
if (role === '--sidecar') {
  const [side, mode, target] = process.argv.slice(3) as [string, string, string];
  const { loadConfigObject } = await import('../src/config/load.ts');
  const { ProxyServer } = await import('../src/proxy/proxy.ts');
  const service = side === 'a' ? 'service-a' : 'service-b';
  let identity: import('../src/proxy/identity/workload-identity.ts').WorkloadIdentity | undefined;
  if (mode !== 'DISABLE') {
    const { WorkloadIdentity } = await import('../src/proxy/identity/workload-identity.ts');
    identity = await WorkloadIdentity.start({
      issue: async (csrPem) => {
        send({ kind: 'csr', csrPem, service });
        const answer = await nextMessage(process, 'certificate');
        return { certChainPem: answer.certChainPem as string, bundlePem: answer.bundlePem as string };
      },
    });
  }
  const config =
    side === 'a'
      ? {
          listeners: [{ name: 'outbound', port: 0, address: '127.0.0.1' }],
          services: [{ name: 'service-b', endpoints: [{ url: target }], mtls: { mode } }],
          routes: [{ name: 'outbound.service-b', service: 'service-b' }],
        }
      : {
          listeners: [{ name: 'inbound', port: 0, address: '127.0.0.1', mtls: { mode } }],
          services: [{ name: 'inbound.service-b', endpoints: [{ url: target }] }],
          routes: [{ name: 'inbound', service: 'inbound.service-b' }],
        };
  const loaded = await loadConfigObject(config, 'bench');
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.issues));
  const proxy = await ProxyServer.start(loaded.value, { role: 'mesh', ...(identity && { identity }) });
  let cpuFrom = process.cpuUsage();
  let fromMs = performance.now();
  process.on('message', (m: Message) => {
    if (m.kind === 'mark') {
      cpuFrom = process.cpuUsage();
      fromMs = performance.now();
    } else if (m.kind === 'stats') {
      const cpu = process.cpuUsage(cpuFrom);
      const ms = performance.now() - fromMs;
      send({
        kind: 'stats',
        cpuPercent: ((cpu.user + cpu.system) / 1000 / ms) * 100,
        rssMiB: process.memoryUsage().rss / 2 ** 20,
      });
    }
  });
  send({ kind: 'ready', port: Object.values(proxy.ports())[0] });
}

// ── the client: `--load <origin> <rate> <ms> <connections>` ──────────────────────────────────────
if (role === '--load') {
  const [origin, rate, ms, connections] = process.argv.slice(3) as [string, string, string, string];
  const { Pool } = await import('undici');
  const pool = new Pool(origin, { connections: Number(connections), pipelining: 1 });
  const intervalMs = 1000 / Number(rate);
  const total = Math.floor(Number(ms) / intervalMs);
  const latencies = new Float64Array(total);
  let failed = 0;
  const start = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const planned = start + i * intervalMs;
    const wait = planned - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    // From the planned time (a stall counts against every request it delays), never from before the send.
    const due = Math.min(planned, performance.now());
    pending.push(
      pool
        .request({ method: 'GET', path: '/api/v1/items/42', headers: { host: 'service-b' } })
        .then(async (res) => {
          await res.body.dump();
          if (res.statusCode !== 200) failed++;
          latencies[i] = performance.now() - due;
        })
        .catch(() => {
          failed++;
          latencies[i] = performance.now() - due;
        }),
    );
  }
  await Promise.all(pending);
  await pool.close();
  const sorted = Array.from(latencies).sort((x, y) => x - y);
  const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
  send({ kind: 'result', p50: q(0.5), p99: q(0.99), count: total, failed });
}

// ── the driver ────────────────────────────────────────────────────────────────────────────────────
if (!['--upstream', '--sidecar', '--load'].includes(role ?? '')) {
  const { values } = parseArgs({
    options: {
      rate: { type: 'string', default: '1000' },
      seconds: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '5' },
      rounds: { type: 'string', default: '3' },
      connections: { type: 'string', default: '64' },
    },
  });
  const { CertificateAuthority } = await import('../src/control-plane/ca/ca.ts');
  const stateDir = mkdtempSync(join(tmpdir(), 'meshgate-bench-ca-'));
  const ca = await CertificateAuthority.open({ trustDomain: 'cluster.local', stateDir });
  const children = new Set<ChildProcess>();
  const start = async (args: string[]): Promise<{ child: ChildProcess; port: number }> => {
    const child = fork(self, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.add(child);
    child.on('message', async (m: Message) => {
      if (m.kind !== 'csr') return;
      const issued = await ca.issue(m.csrPem as string, { namespace: 'default', serviceAccount: m.service as string });
      child.send({ kind: 'certificate', certChainPem: issued.certChainPem, bundlePem: issued.bundlePem });
    });
    const ready = await nextMessage(child, 'ready');
    return { child, port: ready.port as number };
  };
  const stop = async (child: ChildProcess) => {
    children.delete(child);
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  };
  const load = async (port: number, ms: number) => {
    const child = fork(self, ['--load', `http://127.0.0.1:${port}`, values.rate, String(ms), values.connections]);
    children.add(child);
    const result = await nextMessage(child, 'result');
    await stop(child);
    return result as Message & { p50: number; p99: number; failed: number; count: number };
  };
  try {
    const upstream = await start(['--upstream']);
    const rows: Record<string, { p50: number[]; p99: number[]; failed: number; cpu: number[][]; rss: number[][] }> = {};
    for (let round = 0; round < Number(values.rounds); round++) {
      for (const path of ['direct', 'DISABLE', 'STRICT']) {
        const row = (rows[path] ??= { p50: [], p99: [], failed: 0, cpu: [[], []], rss: [[], []] });
        let entry = upstream.port;
        const sidecars: ChildProcess[] = [];
        if (path !== 'direct') {
          const b = await start(['--sidecar', 'b', path, `http://127.0.0.1:${upstream.port}`]);
          const a = await start(['--sidecar', 'a', path, `http://127.0.0.1:${b.port}`]);
          sidecars.push(a.child, b.child);
          entry = a.port;
        }
        await load(entry, Number(values.warmup) * 1000);
        for (const s of sidecars) s.send({ kind: 'mark' });
        const result = await load(entry, Number(values.seconds) * 1000);
        row.p50.push(result.p50);
        row.p99.push(result.p99);
        row.failed += result.failed;
        for (const [i, s] of sidecars.entries()) {
          s.send({ kind: 'stats' });
          const stats = await nextMessage(s, 'stats');
          row.cpu[i]!.push(stats.cpuPercent as number);
          row.rss[i]!.push(stats.rssMiB as number);
        }
        for (const s of sidecars) await stop(s);
        console.error(`round ${round + 1} ${path}: p50 ${result.p50.toFixed(3)} ms p99 ${result.p99.toFixed(3)} ms`);
      }
    }
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? Number.NaN;
    const direct = rows.direct!;
    const d50 = median(direct.p50);
    const d99 = median(direct.p99);
    console.log(
      `${values.rate} req/s, ${values.connections} connections, ${values.seconds} s measured after ${values.warmup} s warm-up, median of ${values.rounds} rounds`,
    );
    console.log(
      '| path | p50 ms | p99 ms | added p50 ms | added p99 ms | sidecar A CPU % | sidecar B CPU % | A RSS MiB | B RSS MiB | failed |',
    );
    console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const [path, label] of [
      ['direct', 'client → server'],
      ['DISABLE', 'client → A → B → server, plaintext'],
      ['STRICT', 'client → A → B → server, mutual TLS'],
    ] as const) {
      const r = rows[path]!;
      const p50 = median(r.p50);
      const p99 = median(r.p99);
      const side = (xs: number[][], i: number, digits: number) =>
        path === 'direct' ? '—' : median(xs[i]!).toFixed(digits);
      console.log(
        `| ${label} | ${p50.toFixed(3)} | ${p99.toFixed(3)} | ${path === 'direct' ? '—' : (p50 - d50).toFixed(3)} | ${path === 'direct' ? '—' : (p99 - d99).toFixed(3)} | ${side(r.cpu, 0, 1)} | ${side(r.cpu, 1, 1)} | ${side(r.rss, 0, 0)} | ${side(r.rss, 1, 0)} | ${r.failed} |`,
      );
    }
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(stateDir, { recursive: true, force: true });
  }
}
