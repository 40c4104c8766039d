/**
 * A route's API version (`routes[].version`), compiled once per snapshot: its labels for usage records
 * and the access log, and the lifecycle headers every response of the route carries (Deprecation,
 * RFC 9745; Sunset, RFC 8594; Link to the successor and to the deprecation notice), as one flat
 * `[name, value, …]` list so adding them to a response head is a loop over a few strings.
 */
import type { RouteVersionConfig } from '../api/config.ts';
import { rfc3339Ms } from '../config/metering.ts';

export interface CompiledVersion {
  readonly api: string;
  readonly name: string;
  /** Response headers, `[name, value, …]`, names lower-case; empty when the version has no lifecycle dates or links. */
  readonly headers: readonly string[];
}

export function compileVersion(v: RouteVersionConfig | undefined): CompiledVersion | null {
  if (v === undefined) return null;
  const headers: string[] = [];
  const deprecation = v.deprecation === undefined ? undefined : rfc3339Ms(v.deprecation);
  // A Structured Field Date (RFC 9651 §3.3.7): `@` and whole seconds since the epoch.
  if (deprecation !== undefined) headers.push('deprecation', `@${Math.floor(deprecation / 1000)}`);
  const sunset = v.sunset === undefined ? undefined : rfc3339Ms(v.sunset);
  // An HTTP-date (RFC 9110 §5.6.7, IMF-fixdate), which toUTCString writes.
  if (sunset !== undefined) headers.push('sunset', new Date(Math.floor(sunset / 1000) * 1000).toUTCString());
  const links: string[] = [];
  if (v.link !== undefined) links.push(`<${v.link}>; rel="successor-version"`);
  if (v.deprecationLink !== undefined) links.push(`<${v.deprecationLink}>; rel="deprecation"; type="text/html"`);
  if (links.length > 0) headers.push('link', links.join(', '));
  return Object.freeze({ api: v.api, name: v.name, headers: Object.freeze(headers) });
}

/** Adds the route's version headers to a response head being built (`[name, value, …]`). */
export function pushVersionHeaders(out: (string | string[])[], version: CompiledVersion): void {
  const h = version.headers;
  for (let i = 0; i < h.length; i++) out.push(h[i]!);
}
