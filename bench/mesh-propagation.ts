/**
 * Config propagation across the mesh: a control plane (`meshgate control-plane`, its own process) and
 * N sidecar proxies (real ProxyServers with their subscriptions, spread over a few processes), then
 * a series of changes (instances registering and leaving, model updates). Each change's own record
 * (`GET /changes/{id}`) says when every proxy ACKed it; this reports those figures.
 *
 *   node_modules/.bin/node bench/mesh-propagation.ts [--proxies 50] [--processes 5] [--changes 30] [--gap 200ms]
 *
 * Bounded: every wait has a deadline, every process is stopped by PID at the end. Exit 1 when a
 * change was not applied by every proxy.
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { Agent } from 'node:http';
import { availableParallelism, cpus } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { ChangeRecord, ProxyStatusView } from '../src/api/mesh.ts';
import { parseDuration } from '../src/core/duration.ts';
import { silentLogger } from '../src/observability/logger.ts';
import { DeferredDataPlane, InProcessDataPlane } from '../src/proxy/data-plane.ts';
import { requestJson } from '../src/proxy/mesh/http.ts';
import { ControlPlaneSubscription } from '../src/proxy/mesh/subscription.ts';
import { dataPlanePipeline, MESH_MESSAGES } from '../src/proxy/plane-pipeline.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const node = process.execPath;

// ── proxy worker: `--worker URL FIRST COUNT` ────────────────────────────────────────────────────────
if (process.argv[2] === '--worker') {
  const [url, first, count] = [process.argv[3]!, Number(process.argv[4]), Number(process.argv[5])];
  const subs: ControlPlaneSubscription[] = [];
  const planes: DeferredDataPlane[] = [];
  for (let i = first; i < first + count; i++) {
    const plane = new DeferredDataPlane((loaded) => InProcessDataPlane.start(loaded));
    const sub = new ControlPlaneSubscription({
      url,
      identity: {
        id: `bench-${i}`,
        kind: 'sidecar',
        service: `app-${i}`,
        address: '127.0.0.1',
        inboundPort: 0,
        outboundPort: 0,
        app: 'http://127.0.0.1:9',
      },
      log: silentLogger(),
      pipeline: dataPlanePipeline(plane, silentLogger(), { messages: MESH_MESSAGES }),
    });
    sub.start();
    subs.push(sub);
    planes.push(plane);
  }
  await Promise.all(subs.map((s) => s.firstConfig));
  process.send?.({ ready: count });
  process.on('disconnect', () => {
    for (const s of subs) s.close();
    void Promise.all(planes.map((p) => p.close(0))).then(() => process.exit(0));
  });
} else {
  await main();
}

async function main() {
  const { values } = parseArgs({
    options: {
      proxies: { type: 'string', default: '50' },
      processes: { type: 'string', default: '5' },
      changes: { type: 'string', default: '30' },
      gap: { type: 'string', default: '200ms' },
    },
  });
  const proxies = Number(values.proxies);
  const processes = Math.min(proxies, Number(values.processes));
  const changes = Number(values.changes);
  const gapMs = parseDuration(values.gap!) ?? 200;
  const agent = new Agent({ keepAlive: true });
  const children: ChildProcess[] = [];
  const stopAll = () => {
    for (const c of children) if (c.exitCode === null && c.pid) process.kill(c.pid, 'SIGKILL');
  };
  process.on('exit', stopAll);

  // The control plane, as shipped.
  const cp = spawn(node, [`${root}src/cli/main.ts`, 'control-plane', '--port', '0', '--warmup', '0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(cp);
  const url = await controlPlaneUrl(cp);
  const api = (method: string, path: string, body?: unknown) => requestJson(agent, url + path, method, body, 5_000);

  // The proxies.
  const per = Math.ceil(proxies / processes);
  const started = performance.now();
  await Promise.all(
    Array.from({ length: processes }, async (_, p) => {
      const count = Math.min(per, proxies - p * per);
      if (count <= 0) return;
      const child = fork(fileURLToPath(import.meta.url), ['--worker', url, String(p * per), String(count)], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      children.push(child);
      const [message] = (await Promise.race([once(child, 'message'), sleep(60_000).then(() => [null])])) as [unknown];
      if (!message) throw new Error(`proxy process ${p} did not start within 60 s`);
    }),
  );
  await until(
    async () => {
      const { proxies: list } = (await api('GET', '/proxies')).body as { proxies: ProxyStatusView[] };
      return list.length === proxies && list.every((x) => x.state === 'SYNCED');
    },
    30_000,
    'every proxy in sync',
  );
  console.error(
    `${proxies} proxies in ${processes} processes in sync after ${Math.round(performance.now() - started)} ms`,
  );

  // The changes: instances coming and going, and now and then a new model.
  const ids: number[] = [];
  const live: string[] = [];
  for (let n = 0; n < changes; n++) {
    const before = lastChange(((await api('GET', '/changes?limit=1')).body as { changes: ChangeRecord[] }).changes);
    if (n % 5 === 4) {
      const model = { services: [{ name: 'bench-target', endpoints: [], timeouts: { request: `${n + 1}s` } }] };
      const res = await api('PUT', '/config', model);
      if (res.status !== 200) throw new Error(`PUT /config: ${JSON.stringify(res.body)}`);
    } else if (n % 2 === 0 || live.length === 0) {
      live.push(`target-${n}`);
      await api('PUT', `/instances/target-${n}`, {
        service: 'bench-target',
        address: '127.0.0.1',
        port: 20_000 + n,
        ttlMs: 300_000,
      });
    } else {
      await api('DELETE', `/instances/${live.shift()}`);
    }
    const id = await until(
      async () => {
        const latest = lastChange(((await api('GET', '/changes?limit=1')).body as { changes: ChangeRecord[] }).changes);
        return latest > before ? latest : undefined;
      },
      5_000,
      `change ${n} to be recorded`,
    );
    ids.push(id);
    await sleep(gapMs);
  }

  const records = await Promise.all(
    ids.map((id) =>
      until(
        async () => {
          const record = (await api('GET', `/changes/${id}`)).body as ChangeRecord;
          return record.status === 'propagating' ? undefined : record;
        },
        30_000,
        `change ${id} to settle`,
      ),
    ),
  );
  const all = records
    .flatMap((r) => r.results.map((x) => x.propagationMs).filter((x): x is number => x !== null))
    .sort((a, b) => a - b);
  const p99s = records.map((r) => r.propagation.p99Ms ?? Number.NaN).sort((a, b) => a - b);
  const incomplete = records.filter((r) => r.status !== 'applied' || r.propagation.applied !== proxies);
  const pct = (list: number[], p: number) => list[Math.min(list.length - 1, Math.ceil(p * list.length) - 1)] ?? null;
  const report = {
    node: process.version,
    cpu: `${cpus()[0]?.model ?? '?'} (${availableParallelism()} CPUs)`,
    proxies,
    proxyProcesses: processes,
    changes: records.length,
    appliedEverywhere: records.length - incomplete.length,
    perChangeRecordP99Ms: { median: pct(p99s, 0.5), worst: p99s.at(-1) ?? null },
    allAcksMs: { p50: pct(all, 0.5), p99: pct(all, 0.99), max: all.at(-1) ?? null, count: all.length },
  };
  console.log(JSON.stringify(report, null, 2));
  console.error(
    [
      'change  kind      applied  p50ms  p99ms  maxms  cause',
      ...records.map(
        (r) =>
          `${String(r.id).padEnd(6)}  ${r.kind.padEnd(8)}  ${String(r.propagation.applied).padStart(7)}  ${String(r.propagation.p50Ms).padStart(5)}  ${String(r.propagation.p99Ms).padStart(5)}  ${String(r.propagation.maxMs).padStart(5)}  ${r.cause}`,
      ),
    ].join('\n'),
  );

  for (const c of children.slice(1)) c.disconnect?.();
  await sleep(200);
  stopAll();
  agent.destroy();
  process.exit(incomplete.length === 0 ? 0 : 1);
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
    const timer = setTimeout(() => reject(new Error('the control plane did not start within 15 s')), 15_000);
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
