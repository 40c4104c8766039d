/** What every part of the Kong converter shares: the file's state, names, references, value checks. */
import { type Conversion, child, isRecord, type SourceRef } from '../shared/format.ts';

/** A Kong service as converted: the meshgate service object and what its routes need of it. */
export interface ServiceInfo {
  /** meshgate name. */
  name: string;
  /** The meshgate service object (its `plugins` grow as plugins are attached). */
  config: Record<string, unknown>;
  /** Output path of the service (`['services', n]`). */
  path: (string | number)[];
  /** Kong's service `path` (the upstream base path): `/` when none. */
  basePath: string;
  /** The Host header sent upstream when a route does not preserve the client's: `auto` (the endpoint's). */
  host: { kind: 'auto' } | { kind: 'fixed'; value: string };
  /** `enabled: false`: Kong routes none of its routes. */
  enabled: boolean;
}

/** A Kong consumer as converted. */
export interface ConsumerInfo {
  name: string;
  config: Record<string, unknown>;
  path: (string | number)[];
}

/** A Kong route as converted: the meshgate routes it became (one per group of paths, as Kong splits them). */
export interface RouteInfo {
  name: string;
  routes: PendingRoute[];
}

/** A meshgate route waiting for its priority (Kong's order is known only once every route is read). */
export interface PendingRoute {
  route: Record<string, unknown>;
  ref: SourceRef;
  /** Finer sources for fields of the route (relative output paths). */
  fieldRefs: [path: (string | number)[], ref: SourceRef][];
  /** Kong's precedence, compared field by field, larger first (routes.ts `kongPriority`). */
  rank: readonly number[];
}

/** The state of one Kong file's conversion. */
export interface KongFile {
  out: Conversion;
  /** `_format_version`'s major version: 1, 2 or 3 (absent: 3, today's Kong). */
  major: number;
  /** Services by meshgate name, Kong name and id. */
  services: Map<string, ServiceInfo>;
  /** Upstreams by name (what a service's `host` names). */
  upstreams: Map<string, UpstreamInfo>;
  /** Consumers by username, custom_id and id. */
  consumers: Map<string, ConsumerInfo>;
  /** Routes by Kong name and id. */
  routes: Map<string, RouteInfo>;
  /** Every meshgate route, in the order of the file. */
  pending: PendingRoute[];
  /** meshgate names taken, per kind. */
  names: Map<string, Set<string>>;
  /** The one Redis the file's plugins share (meshgate has one `redis` block), and where it was first set. */
  redis?: { config: Record<string, unknown>; ref: SourceRef };
}

/** What an upstream gives the services whose `host` names it. */
export interface UpstreamInfo {
  name: string;
  service: Record<string, unknown>;
  /** Service field → where in the upstream it came from. */
  fieldRefs: [field: string, ref: SourceRef][];
  /** `host_header`: the Host sent upstream instead of the target's. */
  hostHeader?: string;
  /** The targets' `host:port`, for the scheme chosen by the service. */
  targets: { authority: string; weight: number; ref: SourceRef }[];
}

const NAME_CHARS = /[^A-Za-z0-9._-]/g;

/**
 * A meshgate name (`[A-Za-z0-9][A-Za-z0-9._-]*`, at most 128) for a Kong name, unique within `kind`:
 * other characters become `-`, a clash gets `-2`, `-3`…
 */
export function uniqueName(file: KongFile, kind: string, raw: string): string {
  let base = raw.replace(NAME_CHARS, '-').slice(0, 120);
  if (!/^[A-Za-z0-9]/.test(base)) base = `k${base}`;
  let taken = file.names.get(kind);
  if (!taken) file.names.set(kind, (taken = new Set()));
  let name = base;
  for (let n = 2; taken.has(name); n++) name = `${base}-${n}`;
  taken.add(name);
  return name;
}

/** True when a Kong name is kept as it is. */
export function isMeshgateName(raw: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(raw) && raw.length <= 120;
}

