/** Istio's value forms (hosts, durations, percentages) in meshgate's terms. */
import { DURATION_PATTERN } from '../../core/duration.ts';
import { type Conversion, child, isRecord, listOf, type SourceRef } from '../shared/format.ts';

/**
 * The meshgate service an Istio host names. Kubernetes service names are expanded by Istio relative to
 * the resource's namespace; meshgate names services without namespaces, so every form of the same
 * service name is that name:
 *   `reviews`, `reviews.<ns>.svc`, `reviews.<ns>.svc.<cluster domain>` → `reviews`.
 * Any other host (`api.example.com`, a ServiceEntry's external host) is a service of that very name.
 */
export function serviceOfHost(host: string): string {
  const h = host.toLowerCase();
  const svc = /^([a-z0-9]([a-z0-9-]*[a-z0-9])?)\.[a-z0-9-]+\.svc(\..+)?$/.exec(h);
  if (svc) return svc[1]!;
  return h;
}

/** True for a Kubernetes-style service host (short name or `*.svc…` FQDN), which may be reached by any of its forms. */
export function isServiceHost(host: string): boolean {
  return !host.includes('.') || /\.svc(\.|$)/.test(host.toLowerCase());
}

const GO_DURATION = /^(?:\d+(?:\.\d+)?(?:h|m|s|ms|us|µs|ns))+$/;
const GO_PART = /(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/g;
const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, µs: 0.001, ns: 0.000001 };
const MESHGATE_DURATION = new RegExp(DURATION_PATTERN);

/**
 * An Istio (protobuf/Go) duration as a meshgate duration: kept as written when meshgate reads it the
 * same way, else in milliseconds. A value below a millisecond is reported unsupported (meshgate's
 * durations are whole milliseconds).
 */
export function duration(out: Conversion, value: unknown, ref: SourceRef): string | undefined {
  if (typeof value !== 'string' || !GO_DURATION.test(value)) {
    out.reportInvalid(ref, `expected a duration such as "10s" or "250ms", got ${JSON.stringify(value)}`);
    return undefined;
  }
  if (MESHGATE_DURATION.test(value)) return value;
  let ms = 0;
  for (const m of value.matchAll(GO_PART)) ms += Number(m[1]) * UNIT_MS[m[2]!]!;
  if (ms > 0 && ms < 1) {
    out.reportUnsupported(ref, `${value} is below a millisecond, meshgate's smallest unit`);
    return undefined;
  }
  return `${Math.round(ms)}ms`;
}

/** Istio's `Percent` (`{ value: 12.5 }`) or a deprecated integer percent field. */
export function percentOf(out: Conversion, value: unknown, ref: SourceRef): number | undefined {
  const n = isRecord(value) ? value.value : value;
  if (typeof n !== 'number' || !(n >= 0 && n <= 100)) {
    out.reportInvalid(ref, `expected a percentage from 0 to 100, got ${JSON.stringify(value)}`);
    return undefined;
  }
  return n;
}

/** `ns/name` or `name` → `name` (meshgate has no namespaces). */
export function localName(ref: string): string {
  const slash = ref.lastIndexOf('/');
  return slash === -1 ? ref : ref.slice(slash + 1);
}

/** A number, or a string of digits (what `${NAME}` substitution leaves in a port field). */
export function numberOf(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && /^\d+$/.test(value)) return Number(value);
  return undefined;
}

/** One Istio resource being converted, and what the file's other resources tell it. */
export interface IstioResource {
  out: Conversion;
  /** Its `spec`. */
  ref: SourceRef;
  kind: string;
  name: string;
  namespace: string;
  /** `istio:Kind/namespace/name` plus a path: the origin recorded on what it produces. */
  origin(suffix?: string): string;
  /** Listener names of the file's Gateways, by gateway name (VirtualService `gateways`). */
  gateways: Map<string, string[]>;
}

/** A name for a meshgate object made from a resource: `name`, or `namespace.name` outside `default`. */
export function objectName(resource: IstioResource, suffix?: string): string {
  const base = resource.namespace === 'default' ? resource.name : `${resource.namespace}.${resource.name}`;
  return suffix === undefined ? base : `${base}-${suffix}`;
}

/** `exportTo` limits visibility across namespaces, which meshgate does not have: `*` and `.` mean the same there. */
export function exportTo(out: Conversion, value: unknown, ref: SourceRef): void {
  for (const [i, v] of listOf(out, value, ref).entries())
    if (v !== '*' && v !== '.')
      out.reportUnsupported(child(ref, i), `exportTo "${String(v)}": meshgate has no namespaces to export to`);
}
