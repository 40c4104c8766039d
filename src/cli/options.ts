/** What several commands share: reading option values, and saying why a listener could not bind. */
import type { ConfigIssue } from '../api/issues.ts';
import type { CompatOptions } from '../compat/index.ts';

/** "cannot listen on 127.0.0.1:8080: address already in use" rather than a stack trace. */
export function listenError(e: unknown): string {
  const err = e as NodeJS.ErrnoException & { address?: string; port?: number };
  const reasons: Record<string, string> = {
    EADDRINUSE: 'address already in use (another process holds the port)',
    EACCES: 'permission denied (ports below 1024 need privileges)',
    EADDRNOTAVAIL: 'address not available on this machine',
  };
  if (err.syscall === 'listen' && err.code)
    return `cannot listen on ${err.address}:${err.port}: ${reasons[err.code] ?? err.code}`;
  return err.message;
}

/** `--labels version=v2,zone=eu-1` → `{ version: 'v2', zone: 'eu-1' }`; throws on a malformed pair. */
export function parseLabels(text: string | undefined): Record<string, string> {
  const labels: Record<string, string> = {};
  if (!text) return labels;
  for (const pair of text.split(',')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`"${pair}" is not key=value`);
    labels[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  return labels;
}

/** `--workers`: 0 to 256; 0 and 1 run the proxy in this process. Undefined when `text` is not one. */
export function parseWorkers(text: string | undefined, fallback: number): number | undefined {
  const n = text === undefined ? fallback : Number(text);
  return Number.isInteger(n) && n >= 0 && n <= 256 ? n : undefined;
}

/** A port number from 0 to 65535 (0: any free port); undefined when `text` is not one. */
export function parsePort(text: string | undefined, fallback: number): number | undefined {
  const n = text === undefined ? fallback : Number(text);
  return Number.isInteger(n) && n >= 0 && n <= 65535 ? n : undefined;
}

/** The options of every command that reads config files, for foreign formats (src/compat/). */
export const FOREIGN_FORMAT_OPTIONS = {
  'allow-unsupported': { type: 'boolean' },
  listen: { type: 'string' },
} as const;

export const FOREIGN_FORMAT_USAGE = `      --allow-unsupported  load Kong or Istio files even if some of their fields cannot be converted
                        (each is logged as a warning); default: such a file is refused
      --listen ADDR:PORT  where converted files listen when no file names a listener
                        (default: where the source system would, e.g. Istio's gateway on 0.0.0.0:8080,
                        Kong's proxy on 0.0.0.0:8000)`;

/**
 * `--allow-unsupported` and `--listen` → the converters' options; a string is a usage error.
 * `warn` gets each unsupported part a file had when it is loaded anyway.
 */
export function foreignFormatOptions(
  values: { 'allow-unsupported'?: boolean; listen?: string },
  warn: (issue: ConfigIssue) => void,
): CompatOptions | string {
  const listen = values.listen === undefined ? undefined : parseListen(values.listen);
  if (values.listen !== undefined && listen === undefined)
    return `--listen "${values.listen}" is not ADDRESS:PORT (e.g. 0.0.0.0:8080)`;
  return { allowUnsupported: values['allow-unsupported'] === true, warn, ...(listen ? { listen } : {}) };
}

/**
 * `--listen ADDR:PORT` (or `PORT`, or `[v6]:PORT`) → address and port; undefined when malformed.
 * Here, not in compat/, so that a proxy, which loads these options, loads no converter (nor the
 * TypeBox schemas they import).
 */
export function parseListen(text: string): { address: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:]+))?:?(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  return { address: m[1] ?? m[2] ?? '0.0.0.0', port };
}
