/**
 * A strict reader of the Prometheus text exposition format (version 0.0.4), for tests that check what
 * `/metrics` says. It throws on anything a Prometheus server would reject (a malformed line, a sample
 * of an undeclared family, a duplicate series, a histogram whose buckets are not cumulative or whose
 * `+Inf` bucket differs from its `_count`) and gives each series' value by name and labels.
 */

export interface MetricSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  name: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  help: string;
  samples: MetricSample[];
}

export interface Scrape {
  families: Map<string, MetricFamily>;
  /** The value of one series (labels must match exactly), or undefined. */
  value(name: string, labels?: Record<string, string>): number | undefined;
  /** The sum over every series of `name` whose labels include `labels`. */
  sum(name: string, labels?: Record<string, string>): number;
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(.*)\\})?\\s+(\\S+)(?:\\s+(-?\\d+))?$`);
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)/y;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
const SUFFIXES: Record<string, string[]> = {
  histogram: ['_bucket', '_sum', '_count'],
  summary: ['', '_sum', '_count'],
};

function parseValue(text: string, line: number): number {
  // Values are Go floats (strconv.ParseFloat): NaN and Inf in any case.
  const lower = text.toLowerCase();
  if (lower === '+inf' || lower === 'inf') return Number.POSITIVE_INFINITY;
  if (lower === '-inf') return Number.NEGATIVE_INFINITY;
  if (lower === 'nan') return Number.NaN;
  const n = Number(text);
  if (text === '' || Number.isNaN(n)) throw new Error(`line ${line}: "${text}" is not a sample value`);
  return n;
}

function parseLabels(text: string, line: number): Record<string, string> {
  const labels: Record<string, string> = {};
  LABEL.lastIndex = 0;
  while (LABEL.lastIndex < text.length) {
    const at = LABEL.lastIndex;
    const m = LABEL.exec(text);
    if (m === null) throw new Error(`line ${line}: bad label set at "${text.slice(at)}"`);
    if (m[1]! in labels) throw new Error(`line ${line}: label ${m[1]} twice`);
    labels[m[1]!] = m[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    if (m[3] === '') break;
  }
  return labels;
}

function seriesKey(name: string, labels: Record<string, string>): string {
  return `${name}{${Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`)
    .join(',')}}`;
}

function familyOf(sampleName: string, families: Map<string, MetricFamily>): MetricFamily | undefined {
  const exact = families.get(sampleName);
  // A histogram has no sample under its bare name; a summary has (its quantiles).
  if (exact !== undefined && exact.type !== 'histogram') return exact;
  for (const [suffixFor, suffixes] of Object.entries(SUFFIXES))
    for (const suffix of suffixes) {
      if (suffix === '' || !sampleName.endsWith(suffix)) continue;
      const f = families.get(sampleName.slice(0, -suffix.length));
      if (f?.type === suffixFor) return f;
    }
  return exact;
}

function checkHistograms(families: Map<string, MetricFamily>): void {
  for (const f of families.values()) {
    if (f.type !== 'histogram') continue;
    const groups = new Map<string, { buckets: [number, number][]; count?: number }>();
    for (const s of f.samples) {
      const { le, ...rest } = s.labels;
      const key = seriesKey('', rest);
      const g = groups.get(key) ?? { buckets: [] };
      groups.set(key, g);
      if (s.name === `${f.name}_bucket`) {
        if (le === undefined) throw new Error(`${f.name}: a bucket without "le"`);
        g.buckets.push([parseValue(le, 0), s.value]);
      } else if (s.name === `${f.name}_count`) g.count = s.value;
    }
    for (const [key, g] of groups) {
      g.buckets.sort((a, b) => a[0] - b[0]);
      for (let i = 1; i < g.buckets.length; i++)
        if (g.buckets[i]![1] < g.buckets[i - 1]![1]) throw new Error(`${f.name}${key}: buckets are not cumulative`);
      const inf = g.buckets.at(-1);
      if (inf?.[0] !== Number.POSITIVE_INFINITY) throw new Error(`${f.name}${key}: no +Inf bucket`);
      if (inf[1] !== g.count) throw new Error(`${f.name}${key}: +Inf bucket ${inf[1]} differs from _count ${g.count}`);
    }
  }
}

export function parsePrometheusText(text: string): Scrape {
  const families = new Map<string, MetricFamily>();
  const seen = new Set<string>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const n = i + 1;
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const m = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s+(.*))?$/.exec(line);
      if (m === null) continue; // a plain comment
      const [, kind, name, rest = ''] = m;
      if (!new RegExp(`^${NAME}$`).test(name!)) throw new Error(`line ${n}: "${name}" is not a metric name`);
      const family = families.get(name!) ?? { name: name!, type: 'untyped' as const, help: '', samples: [] };
      if (kind === 'TYPE') {
        if (!TYPES.has(rest)) throw new Error(`line ${n}: unknown type "${rest}"`);
        if (family.samples.length > 0) throw new Error(`line ${n}: TYPE of ${name} after its samples`);
        family.type = rest as MetricFamily['type'];
      } else family.help = rest;
      families.set(name!, family);
      continue;
    }
    const m = SAMPLE.exec(line);
    if (m === null) throw new Error(`line ${n}: not a sample: ${line}`);
    const [, name, labelText, valueText] = m;
    const family = familyOf(name!, families);
    if (family === undefined) throw new Error(`line ${n}: sample ${name} of no declared family`);
    const labels = labelText === undefined ? {} : parseLabels(labelText, n);
    const key = seriesKey(name!, labels);
    if (seen.has(key)) throw new Error(`line ${n}: series ${key} twice`);
    seen.add(key);
    family.samples.push({ name: name!, labels, value: parseValue(valueText!, n) });
  }
  checkHistograms(families);
  const all = () => [...families.values()].flatMap((f) => f.samples);
  const includes = (s: MetricSample, labels: Record<string, string>) =>
    Object.entries(labels).every(([k, v]) => s.labels[k] === v);
  return {
    families,
    value(name, labels = {}) {
      const key = seriesKey(name, labels);
      return all().find((s) => seriesKey(s.name, s.labels) === key)?.value;
    },
    sum(name, labels = {}) {
      return all()
        .filter((s) => s.name === name && includes(s, labels))
        .reduce((total, s) => total + s.value, 0);
    },
  };
}
