/**
 * The control plane's connection to etcd, and the one way it reads a part of the keyspace: a prefix
 * read at a revision, then watched from the next one, so no change is missed or seen twice.
 *
 * The etcd3 client (and gRPC under it) is imported only here and only when `--etcd` is given: a
 * control plane without etcd loads none of it.
 */
import type { Etcd3, IKeyValue, IWatchResponse, Namespace, Watcher } from 'etcd3';
import { DEFAULT_ETCD_DIAL_TIMEOUT_MS } from '../../core/defaults.ts';

export interface EtcdConnection {
  readonly client: Etcd3;
  /** The client with the key prefix applied: every key below is relative to it. */
  readonly ns: Namespace;
  readonly prefix: string;
  readonly urls: readonly string[];
  close(): void;
}

export class EtcdUnavailableError extends Error {
  override readonly name = 'EtcdUnavailableError';
}

/**
 * Connects to the etcd cluster at `urls` and checks it answers (so a wrong URL fails at start, with
 * the URLs in the message, not at the first write).
 */
export async function connectEtcd(
  urls: readonly string[],
  prefix: string,
  dialTimeoutMs = DEFAULT_ETCD_DIAL_TIMEOUT_MS,
): Promise<EtcdConnection> {
  const { Etcd3 } = await import('etcd3');
  const client = new Etcd3({ hosts: [...urls], dialTimeout: dialTimeoutMs });
  try {
    await client.maintenance.status({ deadline: Date.now() + dialTimeoutMs });
  } catch (e) {
    client.close();
    throw new EtcdUnavailableError(`etcd at ${urls.join(', ')} does not answer: ${(e as Error).message}`);
  }
  return { client, ns: client.namespace(prefix), prefix, urls, close: () => client.close() };
}

/** Splits `--etcd` (comma-separated URLs) into URLs; throws naming the first that is not one. */
export function parseEtcdUrls(text: string): string[] {
  const urls = text
    .split(',')
    .map((u) => u.trim())
    .filter((u) => u !== '');
  if (urls.length === 0) throw new Error('--etcd needs at least one URL');
  for (const u of urls)
    if (!URL.canParse(u) || !/^https?:$/.test(new URL(u).protocol))
      throw new Error(`--etcd "${u}" is not an http(s) URL (e.g. http://127.0.0.1:2379)`);
  return urls;
}

/** A key prefix ends with `/`, so `/meshgate` and `/meshgate-2` never share keys. */
export function normalizePrefix(prefix: string): string {
  return prefix.endsWith('/') ? prefix : `${prefix}/`;
}

export type KeyEvent = { type: 'put'; key: string; kv: IKeyValue } | { type: 'delete'; key: string; kv: IKeyValue };

/**
 * Follows the keys under `prefix` (relative to the connection's): `start` reads them all and the
 * revision they were read at, then watches from the next revision; `onEvent` sees every later put and
 * delete in revision order. `caughtUp(rev)` resolves once everything up to `rev` was handled, so a
 * writer can wait until its own write has been applied here (read your writes).
 */
export class PrefixFollower {
  private readonly ns: Namespace;
  private readonly prefix: string;
  private readonly onEvent: (event: KeyEvent, revision: number) => void;
  private watcher: Watcher | null = null;
  private handled = 0;
  private closed = false;
  private waiters: { revision: number; resolve: () => void }[] = [];

  constructor(ns: Namespace, prefix: string, onEvent: (event: KeyEvent, revision: number) => void) {
    this.ns = ns;
    this.prefix = prefix;
    this.onEvent = onEvent;
  }

  /** Reads the current keys (returned, with the revision read at) and starts watching after them. */
  async start(): Promise<{ kvs: IKeyValue[]; revision: number }> {
    const res = await this.ns.getAll().prefix(this.prefix).exec();
    const revision = Number(res.header.revision);
    this.handled = revision;
    const watcher = await this.ns
      .watch()
      .prefix(this.prefix)
      .startRevision(String(revision + 1))
      .create();
    watcher.on('data', (r: IWatchResponse) => this.onData(r));
    // The client reconnects and resumes from the last revision by itself; errors are reported by it.
    watcher.on('error', () => {});
    this.watcher = watcher;
    return { kvs: res.kvs, revision };
  }

  private onData(res: IWatchResponse) {
    for (const ev of res.events) {
      const key = ev.kv.key.toString().slice(this.prefix.length);
      const type = ev.type === 'Put' ? 'put' : 'delete';
      this.onEvent({ type, key, kv: ev.kv }, Number(ev.kv.mod_revision));
    }
    const revision = Number(res.header.revision);
    if (revision > this.handled) this.handled = revision;
    this.waiters = this.waiters.filter((w) => {
      if (w.revision > this.handled) return true;
      w.resolve();
      return false;
    });
  }

  /** The last revision whose events were handled. */
  get revision(): number {
    return this.handled;
  }

  caughtUp(revision: number): Promise<void> {
    if (revision <= this.handled || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ revision, resolve }));
  }

  async close(): Promise<void> {
    const w = this.watcher;
    this.watcher = null;
    this.closed = true;
    for (const waiter of this.waiters) waiter.resolve();
    this.waiters = [];
    await w?.cancel().catch(() => {});
  }
}

/** The revision a write was made at. */
export function revisionOf(res: { header: { revision: string } }): number {
  return Number(res.header.revision);
}
