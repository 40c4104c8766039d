/**
 * Service discovery: instances register with their service, address, port, labels and health, keep
 * themselves alive with heartbeats, and leave by deregistering or by missing their TTL.
 *
 * Every implementation (memory now, etcd later) passes the one conformance suite in
 * test/conformance/registry.ts (house rule 9).
 */
import { Ajv, type ValidateFunction } from 'ajv';
import {
  type Heartbeat,
  type Instance,
  type InstanceRegistration,
  InstanceRegistrationSchema,
} from '../../api/mesh.ts';
import { DEFAULT_INSTANCE_TTL_MS, MAX_INSTANCE_TTL_MS, MIN_INSTANCE_TTL_MS } from '../../core/defaults.ts';

export type RegistryEventType = 'registered' | 'updated' | 'deregistered' | 'expired';

export interface RegistryEvent {
  type: RegistryEventType;
  /** The instance after the event (for `deregistered` and `expired`: as it was last). */
  instance: Instance;
  /**
   * A shared store's revision of the change (etcd): the same on every control plane that hears it,
   * so it is the change record's id everywhere. Absent for an in-memory registry.
   */
  revision?: number;
}

export interface Registry {
  /**
   * Registers instance `registration.id`, or replaces it (a restarted instance registers again under
   * its id). Emits `registered` for a new id, `updated` when something other than the heartbeat time
   * changed, nothing otherwise. Counts as a heartbeat. Rejects an invalid registration with
   * RegistrationError, changing nothing.
   */
  register(registration: InstanceRegistration): Promise<Instance>;
  /**
   * Keeps the instance alive for another TTL, and sets its health if given (emitting `updated` when it
   * changes). Resolves null when the id is unknown (expired, or the registry restarted): the caller
   * registers again.
   */
  heartbeat(id: string, beat?: Heartbeat): Promise<Instance | null>;
  /** Removes the instance at once, emitting `deregistered`. Resolves false when the id is unknown. */
  deregister(id: string): Promise<boolean>;
  /** Every instance, healthy or not, ordered by service then id. */
  list(): Promise<Instance[]>;
  /** Calls `onEvent` after each change, in order; returns a function that stops the calls. */
  watch(onEvent: (event: RegistryEvent) => void): () => void;
  /** Stops expiry timers and watches. */
  close(): Promise<void>;
}

/** The watchers of a registry, called in order after each change (shared by every implementation). */
export class RegistryWatchers {
  private list: ((event: RegistryEvent) => void)[] = [];

  /** Registry.watch: adds `onEvent`; returns the function that removes it. */
  add(onEvent: (event: RegistryEvent) => void): () => void {
    this.list.push(onEvent);
    return () => {
      this.list = this.list.filter((w) => w !== onEvent);
    };
  }

  emit(event: RegistryEvent): void {
    for (const watcher of this.list) watcher(event);
  }

  clear(): void {
    this.list = [];
  }
}

export class RegistrationError extends Error {
  override readonly name = 'RegistrationError';
}

let validate: ValidateFunction | undefined;

/** Checks a registration against the contract; throws RegistrationError naming every problem. */
export function checkRegistration(registration: InstanceRegistration): void {
  const { id, ...rest } = registration;
  const problems: string[] = [];
  if (typeof id !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._:-]{0,252}$/.test(id))
    problems.push(`id "${String(id)}" is not valid (letters, digits and . _ : -, at most 253)`);
  validate ??= new Ajv({ allErrors: true, strict: true, strictTypes: false }).compile(InstanceRegistrationSchema);
  if (!validate(rest))
    for (const e of validate.errors ?? [])
      problems.push(
        e.keyword === 'additionalProperties'
          ? `unknown field "${(e.params as { additionalProperty: string }).additionalProperty}"`
          : `${e.instancePath.slice(1) || 'registration'} ${e.message}`,
      );
  if (problems.length > 0) throw new RegistrationError(problems.join('; '));
}

/** The TTL a registration gets: its own, within bounds, or the default. */
export function effectiveTtlMs(requested: number | undefined, fallback = DEFAULT_INSTANCE_TTL_MS): number {
  return Math.min(MAX_INSTANCE_TTL_MS, Math.max(MIN_INSTANCE_TTL_MS, requested ?? fallback));
}

export function byServiceThenId(a: Instance, b: Instance): number {
  return a.service < b.service ? -1 : a.service > b.service ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** True when two instances differ in what proxies see (everything but the heartbeat time). */
export function instanceChanged(a: Instance, b: Instance): boolean {
  if (a.service !== b.service || a.address !== b.address || a.port !== b.port || a.health !== b.health) return true;
  if (a.ttlMs !== b.ttlMs) return true;
  const ka = Object.keys(a.labels);
  if (ka.length !== Object.keys(b.labels).length) return true;
  return ka.some((k) => a.labels[k] !== b.labels[k]);
}