/**
 * A foreign key as Kong's declarative config writes it: a name or id string, or `{ name }`, `{ id }`,
 * `{ username }`. Returns the strings to look it up by.
 */
export function referenceKeys(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (isRecord(value))
    return ['name', 'id', 'username', 'custom_id']
      .map((k) => value[k])
      .filter((v): v is string => typeof v === 'string');
  return [];
}

/** A whole number within bounds, or undefined (reported invalid). */
export function integerOf(
  out: Conversion,
  value: unknown,
  ref: SourceRef,
  min: number,
  max: number,
): number | undefined {
  if (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max) return value;
  if (typeof value === 'string' && /^\d+$/.test(value) && Number(value) >= min && Number(value) <= max)
    return Number(value);
  out.reportInvalid(ref, `expected a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`);
  return undefined;
}

/** A number within bounds (Kong's `number` fields take fractions), or undefined (reported invalid). */
export function numberOf(
  out: Conversion,
  value: unknown,
  ref: SourceRef,
  min: number,
  max: number,
): number | undefined {
  const n = typeof value === 'string' && /^\d+(\.\d+)?$/.test(value) ? Number(value) : value;
  if (typeof n === 'number' && Number.isFinite(n) && n >= min && n <= max) return n;
  out.reportInvalid(ref, `expected a number from ${min} to ${max}, got ${JSON.stringify(value)}`);
  return undefined;
}

export function stringOf(out: Conversion, value: unknown, ref: SourceRef): string | undefined {
  if (typeof value === 'string') return value;
  out.reportInvalid(ref, `expected a string, got ${JSON.stringify(value)}`);
  return undefined;
}

/** A list of strings (absent or null: empty). */
export function stringsOf(out: Conversion, value: unknown, ref: SourceRef): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    out.reportInvalid(ref, 'expected a list of strings');
    return [];
  }
  const strings: string[] = [];
  value.forEach((v, i) => {
    if (typeof v === 'string') strings.push(v);
    else out.reportInvalid(child(ref, i), `expected a string, got ${JSON.stringify(v)}`);
  });
  return strings;
}

/** Milliseconds (or seconds × 1000) as a meshgate duration. */
export function msDuration(ms: number): string {
  const whole = Math.round(ms);
  return whole % 1000 === 0 ? `${whole / 1000}s` : `${whole}ms`;
}

export function secondsDuration(s: number): string {
  return Number.isInteger(s) ? `${s}s` : `${Math.round(s * 1000)}ms`;
}

/** Kong's `null` means "not set", as an absent field does. */
export function isSet(value: unknown): boolean {
  return value !== undefined && value !== null;
}

/** Same JSON value (for comparing a field with Kong's default; lists compared as sets when `asSet`). */
export function sameValue(a: unknown, b: unknown, asSet = false): boolean {
  if (asSet && Array.isArray(a) && Array.isArray(b))
    return a.length === b.length && a.every((x) => b.some((y) => sameValue(x, y)));
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * A field meshgate cannot honour, accepted only at Kong's default (deck writes every default into its
 * files): any other value is reported unsupported at the field.
 */
export function onlyDefault(
  out: Conversion,
  fields: Record<string, unknown>,
  ref: SourceRef,
  field: string,
  kongDefault: unknown,
  why: string,
  hint?: string,
): void {
  const value = fields[field];
  if (!isSet(value) || sameValue(value, kongDefault, true)) return;
  out.reportUnsupported(child(ref, field), `${field}: ${JSON.stringify(value)} is not supported: ${why}`, hint);
}

/** An unsupported field, whatever its value (null and empty lists aside: they mean "not set"). */
export function notSupported(
  out: Conversion,
  fields: Record<string, unknown>,
  ref: SourceRef,
  field: string,
  why: string,
  hint?: string,
): void {
  const value = fields[field];
  if (!isSet(value) || (Array.isArray(value) && value.length === 0)) return;
  if (isRecord(value) && Object.keys(value).length === 0) return;
  out.reportUnsupported(child(ref, field), `${field} is not supported: ${why}`, hint);
}
