/**
 * What the mesh inspection commands share: exit codes, the control plane's address, fetching JSON
 * from it, and plain-text tables.
 */
import { Agent } from 'node:http';
import { DEFAULT_CONTROL_PLANE_URL, DEFAULT_INSPECT_TIMEOUT_MS } from '../core/defaults.ts';
import { errorOf, type JsonResponse, requestJson } from '../proxy/mesh/http.ts';

/** Exit codes of analyze, status, proxy-status and proxy-config (docs/cli.md). */
export const EXIT = {
  /** Done, and nothing wrong found. */
  ok: 0,
  /** Done, and something is wrong: a finding, a rejected change, a proxy out of sync. */
  findings: 1,
  usage: 2,
  /** Could not get an answer: the control plane or proxy is unreachable, or has no such thing. */
  unavailable: 3,
} as const;

export function controlPlaneUrl(flag: string | undefined): string {
  return (flag ?? process.env.MESHGATE_CONTROL_PLANE ?? DEFAULT_CONTROL_PLANE_URL).replace(/\/$/, '');
}

export class Unavailable extends Error {}

/**
 * GET `base + path` as JSON; throws Unavailable with a reason a person can act on. (node:http rather
 * than fetch: fetch refuses some ports outright, e.g. 6000, and hides the network error's code.)
 */
export async function getJson<T>(base: string, path: string, timeoutMs = DEFAULT_INSPECT_TIMEOUT_MS): Promise<T> {
  let res: JsonResponse;
  const agent = new Agent({ keepAlive: false });
  try {
    res = await requestJson(agent, base + path, 'GET', undefined, timeoutMs);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new Unavailable(`cannot reach ${base}: ${err.code ?? err.message}`);
  } finally {
    agent.destroy();
  }
  if (res.body === null || typeof res.body !== 'object')
    throw new Unavailable(`${base}${path} answered ${res.status} with something that is not JSON`);
  if (res.status !== 200) throw new Unavailable(`${base}${path}: ${errorOf(res)}`);
  return res.body as T;
}

/** Columns padded to their widest cell; the last column is not padded. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

/** `2025-01-01T…` → `3s ago`. */
export function ago(iso: string | null, now = Date.now()): string {
  if (iso === null) return '-';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60 ? `${s % 60}s` : ''} ago`;
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m ago`;
}

export const short = (version: string | null) => (version === null ? '-' : version.slice(0, 8));

/** Runs a command body, turning Unavailable into its message and exit code 3. */
export async function reporting(command: string, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (e) {
    if (!(e instanceof Unavailable)) throw e;
    console.error(`meshgate ${command}: ${e.message}`);
    return EXIT.unavailable;
  }
}
