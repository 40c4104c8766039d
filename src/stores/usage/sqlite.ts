/**
 * The usage store in a SQLite file, through Node's built-in `node:sqlite` (no native build, nothing to
 * download). Loaded only by a config that meters to SQLite (or by `meshgate usage`).
 *
 * Several processes write one file (a gateway's workers, and `meshgate usage` reading it): WAL mode
 * lets readers run beside the writer; each `add` is one `BEGIN IMMEDIATE` transaction (it takes the
 * write lock up front, so two writers never deadlock upgrading a read lock) of upserts that add to the
 * counts; a writer that finds the lock taken waits up to METERING_SQLITE_BUSY_TIMEOUT_MS.
 *
 * `DatabaseSync` is synchronous: a flush blocks its process's event loop for the transaction, which for
 * the rows of one flush interval (one per hour, consumer, route and status class seen) is well under a
 * millisecond. The recorder writes only off the request path, on its timer.
 */
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { METERING_SQLITE_BUSY_TIMEOUT_MS } from '../../core/defaults.ts';
import type { StatusClass, UsageQuery, UsageRow, UsageStore } from './store.ts';

const SCHEMA = `CREATE TABLE IF NOT EXISTS usage (
  hour INTEGER NOT NULL,
  consumer TEXT NOT NULL,
  route TEXT NOT NULL,
  api TEXT NOT NULL,
  version TEXT NOT NULL,
  status_class TEXT NOT NULL,
  requests INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  PRIMARY KEY (hour, consumer, route, api, version, status_class)
) WITHOUT ROWID`;

const UPSERT = `INSERT INTO usage (hour, consumer, route, api, version, status_class, requests, bytes)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (hour, consumer, route, api, version, status_class)
DO UPDATE SET requests = requests + excluded.requests, bytes = bytes + excluded.bytes`;

const SELECT = `SELECT hour, consumer, route, api, version, status_class AS statusClass, requests, bytes FROM usage
WHERE hour >= ? AND hour < ? AND (? IS NULL OR consumer = ?) AND (? IS NULL OR api = ?)
ORDER BY hour, consumer, route, api, version, status_class`;

export interface SqliteUsageOptions {
  /** Open only to read (`meshgate usage`): never creates the file. */
  readOnly?: boolean;
}

export class SqliteUsageStore implements UsageStore {
  readonly path: string;
  private readonly db: DatabaseSync;
  private readonly upsert: StatementSync | null;
  private readonly select: StatementSync | null;

  constructor(path: string, options: SqliteUsageOptions = {}) {
    this.path = path;
    this.db = new DatabaseSync(path, { timeout: METERING_SQLITE_BUSY_TIMEOUT_MS, readOnly: options.readOnly === true });
    try {
      if (options.readOnly !== true) {
        this.db.exec('PRAGMA journal_mode = WAL');
        // In WAL mode NORMAL loses no committed transaction on a process crash (only on power loss).
        this.db.exec('PRAGMA synchronous = NORMAL');
        this.db.exec(SCHEMA);
        this.upsert = this.db.prepare(UPSERT);
      } else this.upsert = null;
      this.select = hasTable(this.db) ? this.db.prepare(SELECT) : null;
    } catch (e) {
      this.db.close();
      throw e;
    }
  }

  async add(rows: readonly UsageRow[]): Promise<void> {
    if (rows.length === 0) return;
    const upsert = this.upsert;
    if (upsert === null) throw new Error(`${this.path} is open read-only`);
    this.db.exec('BEGIN IMMEDIATE');
    try {
      for (const r of rows)
        upsert.run(r.hour, r.consumer, r.route, r.api, r.version, r.statusClass, r.requests, r.bytes);
      this.db.exec('COMMIT');
    } catch (e) {
      if (this.db.isTransaction) this.db.exec('ROLLBACK');
      throw e;
    }
  }

  async query(q: UsageQuery): Promise<UsageRow[]> {
    if (this.select === null) return [];
    const consumer = q.consumer ?? null;
    const api = q.api ?? null;
    const rows = this.select.all(
      q.from ?? Number.MIN_SAFE_INTEGER,
      q.to ?? Number.MAX_SAFE_INTEGER,
      consumer,
      consumer,
      api,
      api,
    ) as unknown as {
      hour: number;
      consumer: string;
      route: string;
      api: string;
      version: string;
      statusClass: StatusClass;
      requests: number;
      bytes: number;
    }[];
    return rows.map((r) => ({ ...r }));
  }

  async close(): Promise<void> {
    if (this.db.isOpen) this.db.close();
  }
}

function hasTable(db: DatabaseSync): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'usage'").get() !== undefined;
}
