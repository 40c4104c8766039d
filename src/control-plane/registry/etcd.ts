/**
 * The registry in etcd, shared by every control plane on the same etcd and prefix, and kept across
 * their restarts.
 *
 * Each instance is the key `instances/<id>` attached to a lease of its own whose TTL is the instance's
 * (in whole seconds, rounded up; etcd may raise a TTL below its minimum, 2 s with its default timing).
 * A heartbeat is a keep-alive of that lease, so it may reach any control plane: the lease id is in the
 * key's value. When heartbeats stop, etcd deletes the key when the lease expires, whichever control
 * plane the instance talked to, even if none is running.
 *
 * Events come from a watch of the prefix, so every control plane hears every change, in revision
 * order; a call that writes resolves after its own change was heard (and emitted) here. A delete is
 * `deregistered` when the value was marked `leaving` first (deregister does that), else `expired`.
 * Heartbeats write nothing unless the health changes: `lastHeartbeatAt` in `list()` is the time of
 * the last write (registration or health change), and liveness is the lease's.
 */
import type { Heartbeat, Instance, InstanceRegistration } from '../../api/mesh.ts';
import { type Clock, systemClock } from '../../core/clock.ts';
import { DEFAULT_INSTANCE_TTL_MS } from '../../core/defaults.ts';
import { type EtcdConnection, type KeyEvent, PrefixFollower, revisionOf } from '../etcd/etcd.ts';
import {
  byServiceThenId,
  checkRegistration,
  effectiveTtlMs,
  instanceChanged,
  type Registry,
  type RegistryEvent,
  RegistryWatchers,
} from './registry.ts';

const PREFIX = 'instances/';

/** What an instance's key holds. */
interface Stored {
  instance: Instance;
  /** The lease the key is attached to (decimal int64). */
  lease: string;
  /** Set by deregister just before the delete, so every watcher reports it as deregistered. */
  leaving?: true;
}

export class EtcdRegistry implements Registry {
  private readonly etcd: EtcdConnection;
  private readonly clock: Clock;
  private readonly defaultTtlMs: number;
  private readonly follower: PrefixFollower;
  /** The instances as of the last revision heard. */
  private readonly cache = new Map<string, Stored>();
  private readonly watchers = new RegistryWatchers();

  private constructor(etcd: EtcdConnection, options: { clock?: Clock; defaultTtlMs?: number }) {
    this.etcd = etcd;
    this.clock = options.clock ?? systemClock;
    this.defaultTtlMs = options.defaultTtlMs ?? DEFAULT_INSTANCE_TTL_MS;
    this.follower = new PrefixFollower(etcd.ns, PREFIX, (e, revision) => this.onKeyEvent(e, revision));
  }

  /** Reads the instances in etcd and follows their changes. */
  static async open(
    etcd: EtcdConnection,
    options: { clock?: Clock; defaultTtlMs?: number } = {},
  ): Promise<EtcdRegistry> {
    const registry = new EtcdRegistry(etcd, options);
    const { kvs } = await registry.follower.start();
    for (const kv of kvs) {
      const stored = parse(kv.value);
      if (stored) registry.cache.set(stored.instance.id, stored);
    }
    return registry;
  }

  async register(registration: InstanceRegistration): Promise<Instance> {
    checkRegistration(registration);
    const old = await this.read(registration.id);
    const now = this.clock.now();
    const instance: Instance = Object.freeze({
      id: registration.id,
      service: registration.service,
      address: registration.address,
      port: registration.port,
      labels: Object.freeze({ ...registration.labels }),
      health: registration.health ?? 'healthy',
      ttlMs: effectiveTtlMs(registration.ttlMs, this.defaultTtlMs),
      registeredAt: old?.instance.registeredAt ?? now,
      lastHeartbeatAt: now,
    });
    // A new lease each time: the TTL may have changed, and the old lease may be about to expire.
    const grant = await this.etcd.client.leaseClient.leaseGrant({ TTL: Math.ceil(instance.ttlMs / 1000), ID: 0 });
    const stored: Stored = { instance, lease: grant.ID };
    const res = await this.etcd.ns
      .put(PREFIX + instance.id)
      .value(JSON.stringify(stored))
      .lease(grant.ID)
      .exec();
    // The key has moved to the new lease; the old one holds nothing now.
    if (old) await this.etcd.client.leaseClient.leaseRevoke({ ID: old.lease }).catch(() => {});
    await this.follower.caughtUp(revisionOf(res));
    return instance;
  }

