/**
 * Change records in etcd, so `GET /changes/{id}` and `meshgate status` answer the same from every
 * control plane, and after a restart.
 *
 * A change's id is the etcd revision that made it (the same on every control plane that hears it).
 * Each control plane writes its own part, `changes/<id, 16 digits>/<control plane id>`: the proxies it
 * pushed the change to and their answers. A read merges the parts. Each running control plane keeps
 * `controlplanes/<id>` alive under a lease; a part whose writer is gone has its unanswered pushes
 * read as `disconnected` (the proxy was re-synchronised by another control plane).
 *
 * Writes are batched (`persistDelayMs`); the oldest records beyond the retention bound (`limit`) are
 * deleted with the next write.
 */
import type { ChangeRecord } from '../../api/mesh.ts';
import {
  DEFAULT_CHANGE_HISTORY,
  DEFAULT_CHANGE_PERSIST_DELAY_MS,
  DEFAULT_CONTROL_PLANE_LEASE_TTL_MS,
} from '../../core/defaults.ts';
import type { Logger } from '../../observability/logger.ts';
import type { EtcdConnection } from '../etcd/etcd.ts';
import { type Change, ChangeLog, type Result, view } from './changes.ts';

const CHANGES = 'changes/';
const CONTROL_PLANES = 'controlplanes/';
/** Zero-padded, so keys sort as numbers. */
const pad = (id: number) => String(id).padStart(16, '0');

interface StoredPart extends Omit<Change, 'results'> {
  controlPlane: string;
  results: Result[];
}

export class EtcdChangeLog extends ChangeLog {
  private readonly etcd: EtcdConnection;
  private readonly controlPlane: string;
  private readonly persistDelayMs: number;
  private readonly log: Pick<Logger, 'warn'>;
  private readonly lease: { revoke(): Promise<void>; release(): void };
  /** The revision of this control plane's liveness key: an id no change of any other control plane has. */
  private ownId: number | null;
  private readonly dirty = new Set<number>();
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  /** Records below this id are past the retention bound (deleted with the next write). */
  private oldestKept = 0;

  private constructor(
    etcd: EtcdConnection,
    controlPlane: string,
    lease: EtcdChangeLog['lease'],
    ownId: number,
    options: { limit: number; persistDelayMs: number; log: Pick<Logger, 'warn'> },
  ) {
    super(options.limit);
    this.etcd = etcd;
    this.controlPlane = controlPlane;
    this.lease = lease;
    this.ownId = ownId;
    this.persistDelayMs = options.persistDelayMs;
    this.log = options.log;
  }

  /** Announces control plane `controlPlane` (a key under a lease kept alive) and opens its log. */
  static async open(
    etcd: EtcdConnection,
    controlPlane: string,
    options: { limit?: number; persistDelayMs?: number; leaseTtlMs?: number; log: Pick<Logger, 'warn'> },
  ): Promise<EtcdChangeLog> {
    const lease = etcd.ns.lease(Math.ceil((options.leaseTtlMs ?? DEFAULT_CONTROL_PLANE_LEASE_TTL_MS) / 1000));
    // A lost lease (etcd unreachable longer than its TTL) is granted again by the next keep-alive round.
    lease.on('lost', () => options.log.warn({ controlPlane }, 'the control plane lease in etcd was lost'));
    const res = await lease
      .put(`${CONTROL_PLANES}${controlPlane}`)
      .value(JSON.stringify({ startedAt: new Date().toISOString() }))
      .exec();
    return new EtcdChangeLog(etcd, controlPlane, lease, Number(res.header.revision), {
      limit: options.limit ?? DEFAULT_CHANGE_HISTORY,
      persistDelayMs: options.persistDelayMs ?? DEFAULT_CHANGE_PERSIST_DELAY_MS,
      log: options.log,
    });
  }

  override create(kind: Change['kind'], cause: string, modelVersion: string, at: number, id?: number): number {
    // A change of this control plane alone (the end of its warm-up) takes the revision of its own key.
    if (id === undefined && this.ownId !== null) {
      id = this.ownId;
      this.ownId = null;
    }
    const created = super.create(kind, cause, modelVersion, at, id);
    if (this.changes.size >= this.limit) this.oldestKept = this.changes.keys().next().value!;
    return created;
  }

  protected override touched(id: number): void {
    this.dirty.add(id);
    if (this.timer === undefined) this.timer = setTimeout(() => this.persist(), this.persistDelayMs);
  }

