/**
 * What the mesh inspection commands share: exit codes, the control plane's address, fetching JSON
 * from it, and plain-text tables.
 */
import { readFileSync } from 'node:fs';
import { DEFAULT_CONTROL_PLANE_URL, DEFAULT_INSPECT_TIMEOUT_MS } from '../core/defaults.ts';
import { http } from '../core/node-http.ts';
import { bearer, errorOf, type JsonResponse, requestJson } from '../proxy/mesh/http.ts';

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
 * A token from a file (its first line that is not empty or a `#` comment), else from the environment
 * variable `env`; undefined when neither is set. Throws when the file cannot be read.
 */
export function readToken(file: string | undefined, env: string): string | undefined {
  if (file !== undefined) {
    const line = readFileSync(file, 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l !== '' && !l.startsWith('#'));
    if (line === undefined) throw new Error(`${file} holds no token`);
    return line;
  }
  const value = process.env[env]?.trim();
  return value ? value : undefined;
}

/** The operator token tools send to the control plane: `$MESHGATE_OPERATOR_TOKEN_FILE` or `$MESHGATE_OPERATOR_TOKEN`. */
export function operatorToken(): string | undefined {
  try {
    return readToken(process.env.MESHGATE_OPERATOR_TOKEN_FILE || undefined, 'MESHGATE_OPERATOR_TOKEN');
  } catch (e) {
    throw new Unavailable((e as Error).message);
  }
}

/**
 * GET `base + path` as JSON; throws Unavailable with a reason a person can act on. (node:http rather
 * than fetch: fetch refuses some ports outright, e.g. 6000, and hides the network error's code.)
 */
export async function getJson<T>(
  base: string,
  path: string,
  options: { timeoutMs?: number; token?: string | undefined } = {},
): Promise<T> {
  let res: JsonResponse;
  const agent = new http.Agent({ keepAlive: false });
  try {
    res = await requestJson(
      agent,
      base + path,
      'GET',
      undefined,
      options.timeoutMs ?? DEFAULT_INSPECT_TIMEOUT_MS,
      bearer(options.token),
    );
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new Unavailable(`cannot reach ${base}: ${err.code ?? err.message}`);
  } finally {
    agent.destroy();
  }
  if (res.body === null || typeof res.body !== 'object')
    throw new Unavailable(`${base}${path} answered ${res.status} with something that is not JSON`);
  if (res.status === 401 || res.status === 403)
    throw new Unavailable(
      `${base}${path}: ${errorOf(res)}${options.token === undefined ? ' (set MESHGATE_OPERATOR_TOKEN or MESHGATE_OPERATOR_TOKEN_FILE)' : ''}`,
    );
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

/** `2025-01-01T…` in the future → `in 23h59m`; past → `expired 3s ago`. */
export function until(iso: string, now = Date.now()): string {
  const ms = Date.parse(iso) - now;
  if (ms <= 0) return `expired ${ago(iso, now)}`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `in ${s}s`;
  if (s < 3600) return `in ${Math.floor(s / 60)}m${s % 60 ? `${s % 60}s` : ''}`;
  return `in ${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
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
