/**
 * The registry in the control plane's memory: fast and dependency-free, and lost on restart (the
 * control plane's warm-up gives instances time to register again; see docs/mesh.md).
 */
import type { Heartbeat, Instance, InstanceRegistration } from '../../api/mesh.ts';
import { type CancelTimer, type Clock, schedule, systemClock } from '../../core/clock.ts';
import { DEFAULT_INSTANCE_TTL_MS } from '../../core/defaults.ts';
import {
  byServiceThenId,
  checkRegistration,
  effectiveTtlMs,
  instanceChanged,
  type Registry,
  type RegistryEvent,
  RegistryWatchers,
} from './registry.ts';

interface Entry {
  instance: Instance;
  cancelExpiry: CancelTimer;
}

export class MemoryRegistry implements Registry {
  private readonly clock: Clock;
  private readonly defaultTtlMs: number;
  private readonly entries = new Map<string, Entry>();
  private readonly watchers = new RegistryWatchers();

  constructor(options: { clock?: Clock; defaultTtlMs?: number } = {}) {
    this.clock = options.clock ?? systemClock;
    this.defaultTtlMs = options.defaultTtlMs ?? DEFAULT_INSTANCE_TTL_MS;
  }

  async register(registration: InstanceRegistration): Promise<Instance> {
    checkRegistration(registration);
    const now = this.clock.now();
    const old = this.entries.get(registration.id);
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
    this.store(instance, old);
    if (old === undefined) this.emit({ type: 'registered', instance });
    else if (instanceChanged(old.instance, instance)) this.emit({ type: 'updated', instance });
    return instance;
  }

  async heartbeat(id: string, beat: Heartbeat = {}): Promise<Instance | null> {
    const old = this.entries.get(id);
    if (old === undefined) return null;
    const instance: Instance = Object.freeze({
      ...old.instance,
      health: beat.health ?? old.instance.health,
      lastHeartbeatAt: this.clock.now(),
    });
    this.store(instance, old);
    if (instance.health !== old.instance.health) this.emit({ type: 'updated', instance });
    return instance;
  }

  async deregister(id: string): Promise<boolean> {
    const entry = this.entries.get(id);
    if (entry === undefined) return false;
    entry.cancelExpiry();
    this.entries.delete(id);
    this.emit({ type: 'deregistered', instance: entry.instance });
    return true;
  }

  async list(): Promise<Instance[]> {
    return [...this.entries.values()].map((e) => e.instance).sort(byServiceThenId);
  }

  watch(onEvent: (event: RegistryEvent) => void): () => void {
    return this.watchers.add(onEvent);
  }

  async close(): Promise<void> {
    for (const entry of this.entries.values()) entry.cancelExpiry();
    this.watchers.clear();
  }

  private store(instance: Instance, old: Entry | undefined) {
    old?.cancelExpiry();
    const entry: Entry = { instance, cancelExpiry: () => {} };
    entry.cancelExpiry = schedule(
      this.clock,
      () => {
        if (this.entries.get(instance.id) !== entry) return;
        this.entries.delete(instance.id);
        this.emit({ type: 'expired', instance });
      },
      instance.ttlMs,
    );
    this.entries.set(instance.id, entry);
  }

  private emit(event: RegistryEvent) {
    this.watchers.emit(event);
  }
}
