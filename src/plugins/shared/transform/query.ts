/**
 * Query string operations on the raw query (`ctx.query`). Parameters the operations do not touch keep
 * their bytes as the client sent them (re-encoding them could change what the upstream reads); names and
 * values the operations write are encoded as URLSearchParams encodes them (space as `+`). Names are
 * compared decoded, so `a%20b`, `a+b` and `a b` are one name.
 */
import { decodeQueryComponent } from '../../../core/request-values.ts';

/** application/x-www-form-urlencoded, as `URLSearchParams.toString()` writes it. */
export function formEncode(text: string): string {
  return encodeURIComponent(text).replace(/%20|[!'()~]/g, (c) =>
    c === '%20' ? '+' : `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** One `name=value` of a query: its bytes as they will be sent, and its decoded name. */
interface Param {
  raw: string;
  name: string;
}

export class QueryParams {
  private readonly params: Param[] = [];
  changed = false;

  constructor(query: string) {
    if (query === '') return;
    let start = 0;
    while (start <= query.length) {
      let end = query.indexOf('&', start);
      if (end === -1) end = query.length;
      if (end > start) {
        const raw = query.slice(start, end);
        const eq = raw.indexOf('=');
        this.params.push({ raw, name: decodeQueryComponent(eq === -1 ? raw : raw.slice(0, eq)) });
      }
      start = end + 1;
    }
  }

  has(name: string): boolean {
    for (const p of this.params) if (p.name === name) return true;
    return false;
  }

  remove(name: string): void {
    const kept = this.params.filter((p) => p.name !== name);
    if (kept.length === this.params.length) return;
    this.params.length = 0;
    this.params.push(...kept);
    this.changed = true;
  }

  /** Every `old` becomes `to`, each keeping its value as sent. */
  rename(name: string, to: string, encodedTo: string): void {
    if (name === to) return;
    for (const p of this.params) {
      if (p.name !== name) continue;
      const eq = p.raw.indexOf('=');
      p.raw = eq === -1 ? encodedTo : encodedTo + p.raw.slice(eq);
      p.name = to;
      this.changed = true;
    }
  }

  /** The first `name` takes the value, the others go; nothing when absent. */
  replace(name: string, encodedName: string, value: string): void {
    const first = this.params.findIndex((p) => p.name === name);
    if (first === -1) return;
    this.remove(name);
    this.params.splice(first, 0, { raw: `${encodedName}=${formEncode(value)}`, name });
    this.changed = true;
  }

  append(name: string, encodedName: string, value: string): void {
    this.params.push({ raw: `${encodedName}=${formEncode(value)}`, name });
    this.changed = true;
  }

  toString(): string {
    let out = '';
    for (const p of this.params) out = out === '' ? p.raw : `${out}&${p.raw}`;
    return out;
  }
}
