/** `meshgate status [CHANGE]`: the mesh at a glance, or what became of one change. */
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type { ChangeRecord } from '../api/mesh.ts';
import { parseDuration } from '../core/duration.ts';
import { ago, controlPlaneUrl, EXIT, getJson, operatorToken, reporting, short, table } from './mesh-client.ts';

export const usage = `Usage: meshgate status [CHANGE] [--control-plane URL] [--output text|json] [--wait DURATION]

Without CHANGE: the control plane, its model, the registered instances, the proxies by sync state
and the latest changes. With a change id: which proxies it was pushed to, which applied it, which
rejected it and why, and how long it took to reach each (p50/p99/max).

  --wait DURATION   with CHANGE: wait up to this long for it to stop propagating

Exit status: 0 (with CHANGE: every proxy applied it, or it changed no proxy), 1 the change was
rejected by a proxy, reached a proxy that then disconnected, or is still propagating, 2 bad usage,
3 the control plane cannot be reached or has no such change.`;

interface StatusView {
  controlPlane: { id: string; startedAt: string; warm: boolean };
  model: { version: string; source: string; loadedAt: string };
  instances: { total: number; services: Record<string, { instances: number; healthy: number }> };
  proxies: { total: number; byState: Record<string, number>; rssBytes?: number; rss?: Record<string, number> };
  changes: ChangeRecord[];
}

const ms = (v: number | null) => (v === null ? '-' : `${v}ms`);

export async function statusCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      'control-plane': { type: 'string' },
      output: { type: 'string', short: 'o', default: 'text' },
      wait: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(usage);
    return EXIT.ok;
  }
  const waitMs = values.wait === undefined ? 0 : parseDuration(values.wait);
  if (
    positionals.length > 1 ||
    !['text', 'json'].includes(values.output!) ||
    (positionals[0] !== undefined && !/^\d+$/.test(positionals[0])) ||
    waitMs === undefined
  ) {
    console.error(usage);
    return EXIT.usage;
  }
  const base = controlPlaneUrl(values['control-plane']);
  const json = values.output === 'json';
  return reporting('status', async () => {
    if (positionals[0] === undefined) {
      const status = await getJson<StatusView>(base, '/status', { token: operatorToken() });
      if (json) console.log(JSON.stringify(status, null, 2));
      else printSummary(base, status);
      return EXIT.ok;
    }
    const deadline = Date.now() + waitMs;
    let record = await getJson<ChangeRecord>(base, `/changes/${positionals[0]}`, { token: operatorToken() });
    while (record.status === 'propagating' && Date.now() < deadline) {
      await sleep(50);
      record = await getJson<ChangeRecord>(base, `/changes/${positionals[0]}`, { token: operatorToken() });
    }
    if (json) console.log(JSON.stringify(record, null, 2));
    else printChange(record);
    return record.status === 'applied' || record.status === 'no-op' ? EXIT.ok : EXIT.findings;
  });
}

function printSummary(base: string, s: StatusView) {
  const services = Object.entries(s.instances.services)
    .map(([name, c]) => `${name} ${c.healthy}/${c.instances}`)
    .join(', ');
  const states = Object.entries(s.proxies.byState)
    .map(([state, n]) => `${state} ${n}`)
    .join(', ');
  console.log(
    [
      `control plane ${s.controlPlane.id} at ${base}, started ${ago(s.controlPlane.startedAt)}${s.controlPlane.warm ? '' : ' (warming up: pushing nothing yet)'}`,
      `model ${short(s.model.version)} from ${s.model.source}, loaded ${ago(s.model.loadedAt)}`,
      `instances: ${s.instances.total}${services ? ` (healthy/registered: ${services})` : ''}`,
      `proxies: ${s.proxies.total}${states ? ` (${states})` : ''}${s.proxies.rssBytes ? `, ${(s.proxies.rssBytes / 2 ** 20).toFixed(0)} MiB RSS together` : ''}`,
      '',
      s.changes.length === 0
        ? 'no changes yet'
        : table(
            ['CHANGE', 'AT', 'STATUS', 'PUSHED', 'APPLIED', 'P50', 'P99', 'CAUSE'],
            s.changes.map((c) => [
              String(c.id),
              ago(c.at),
              c.status,
              String(c.results.length),
              String(c.propagation.applied),
              ms(c.propagation.p50Ms),
              ms(c.propagation.p99Ms),
              c.cause,
            ]),
          ),
    ].join('\n'),
  );
}

function printChange(c: ChangeRecord) {
  const rejected = c.results.filter((r) => r.status === 'rejected').length;
  console.log(
    [
      `change ${c.id} (${c.kind}): ${c.cause}`,
      `at ${c.at}, model ${short(c.modelVersion)}: ${c.status}`,
      `pushed to ${c.results.length} prox${c.results.length === 1 ? 'y' : 'ies'} (${c.unaffected} unaffected, sent nothing); ` +
        `applied by ${c.propagation.applied}${rejected ? `, rejected by ${rejected}` : ''}; ` +
        `propagation p50 ${ms(c.propagation.p50Ms)}, p99 ${ms(c.propagation.p99Ms)}, max ${ms(c.propagation.maxMs)}`,
      ...(c.results.length
        ? [
            '',
            table(
              ['PROXY', 'RESULT', 'VERSION', 'PROPAGATION', 'ERROR'],
              c.results.map((r) => [
                r.proxy,
                r.status,
                short(r.version),
                ms(r.propagationMs),
                r.error
                  ? [r.error.message, ...(r.error.issues ?? []).map((i) => `${i.path}: ${i.message}`)].join('; ')
                  : '',
              ]),
            ),
          ]
        : []),
    ].join('\n'),
  );
}