  async heartbeat(id: string, beat: Heartbeat = {}): Promise<Instance | null> {
    const current = await this.read(id);
    if (current === null) return null;
    if (!(await this.keepAlive(current.lease))) return null;
    const health = beat.health ?? current.instance.health;
    const instance: Instance = Object.freeze({ ...current.instance, health, lastHeartbeatAt: this.clock.now() });
    if (health !== current.instance.health) {
      const stored: Stored = { instance, lease: current.lease };
      try {
        const res = await this.etcd.ns
          .put(PREFIX + id)
          .value(JSON.stringify(stored))
          .ignoreLease()
          .exec();
        await this.follower.caughtUp(revisionOf(res));
      } catch {
        // The key went away between the read and the write (expired or deregistered meanwhile).
        return null;
      }
    }
    return instance;
  }

  async deregister(id: string): Promise<boolean> {
    const current = await this.read(id);
    if (current === null) return false;
    try {
      await this.etcd.ns
        .put(PREFIX + id)
        .value(JSON.stringify({ ...current, leaving: true }))
        .ignoreLease()
        .exec();
    } catch {
      return false;
    }
    const res = await this.etcd.ns
      .delete()
      .key(PREFIX + id)
      .exec();
    await this.etcd.client.leaseClient.leaseRevoke({ ID: current.lease }).catch(() => {});
    await this.follower.caughtUp(revisionOf(res));
    return res.deleted !== '0';
  }

  async list(): Promise<Instance[]> {
    return [...this.cache.values()].map((s) => s.instance).sort(byServiceThenId);
  }

  watch(onEvent: (event: RegistryEvent) => void): () => void {
    return this.watchers.add(onEvent);
  }

  /** Stops following etcd. The instances and their leases stay: they outlive this control plane. */
  async close(): Promise<void> {
    this.watchers.clear();
    await this.follower.close();
  }

  private async read(id: string): Promise<Stored | null> {
    const value = await this.etcd.ns.get(PREFIX + id).buffer();
    return value === null ? null : parse(value);
  }

  /** One keep-alive of `lease`; false when it has expired (etcd answers TTL 0 for an unknown lease). */
  private async keepAlive(lease: string): Promise<boolean> {
    const stream = await this.etcd.client.leaseClient.leaseKeepAlive();
    try {
      const res = await new Promise<{ TTL: string }>((resolve, reject) => {
        stream.on('data', resolve);
        stream.on('error', reject);
        stream.write({ ID: lease });
      });
      return Number(res.TTL) > 0;
    } finally {
      stream.end();
    }
  }

  private onKeyEvent(event: KeyEvent, revision: number) {
    const id = event.key;
    const previous = this.cache.get(id);
    if (event.type === 'delete') {
      if (previous === undefined) return;
      this.cache.delete(id);
      this.emit({ type: previous.leaving ? 'deregistered' : 'expired', instance: previous.instance, revision });
      return;
    }
    const stored = parse(event.kv.value);
    if (stored === null) return;
    this.cache.set(id, stored);
    if (stored.leaving) return;
    if (previous === undefined) this.emit({ type: 'registered', instance: stored.instance, revision });
    else if (instanceChanged(previous.instance, stored.instance))
      this.emit({ type: 'updated', instance: stored.instance, revision });
  }

  private emit(event: RegistryEvent) {
    this.watchers.emit(event);
  }
}

/** A stored value, or null for one this version cannot read (written by a newer one, or by hand). */
function parse(value: Buffer): Stored | null {
  try {
    const stored = JSON.parse(value.toString()) as Stored;
    if (typeof stored?.lease !== 'string' || typeof stored.instance?.id !== 'string') return null;
    Object.freeze(stored.instance.labels);
    Object.freeze(stored.instance);
    return stored;
  } catch {
    return null;
  }
}
