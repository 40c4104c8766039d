/**
 * Usage records: requests and response bytes per hour, consumer, route, API, version and status class,
 * as counted by the proxy's usage recorder (src/proxy/metering.ts) and read by `meshgate usage` and
 * the admin API's `GET /usage`. One interface, two stores (sqlite.ts here, ../redis/usage.ts), one
 * conformance suite (store.conformance.ts).
 */

export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;
export type StatusClass = (typeof STATUS_CLASSES)[number];

/** One counted group. The identifying fields are the key; `requests` and `bytes` are counts. */
export interface UsageRow {
  /** Start of the hour, milliseconds since the epoch (a multiple of 3 600 000). */
  readonly hour: number;
  readonly consumer: string;
  readonly route: string;
  /** `''` when the route has no `version`. */
  readonly api: string;
  /** `''` when the route has no `version`. */
  readonly version: string;
  readonly statusClass: StatusClass;
  readonly requests: number;
  /** Response body bytes sent to the client from the upstream (the access log's `bytesOut`). */
  readonly bytes: number;
}

export interface UsageQuery {
  /** Hours starting at or after this instant (ms since the epoch); undefined: from the first. */
  readonly from?: number;
  /** Hours starting before this instant (ms); undefined: to the last. */
  readonly to?: number;
  readonly consumer?: string;
  readonly api?: string;
}

export interface UsageStore {
  /**
   * Adds the rows' counts to what the store holds for the same keys (an upsert that adds), atomically
   * per call: a reader sees all of a call's rows or none. Several writers (worker processes, gateways)
   * may add to the same keys at once; no count is lost. Rejects when the store cannot be written; the
   * caller keeps the rows and adds them again later.
   */
  add(rows: readonly UsageRow[]): Promise<void>;
  /** The rows matching `query`, sorted by hour, consumer, route, api, version, status class. */
  query(query: UsageQuery): Promise<UsageRow[]>;
  /** Releases the file or connection; pending writes of `add` have completed when it resolves. */
  close(): Promise<void>;
}

export const HOUR_MS = 3_600_000;

export function hourOf(ms: number): number {
  return ms - (ms % HOUR_MS);
}

/** The class of a status code; anything outside 100–599 counts with the nearest class. */
export function statusClassIndex(status: number): number {
  const c = Math.floor(status / 100);
  return c < 1 ? 0 : c > 5 ? 4 : c - 1;
}

export function compareRows(a: UsageRow, b: UsageRow): number {
  return (
    a.hour - b.hour ||
    cmp(a.consumer, b.consumer) ||
    cmp(a.route, b.route) ||
    cmp(a.api, b.api) ||
    cmp(a.version, b.version) ||
    cmp(a.statusClass, b.statusClass)
  );
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function matches(row: UsageRow, q: UsageQuery): boolean {
  return (
    (q.from === undefined || row.hour >= q.from) &&
    (q.to === undefined || row.hour < q.to) &&
    (q.consumer === undefined || row.consumer === q.consumer) &&
    (q.api === undefined || row.api === q.api)
  );
}
