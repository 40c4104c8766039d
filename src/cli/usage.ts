/**
 * `meshgate usage [report|export] --config FILE`: reads the usage store a gateway config meters to (its
 * SQLite file or its Redis) and prints the rows (`export`) or who calls which API version (`report`).
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { formatIssue } from '../config/issues.ts';
import { loadConfigFile } from '../config/load.ts';
import { createPluginCatalog } from '../plugins/index.ts';
import { describeStore, meteringSettings, openUsageStore } from '../stores/usage/open.ts';
import { isoHour, parseInstant, summarize, toCsv, toRecords } from '../stores/usage/report.ts';
import type { UsageQuery } from '../stores/usage/store.ts';
import { EXIT, table } from './mesh-client.ts';

export const usage = `Usage: meshgate usage [report] --config FILE [--from DATE] [--to DATE] [--consumer NAME] [--api NAME] [--format text|json]
       meshgate usage export --config FILE [--from DATE] [--to DATE] [--consumer NAME] [--api NAME] [--format csv|json]

Reads the usage store the config meters to (\`metering\`: its SQLite file, or its Redis) and prints
requests and response bytes per hour, consumer, route, API version and status class. \`export\` prints
the rows; \`report\` (the default) totals them per API version and per consumer and version, with the
versions' deprecation and sunset dates from the config: who still calls a version before it goes.
A running gateway writes its counts every metering.flushInterval and when it stops; its admin API's
GET /usage writes them first.

Options:
  -c, --config FILE     the gateway's config file
      --from DATE       hours starting at or after this instant: 2026-12-01 (UTC midnight), 2026-12-01T10:00:00Z
      --to DATE         hours starting before this instant (default: up to now and beyond)
      --consumer NAME   only this consumer
      --api NAME        only this API
  -f, --format FORMAT   export: csv (default) or json; report: text (default) or json

Exit status: 0 printed, 1 the config is invalid or does not meter, 2 bad usage, 3 the store cannot be read.`;

export async function usageCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      from: { type: 'string' },
      to: { type: 'string' },
      consumer: { type: 'string' },
      api: { type: 'string' },
      format: { type: 'string', short: 'f' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(usage);
    return EXIT.ok;
  }
  const sub = positionals[0] ?? 'report';
  const formats = sub === 'export' ? ['csv', 'json'] : ['text', 'json'];
  const format = values.format ?? formats[0]!;
  if (positionals.length > 1 || !['report', 'export'].includes(sub) || !formats.includes(format) || !values.config) {
    console.error(usage);
    return EXIT.usage;
  }
  const query: { -readonly [K in keyof UsageQuery]: UsageQuery[K] } = {};
  for (const name of ['from', 'to'] as const) {
    const value = values[name];
    if (value === undefined) continue;
    const ms = parseInstant(value);
    if (ms === undefined) {
      console.error(`meshgate usage: --${name} "${value}" is not a date (2026-12-01, 2026-12-01T10:00:00Z)`);
      return EXIT.usage;
    }
    query[name] = ms;
  }
  if (values.consumer !== undefined) query.consumer = values.consumer;
  if (values.api !== undefined) query.api = values.api;

  const loaded = await loadConfigFile(values.config, process.env, { catalog: createPluginCatalog() });
  if (!loaded.ok) {
    for (const issue of loaded.issues) console.error(formatIssue(issue));
    console.error(`meshgate usage: ${values.config} is not valid`);
    return EXIT.findings;
  }
  const config = loaded.value.config;
  const settings = meteringSettings(config);
  if (settings === null) {
    console.error(`meshgate usage: ${values.config} does not meter usage (add a metering block)`);
    return EXIT.findings;
  }
  if (settings.store === 'sqlite' && !existsSync(settings.path)) {
    console.error(`meshgate usage: no usage recorded yet: ${settings.path} does not exist`);
    return EXIT.unavailable;
  }
  let rows: Awaited<ReturnType<Awaited<ReturnType<typeof openUsageStore>>['query']>>;
  try {
    const store = await openUsageStore(settings, { readOnly: true });
    try {
      rows = await store.query(query);
    } finally {
      await store.close();
    }
  } catch (e) {
    console.error(`meshgate usage: cannot read ${await describeStore(settings)}: ${(e as Error).message}`);
    return EXIT.unavailable;
  }

  if (sub === 'export') {
    process.stdout.write(format === 'csv' ? toCsv(rows) : `${JSON.stringify(toRecords(rows), null, 2)}\n`);
    return EXIT.ok;
  }
  const summary = summarize(rows, config.routes ?? []);
  if (format === 'json') {
    console.log(JSON.stringify(summary, null, 2));
    return EXIT.ok;
  }
  const span =
    query.from === undefined && query.to === undefined
      ? 'all recorded hours'
      : `hours from ${query.from === undefined ? 'the first' : isoHour(query.from)} to ${query.to === undefined ? 'the last' : `before ${isoHour(query.to)}`}`;
  const dash = (s: string | null) => (s === null || s === '' ? '-' : s);
  console.log(`usage in ${await describeStore(settings)}, ${span}\n`);
  console.log(
    table(
      ['API', 'VERSION', 'REQUESTS', 'BYTES', 'CONSUMERS', 'LAST SEEN', 'DEPRECATION', 'SUNSET'],
      summary.versions.map((v) => [
        dash(v.api),
        dash(v.version),
        String(v.requests),
        String(v.bytes),
        String(v.consumers),
        v.lastSeen,
        dash(v.deprecation),
        dash(v.sunset),
      ]),
    ),
  );
  console.log('');
  console.log(
    table(
      ['CONSUMER', 'API', 'VERSION', 'REQUESTS', '2XX', '3XX', '4XX', '5XX', 'BYTES', 'LAST SEEN'],
      summary.consumers.map((c) => [
        c.consumer,
        dash(c.api),
        dash(c.version),
        String(c.requests),
        String(c.byClass['2xx'] ?? 0),
        String(c.byClass['3xx'] ?? 0),
        String(c.byClass['4xx'] ?? 0),
        String(c.byClass['5xx'] ?? 0),
        String(c.bytes),
        c.lastSeen,
      ]),
    ),
  );
  return EXIT.ok;
}
