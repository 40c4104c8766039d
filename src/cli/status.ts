/** `meshgate status [CHANGE]`: the mesh at a glance, or what became of one change. */
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type { ChangeRecord, RolloutSignals, RolloutView } from '../api/mesh.ts';
import { parseDuration } from '../core/duration.ts';
import { ago, controlPlaneUrl, EXIT, getJson, operatorToken, reporting, short, table } from './mesh-client.ts';

export const usage = `Usage: meshgate status [CHANGE] [--control-plane URL] [--output text|json] [--wait DURATION]

Without CHANGE: the control plane, its model, the registered instances, the proxies by sync state,
the rollout being watched (if any) and the latest changes. With a change id: which proxies it was
pushed to, which applied it, which rejected it and why, and how long it took to reach each
(p50/p99/max); for a change rolled out to canaries first (meshgate apply --canary-proxies), which
proxies were the canaries, what their traffic measured, and whether it was promoted or rolled back,
when, and why.

  --wait DURATION   with CHANGE: wait up to this long for it to stop propagating (a rollout: to be
                    promoted or rolled back, and the promotion to reach every proxy)

Exit status: 0 (with CHANGE: every proxy applied it, or it changed no proxy), 1 the change was
rejected by a proxy, rolled back, reached a proxy that then disconnected, or is still propagating,
2 bad usage, 3 the control plane cannot be reached or has no such change.`;

interface StatusView {
  controlPlane: { id: string; startedAt: string; warm: boolean };
  model: { version: string; source: string; loadedAt: string };
  instances: { total: number; services: Record<string, { instances: number; healthy: number }> };
  proxies: { total: number; byState: Record<string, number>; rssBytes?: number; rss?: Record<string, number> };
  changes: ChangeRecord[];
  rollout?: { change: number; rollout: RolloutView } | null;
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
      ...(s.rollout ? [rolloutLine(s.rollout.change, s.rollout.rollout)] : []),
      '',
      s.changes.length === 0
        ? 'no changes yet'
        : table(
            ['CHANGE', 'AT', 'STATUS', 'PUSHED', 'APPLIED', 'P50', 'P99', 'CAUSE'],
            s.changes.map((c) => [
              String(c.id),
              ago(c.at),
              // A rollout's own word for where it is: `canary` while watched, `promoted` once everywhere.
              c.rollout?.state === 'canary'
                ? 'canary'
                : c.rollout?.state === 'promoted' && c.status === 'applied'
                  ? 'promoted'
                  : c.status,
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

const rate = (v: number | null) => (v === null ? '-' : `${(v * 100).toFixed(1)}%`);
const signalsText = (s: RolloutSignals) =>
  `${s.requests} requests from ${s.proxies} prox${s.proxies === 1 ? 'y' : 'ies'}, error rate ${rate(s.errorRate)}, p99 ${ms(s.p99Ms)}`;

/** The rollout being watched, in one line. */
function rolloutLine(change: number, r: RolloutView): string {
  const watch =
    r.watchEndsAt === null ? 'waiting for the canaries to apply it' : `watched until ${r.watchEndsAt} (${r.watchMs}ms)`;
  return `rollout: change ${change} on canaries ${r.canaries.join(', ')} (${r.canaryProxies}; ${r.baseline.length} more affected), ${watch}`;
}

/** What became of a change rolled out to canaries first. */
export function rolloutLines(c: ChangeRecord): string[] {
  const r = c.rollout;
  if (r === undefined) return [];
  const thresholds = [
    `error rate above ${rate(r.thresholds.errorRate)}`,
    ...(r.thresholds.p99Ms === null ? [] : [`p99 above ${r.thresholds.p99Ms}ms`]),
  ].join(' or ');
  const d = r.decision;
  return [
    '',
    `rollout: ${r.state}${d ? ` at ${d.at} (${d.by})` : ''}`,
    `  canaries (${r.canaryProxies}): ${r.canaries.join(', ')}; kept on ${short(r.previousVersion)}: ${r.baseline.length ? r.baseline.join(', ') : 'none'}`,
    `  watch ${r.watchMs}ms from ${r.watchStartedAt ?? '(not started)'}; rolls back on a NACK or ${thresholds} once the canaries served ${r.thresholds.minRequests} requests`,
    ...(r.signals
      ? [`  canaries: ${signalsText(r.signals.canary)}`, `  baseline: ${signalsText(r.signals.baseline)}`]
      : []),
    ...(d ? [`  why: ${d.reason}`] : []),
    ...(r.rollbackChange !== null
      ? [`  the canaries got ${short(r.previousVersion)} back as change ${r.rollbackChange}`]
      : []),
  ];
}

export function printChange(c: ChangeRecord) {
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
      ...rolloutLines(c),
    ].join('\n'),
  );
}