  private persist() {
    this.timer = undefined;
    const ids = [...this.dirty];
    this.dirty.clear();
    const oldestKept = this.oldestKept;
    this.writing = this.writing.then(async () => {
      try {
        const ns = this.etcd.ns;
        const puts = ids.flatMap((id) => {
          const change = this.changes.get(id);
          if (!change) return [];
          const part: StoredPart = {
            ...change,
            controlPlane: this.controlPlane,
            results: [...change.results.values()],
          };
          return [ns.put(`${CHANGES}${pad(id)}/${this.controlPlane}`).value(JSON.stringify(part))];
        });
        // One transaction: a push to many proxies is one write.
        if (puts.length > 0)
          await ns
            .if(`${CHANGES}`, 'Version', '>', -1)
            .then(...puts)
            .commit();
        if (oldestKept > 0)
          await ns
            .delete()
            .inRange({ start: CHANGES, end: `${CHANGES}${pad(oldestKept)}` })
            .exec();
      } catch (e) {
        // Records are a report, not state: the next change writes again.
        this.log.warn({ err: (e as Error).message, changes: ids.length }, 'could not write change records to etcd');
      }
    });
  }

  override async read(id: number): Promise<ChangeRecord | undefined> {
    const [parts, alive] = await Promise.all([
      this.etcd.ns
        .getAll()
        .prefix(`${CHANGES}${pad(id)}/`)
        .strings(),
      this.alive(),
    ]);
    return this.merge(id, Object.values(parts), alive);
  }

  override async readRecent(limit: number): Promise<ChangeRecord[]> {
    const ns = this.etcd.ns;
    // Newest keys first; several control planes write parts of one record, so ask for more keys than records.
    const keys = await ns
      .getAll()
      .prefix(CHANGES)
      .sort('Key', 'Descend')
      .limit(limit * 8)
      .keys();
    const ids = [...new Set(keys.map((k) => Number(k.slice(CHANGES.length).split('/')[0])))].slice(0, limit);
    if (ids.length === 0) return this.recent(limit);
    const [all, alive] = await Promise.all([
      ns
        .getAll()
        .inRange({ start: `${CHANGES}${pad(ids.at(-1)!)}/`, end: `${CHANGES}~` })
        .strings(),
      this.alive(),
    ]);
    const byId = new Map<number, string[]>();
    for (const [key, value] of Object.entries(all)) {
      const id = Number(key.slice(CHANGES.length).split('/')[0]);
      byId.set(id, [...(byId.get(id) ?? []), value]);
    }
    return ids.flatMap((id) => this.merge(id, byId.get(id) ?? [], alive) ?? []);
  }

  override async close(): Promise<void> {
    clearTimeout(this.timer);
    if (this.dirty.size > 0) this.persist();
    await this.writing;
    // Gone now: its unanswered pushes read as disconnected at once.
    await this.lease.revoke().catch(() => {});
  }

  private async alive(): Promise<Set<string>> {
    const keys = await this.etcd.ns.getAll().prefix(CONTROL_PLANES).keys();
    return new Set(keys.map((k) => k.slice(CONTROL_PLANES.length)));
  }

  /** One record from every control plane's part (this one's from memory: it may not be written yet). */
  private merge(id: number, values: string[], alive: Set<string>): ChangeRecord | undefined {
    const parts: StoredPart[] = [];
    for (const v of values) {
      try {
        const part = JSON.parse(v) as StoredPart;
        if (part.controlPlane !== this.controlPlane) parts.push(part);
      } catch {}
    }
    const own = this.changes.get(id);
    if (own) parts.push({ ...own, controlPlane: this.controlPlane, results: [...own.results.values()] });
    if (parts.length === 0) return undefined;
    parts.sort((a, b) => a.at - b.at);
    const first = parts[0]!;
    const results = new Map<string, Result>();
    let flushed = true;
    let unaffected = 0;
    for (const part of parts) {
      const gone = part.controlPlane !== this.controlPlane && !alive.has(part.controlPlane);
      if (!gone && !part.flushed) flushed = false;
      unaffected += part.unaffected;
      for (const r of part.results) {
        const result = gone && r.status === 'pending' ? { ...r, status: 'disconnected' as const } : r;
        const seen = results.get(r.proxy);
        // A proxy that moved between control planes: its latest push tells.
        if (!seen || seen.pushedAt <= result.pushedAt) results.set(r.proxy, result);
      }
    }
    return view({ ...first, id, flushed, unaffected, results });
  }
}
