/**
 * `meshgate diff --live`: what a candidate config would do differently on live traffic. Sets it as a
 * proxy's shadow config (or reads the one set), waits while requests go by, prints the differences
 * the shadow counted (docs/shadow.md) and clears the shadow it set.
 */
import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type { ConfigIssue } from '../api/issues.ts';
import { SHADOW_DIFFERENCE_KINDS, type ShadowExample, type ShadowReport } from '../api/shadow.ts';
import { formatIssue } from '../config/issues.ts';
import {
  DEFAULT_ADMIN_PORT,
  DEFAULT_DIFF_DURATION_MS,
  DEFAULT_INSPECT_TIMEOUT_MS,
  DIFF_POLL_INTERVAL_MS,
} from '../core/defaults.ts';
import { parseDuration } from '../core/duration.ts';
import { EXIT, operatorToken, Unavailable } from './mesh-client.ts';

export const usage = `Usage: meshgate diff --live [--config FILE] [--for DURATION] [--admin URL | --control-plane URL] [options]

Evaluates a candidate config beside the live one on the proxy's real requests, in a dry run (the
candidate routes, draws destinations, checks auth and rate limits, but never acts), then reports
how many requests it would have treated differently and shows examples. With --config, FILE is set
as the proxy's shadow config for the run and cleared after it; without, the shadow config already
set is read (and left set).

With --control-plane, FILE is a candidate mesh model: the control plane makes each connected
proxy's config from it (gateway and sidecars) and sets that as the proxy's shadow; the report sums
the proxies' counts (a request is counted at every proxy it crosses) and lists each proxy's.

Options:
      --live              compare against live traffic (required: the only mode)
  -c, --config FILE       the candidate config (YAML or JSON); \${NAME} is not substituted
      --for DURATION      how long to watch (default ${DEFAULT_DIFF_DURATION_MS / 1000}s)
      --requests N        stop as soon as N requests have been compared
      --sample PERCENT    evaluate this percent of requests (default 100)
      --admin URL         the proxy's admin API (default http://127.0.0.1:${DEFAULT_ADMIN_PORT}, or
                          $MESHGATE_ADMIN); an operator token from $MESHGATE_OPERATOR_TOKEN(_FILE)
      --control-plane URL the control plane instead (every proxy connected to it), with the same token
      --json              print the report as JSON

Exit status: 0 no request was treated differently, 1 some were, 2 bad usage or a candidate that is
not valid (its issues are printed), 3 the proxy cannot be reached.`;

interface Reply {
  status: number;
  body: Record<string, unknown> | null;
}

/** One admin API call; the body, if any, is sent as it is (a config text). */
function call(base: string, method: string, path: string, token: string | undefined, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      base + path,
      {
        method,
        timeout: DEFAULT_INSPECT_TIMEOUT_MS,
        headers: {
          ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
          ...(body === undefined
            ? {}
            : { 'content-type': 'application/yaml', 'content-length': Buffer.byteLength(body) }),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          let parsed: Record<string, unknown> | null = null;
          try {
            parsed = JSON.parse(text) as Record<string, unknown>;
          } catch {}
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (e: NodeJS.ErrnoException) =>
      reject(new Unavailable(`cannot reach ${base}: ${e.code ?? e.message}`)),
    );
    req.end(body);
  });
}

const errorText = (r: Reply) =>
  typeof r.body?.error === 'string'
    ? r.body.error
    : typeof r.body?.detail === 'string'
      ? r.body.detail
      : `status ${r.status}`;

const pct = (part: number, whole: number) => (whole === 0 ? '0%' : `${((100 * part) / whole).toFixed(1)}%`);

function split(counts: Record<string, number>): string {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const parts = Object.entries(counts)
    .sort((a, b) => b[1] - a[1])
    .map(([name, n]) => `${name} ${pct(n, total)}`);
  return parts.length === 0 ? '-' : parts.join(', ');
}

function outcome(o: ShadowExample['live']): string {
  if (o.route === null) return 'no route';
  const parts = [`route ${o.route}`];
  if (o.destination !== null) parts.push(`→ ${o.destination}`);
  if (o.refused !== null) parts.push(`refused ${o.refused}`);
  if (o.version !== null) parts.push(`version ${o.version}`);
  return parts.join(' ');
}

/** The report as sentences a person reads first, then the splits and examples. */
export function describeReport(r: ShadowReport): string {
  const d = r.differences;
  const lines = [
    `${r.totals.compared} requests compared (of ${r.totals.seen} seen since ${r.since}, sampling ${r.samplePercent}%, ${r.processes} process${r.processes === 1 ? '' : 'es'}); ${r.totals.differing} differ.`,
    `  ${pct(d.destination.differ, d.destination.compared)} of requests would go to a different destination (${d.destination.differ} of ${d.destination.compared}; the candidate draws its own destination)`,
    `      live split:      ${split(r.destinations.live)}`,
    `      candidate split: ${split(r.destinations.shadow)}`,
    `  ${pct(d.route.differ, d.route.compared)} would match a different route (${d.route.differ})`,
    `  ${r.refusals.auth.shadowOnly} would be refused by the new authentication or authorization; ${r.refusals.auth.liveOnly} refused now would be let through`,
    `  ${r.refusals['rate-limit'].shadowOnly} would be refused by the new rate limit; ${r.refusals['rate-limit'].liveOnly} refused now would be let through`,
    `  ${d.version.differ} would be served with a different API version or lifecycle`,
  ];
  if (r.proxies !== undefined && r.proxies.length > 0) {
    lines.push('by proxy:');
    for (const p of r.proxies) {
      const dest = p.differences.destination;
      lines.push(
        `  ${p.proxy} (${p.kind}${p.service === null ? '' : ` ${p.service}`}): ${p.totals.compared} compared, ${p.totals.differing} differ; ${pct(dest.differ, dest.compared)} to a different destination`,
      );
    }
  }
  const examples = SHADOW_DIFFERENCE_KINDS.flatMap((kind) => r.examples[kind].slice(0, 3).map((e) => ({ kind, e })));
  if (examples.length > 0) {
    lines.push('examples:');
    for (const { kind, e } of examples)
      lines.push(
        `  ${kind}: ${e.method} ${e.path} (request ${e.requestId || '-'})`,
        `      live:      ${outcome(e.live)}`,
        `      candidate: ${outcome(e.shadow)}`,
      );
  }
  return lines.join('\n');
}

