/**
 * The usage store in Redis, shared by every gateway on the same Redis and key prefix: one hash per hour
 * (`usage:<hour ms>`), two fields per row (`r:` requests and `b:` bytes, each followed by the row's key
 * as a JSON array, so names with any character stay apart), added to with HINCRBY; and a sorted set
 * (`usage:hours`) of the hours that have a hash, so a read finds them without SCAN. An `add` is one
 * MULTI/EXEC: atomic, and concurrent writers' increments all count. Nothing expires: delete old hours
 * by hand (docs/metering.md).
 */
import {
  compareRows,
  matches,
  type StatusClass,
  type UsageQuery,
  type UsageRow,
  type UsageStore,
} from '../usage/store.ts';
import type { RedisConnection } from './connection.ts';

const HOURS = 'usage:hours';
const hourKey = (hour: number) => `usage:${hour}`;

export class RedisUsageStore implements UsageStore {
  private readonly connection: RedisConnection;
  /** Close the connection with the store (it was made for it). */
  private readonly owned: boolean;

  constructor(connection: RedisConnection, owned = false) {
    this.connection = connection;
    this.owned = owned;
  }

  async add(rows: readonly UsageRow[]): Promise<void> {
    if (rows.length === 0) return;
    const multi = this.connection.client.multi();
    const hours = new Set<number>();
    for (const r of rows) {
      const key = hourKey(r.hour);
      const field = JSON.stringify([r.consumer, r.route, r.api, r.version, r.statusClass]);
      multi.hincrby(key, `r:${field}`, r.requests);
      if (r.bytes !== 0) multi.hincrby(key, `b:${field}`, r.bytes);
      hours.add(r.hour);
    }
    for (const hour of hours) multi.zadd(HOURS, hour, String(hour));
    const results = await multi.exec();
    const failed = results?.find(([error]) => error !== null);
    if (results === null) throw new Error('redis discarded the usage transaction');
    if (failed !== undefined) throw failed[0]!;
  }

  async query(q: UsageQuery): Promise<UsageRow[]> {
    const client = this.connection.client;
    const hours = await client.zrangebyscore(HOURS, q.from ?? '-inf', q.to === undefined ? '+inf' : `(${q.to}`);
    if (hours.length === 0) return [];
    const pipeline = client.pipeline();
    for (const hour of hours) pipeline.hgetall(hourKey(Number(hour)));
    const results = (await pipeline.exec()) ?? [];
    const rows: UsageRow[] = [];
    results.forEach(([error, value], i) => {
      if (error !== null) throw error;
      const hour = Number(hours[i]);
      const fields = value as Record<string, string>;
      for (const name in fields) {
        if (!name.startsWith('r:')) continue;
        const [consumer, route, api, version, statusClass] = JSON.parse(name.slice(2)) as [
          string,
          string,
          string,
          string,
          StatusClass,
        ];
        const row: UsageRow = {
          hour,
          consumer,
          route,
          api,
          version,
          statusClass,
          requests: Number(fields[name]),
          bytes: Number(fields[`b:${name.slice(2)}`] ?? 0),
        };
        if (matches(row, q)) rows.push(row);
      }
    });
    return rows.sort(compareRows);
  }

  async close(): Promise<void> {
    if (this.owned) this.connection.close();
  }
}