export async function diffCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      live: { type: 'boolean' },
      config: { type: 'string', short: 'c' },
      for: { type: 'string' },
      requests: { type: 'string' },
      sample: { type: 'string' },
      admin: { type: 'string' },
      'control-plane': { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(usage);
    return EXIT.ok;
  }
  const forMs = values.for === undefined ? DEFAULT_DIFF_DURATION_MS : parseDuration(values.for);
  const requests = values.requests === undefined ? Number.POSITIVE_INFINITY : Number(values.requests);
  const sample = values.sample === undefined ? undefined : Number(values.sample);
  const problems = [
    values.live !== true && '--live is required (the only mode: against live traffic)',
    forMs === undefined && `--for "${values.for}" is not a duration (e.g. 30s, 5m)`,
    !(requests > 0) && `--requests "${values.requests}" is not a positive number`,
    sample !== undefined && !(sample >= 0 && sample <= 100) && `--sample "${values.sample}" is not a percent`,
    values.admin !== undefined && values['control-plane'] !== undefined && 'give --admin or --control-plane, not both',
  ].filter((p): p is string => typeof p === 'string');
  if (problems.length > 0) {
    console.error(`meshgate diff: ${problems.join('; ')}\n\n${usage}`);
    return EXIT.usage;
  }
  const base = (
    values['control-plane'] ??
    values.admin ??
    process.env.MESHGATE_ADMIN ??
    `http://127.0.0.1:${DEFAULT_ADMIN_PORT}`
  ).replace(/\/$/, '');
  const progress = (line: string) => process.stderr.write(`${line}\n`);
  let setHere = false;
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const token = operatorToken();
    if (values.config !== undefined) {
      let text: string;
      try {
        text = await readFile(values.config, 'utf8');
      } catch (e) {
        console.error(`meshgate diff: cannot read ${values.config}: ${(e as NodeJS.ErrnoException).code ?? e}`);
        return EXIT.usage;
      }
      const existing = await call(base, 'GET', '/shadow/report', token);
      if (existing.status === 200) {
        console.error(
          `meshgate diff: ${base} already has a shadow config (${String(existing.body?.hash).slice(0, 8)}); ` +
            'run without --config to read it, or clear it first (DELETE /shadow)',
        );
        return EXIT.usage;
      }
      const query = new URLSearchParams({ file: values.config });
      if (sample !== undefined) query.set('sample', String(sample));
      const set = await call(base, 'PUT', `/shadow?${query}`, token, text);
      if (set.status === 400 && Array.isArray(set.body?.issues)) {
        for (const issue of set.body.issues as ConfigIssue[]) console.error(formatIssue(issue));
        console.error(`meshgate diff: ${values.config} is not valid; the live config is unchanged`);
        return EXIT.usage;
      }
      if (set.status === 422 && Array.isArray(set.body?.refusals))
        for (const r of set.body.refusals as { proxy: string; error: string }[])
          console.error(`  proxy ${r.proxy}: ${r.error}`);
      if (set.status !== 200) throw new Unavailable(`${base}: setting the shadow config: ${errorText(set)}`);
      setHere = true;
      const proxies = typeof set.body?.proxies === 'number' ? `${set.body.proxies} proxies, ` : '';
      progress(
        `shadow config ${String(set.body?.hash).slice(0, 8)} set on ${base} (${proxies}${set.body?.processes} process(es), sampling ${set.body?.samplePercent}%)`,
      );
    }
    const deadline = Date.now() + forMs!;
    let report: ShadowReport | null = null;
    for (;;) {
      const r = await call(base, 'GET', '/shadow/report', token);
      if (r.status === 404) throw new Unavailable(`${base}: ${errorText(r)}`);
      if (r.status !== 200) throw new Unavailable(`${base}: reading the shadow report: ${errorText(r)}`);
      report = r.body as unknown as ShadowReport;
      const left = deadline - Date.now();
      const done = report.totals.compared >= requests || left <= 0 || interrupted;
      progress(
        `${done ? 'done' : `${Math.ceil(left / 1000)}s left`}: ${report.totals.compared} requests compared, ${report.totals.differing} differ`,
      );
      if (done) break;
      await sleep(Math.min(DIFF_POLL_INTERVAL_MS, left));
    }
    if (setHere) {
      // The report as the shadow ends: the requests counted between the last poll and the clear are in it.
      const cleared = await call(base, 'DELETE', '/shadow', token);
      setHere = false;
      if (cleared.status === 200) report = cleared.body?.report as unknown as ShadowReport;
      progress('shadow config cleared');
    }
    if (values.json) console.log(JSON.stringify(report, null, 2));
    else console.log(describeReport(report));
    if (interrupted) return 130;
    return report.totals.differing > 0 ? EXIT.findings : EXIT.ok;
  } catch (e) {
    if (!(e instanceof Unavailable)) throw e;
    console.error(`meshgate diff: ${e.message}`);
    return EXIT.unavailable;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (setHere) await call(base, 'DELETE', '/shadow', operatorToken()).catch(() => {});
  }
}
