/**
 * The compiled route table. Built once per snapshot; `match` is called per request and must not
 * allocate in the common case or grow with the number of routes for plain paths.
 *
 * Precedence (docs/routing.md), most specific first:
 *   1. host: exact host, then `*.suffix` (longest suffix first), then routes without hosts;
 *   2. within a host: exact path, then full match with `:params` (static segments beat params at the
 *      first difference), then `pathRegex`, then `/prefix/*` (longest prefix first), then no path;
 *   3. for the same path pattern: routes with more conditions (methods, headers, query, cookies) first;
 *   4. then declaration order.
 * Routes with a `priority` (first-match lists converted from other formats) are tried before all of
 * that, within their host group: higher priority first, then declaration order, path kind ignored.
 * The first candidate whose conditions all hold wins.
 */
import type { RouteConfig, RouteMatchConfig, ValueMatchConfig } from '../../api/config.ts';
import { cookieValue, queryValue } from '../../core/request-values.ts';

/** What the router may ask of a request, beyond method, host and path. */
export interface MatchInput {
  method: string;
  /** Lower-case host without port. */
  host: string;
  /** Normalised path without query. */
  path: string;
  /** Raw query string without `?`, or '' when absent. */
  query: string;
  /** Header value by lower-case name (joined with `, ` when repeated), or undefined. */
  header(name: string): string | undefined;
}

export interface RouteDefinition<T> {
  match: RouteMatchConfig | undefined;
  /** Declaration order, used as the final tie-break. */
  order: number;
  /** Present: the route is tried before unprioritised ones of its host group, higher first. */
  priority?: number;
  value: T;
}

type ValueTest = (value: string | undefined) => boolean;

interface Candidate<T> {
  value: T;
  order: number;
  /** Number of conditions, for rule 3. */
  weight: number;
  methods: ReadonlySet<string> | null;
  headers: readonly { name: string; test: ValueTest }[];
  query: readonly { name: string; test: ValueTest }[];
  cookies: readonly { name: string; test: ValueTest }[];
  /** Rank among prefix candidates: deeper prefixes and static segments first. */
  prefixRank: number;
}

class TrieNode<T> {
  readonly statics = new Map<string, TrieNode<T>>();
  param: TrieNode<T> | null = null;
  /** Routes whose whole pattern ends at this node. */
  readonly full: Candidate<T>[] = [];
  /** Routes `/…/*` whose prefix ends at this node. */
  readonly prefix: Candidate<T>[] = [];
}

class PathTable<T> {
  readonly exact = new Map<string, Candidate<T>[]>();
  readonly root = new TrieNode<T>();
  readonly regexes: { regex: RegExp; candidate: Candidate<T> }[] = [];
  readonly anyPath: Candidate<T>[] = [];
  /** Routes with a priority, in the order tried; each tests its own path. Empty for most tables. */
  readonly ordered: { path: PathTest; priority: number; candidate: Candidate<T> }[] = [];
  hasTrie = false;
}

type PathTest = (path: string) => boolean;

/** A route's path condition on its own, for routes tried in a fixed order rather than through the trie. */
export function compilePathTest(m: RouteMatchConfig | undefined): PathTest {
  if (m?.pathRegex !== undefined) {
    const regex = new RegExp(`^(?:${m.pathRegex})$`);
    return (p) => regex.test(p);
  }
  const pattern = m?.path;
  if (pattern === undefined || pattern === '/*') return () => true;
  if (!pattern.includes('/:') && !pattern.endsWith('/*')) return (p) => p === pattern;
  const isPrefix = pattern.endsWith('/*');
  const base = isPrefix ? pattern.slice(0, -2) : pattern;
  const escaped = base
    .split('/')
    .map((seg) => (seg.startsWith(':') ? '[^/]+' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  const regex = new RegExp(isPrefix ? `^${escaped}(?:/.*)?$` : `^${escaped}$`);
  return (p) => regex.test(p);
}

export function compileValueTest(condition: ValueMatchConfig): ValueTest {
  if (typeof condition === 'string') return (v) => v === condition;
  if (condition.exact !== undefined) {
    const exact = condition.exact;
    return (v) => v === exact;
  }
  if (condition.prefix !== undefined) {
    const prefix = condition.prefix;
    return (v) => v?.startsWith(prefix) === true;
  }
  if (condition.regex !== undefined) {
    const regex = new RegExp(`^(?:${condition.regex})$`);
    return (v) => v !== undefined && regex.test(v);
  }
  const present = condition.present === true;
  return (v) => (v !== undefined) === present;
}

function conditionsHold<T>(c: Candidate<T>, input: MatchInput): boolean {
  if (c.methods !== null && !c.methods.has(input.method)) return false;
  for (let i = 0; i < c.headers.length; i++) {
    const h = c.headers[i]!;
    if (!h.test(input.header(h.name))) return false;
  }
  for (let i = 0; i < c.query.length; i++) {
    const q = c.query[i]!;
    if (!q.test(queryValue(input.query, q.name))) return false;
  }
  for (let i = 0; i < c.cookies.length; i++) {
    const k = c.cookies[i]!;
    if (!k.test(cookieValue(input.header('cookie'), k.name))) return false;
  }
  return true;
}

function firstHolding<T>(candidates: readonly Candidate<T>[] | undefined, input: MatchInput): Candidate<T> | null {
  if (candidates === undefined) return null;
  for (let i = 0; i < candidates.length; i++) if (conditionsHold(candidates[i]!, input)) return candidates[i]!;
  return null;
}

const byWeightThenOrder = <T>(a: Candidate<T>, b: Candidate<T>) => b.weight - a.weight || a.order - b.order;
const byPrefixRank = <T>(a: Candidate<T>, b: Candidate<T>) => b.prefixRank - a.prefixRank || byWeightThenOrder(a, b);

export class Router<T> {
  private readonly exactHosts = new Map<string, PathTable<T>>();
  /** `*.example.com` as [`.example.com`, table], longest suffix first. */
  private readonly wildcardHosts: [string, PathTable<T>][] = [];
  private readonly anyHost = new PathTable<T>();
  /** Scratch space for prefix candidates during one match; `match` is synchronous, so one is enough. */
  private readonly scratch: Candidate<T>[] = [];
  readonly size: number;

  constructor(routes: readonly RouteDefinition<T>[]) {
    this.size = routes.length;
    for (const route of routes) {
      const hosts = route.match?.hosts;
      if (hosts === undefined) {
        this.add(this.anyHost, route);
        continue;
      }
      for (const raw of hosts) {
        const host = raw.toLowerCase();
        if (host.startsWith('*.')) {
          const suffix = host.slice(1);
          let entry = this.wildcardHosts.find(([s]) => s === suffix);
          if (!entry) this.wildcardHosts.push((entry = [suffix, new PathTable<T>()]));
          this.add(entry[1], route);
        } else {
          let table = this.exactHosts.get(host);
          if (!table) this.exactHosts.set(host, (table = new PathTable<T>()));
          this.add(table, route);
        }
      }
    }
    this.wildcardHosts.sort((a, b) => b[0].length - a[0].length);
    for (const table of [this.anyHost, ...this.exactHosts.values(), ...this.wildcardHosts.map(([, t]) => t)]) {
      sortTable(table);
    }
  }

  match(input: MatchInput): T | null {
    if (this.exactHosts.size > 0) {
      const table = this.exactHosts.get(input.host);
      if (table !== undefined) {
        const hit = this.matchTable(table, input);
        if (hit !== null) return hit.value;
      }
    }
    for (let i = 0; i < this.wildcardHosts.length; i++) {
      const [suffix, table] = this.wildcardHosts[i]!;
      if (input.host.length > suffix.length && input.host.endsWith(suffix)) {
        const hit = this.matchTable(table, input);
        if (hit !== null) return hit.value;
      }
    }
    const hit = this.matchTable(this.anyHost, input);
    return hit === null ? null : hit.value;
  }

  private add(table: PathTable<T>, route: RouteDefinition<T>) {
    const m = route.match;
    const headers = Object.entries(m?.headers ?? {}).map(([name, c]) => ({
      name: name.toLowerCase(),
      test: compileValueTest(c),
    }));
    const query = Object.entries(m?.query ?? {}).map(([name, c]) => ({ name, test: compileValueTest(c) }));
    const cookies = Object.entries(m?.cookies ?? {}).map(([name, c]) => ({ name, test: compileValueTest(c) }));
    const candidate: Candidate<T> = {
      value: route.value,
      order: route.order,
      weight: (m?.methods ? 1 : 0) + headers.length + query.length + cookies.length,
      methods: m?.methods ? new Set(m.methods) : null,
      headers,
      query,
      cookies,
      prefixRank: 0,
    };
    if (route.priority !== undefined) {
      table.ordered.push({ path: compilePathTest(m), priority: route.priority, candidate });
    } else if (m?.pathRegex !== undefined) {
      table.regexes.push({ regex: new RegExp(`^(?:${m.pathRegex})$`), candidate });
    } else if (m?.path === undefined || m.path === '/*') {
      table.anyPath.push(candidate);
    } else if (!m.path.includes('/:') && !m.path.endsWith('/*')) {
      const list = table.exact.get(m.path) ?? [];
      list.push(candidate);
      table.exact.set(m.path, list);
    } else {
      table.hasTrie = true;
      const isPrefix = m.path.endsWith('/*');
      const segments = (isPrefix ? m.path.slice(0, -2) : m.path).split('/').slice(1);
      let node = table.root;
      let rank = 0;
      for (const segment of segments) {
        // Deeper is more specific; a static segment outranks a parameter at the same depth.
        rank = rank * 4 + (segment.startsWith(':') ? 2 : 3);
        if (segment.startsWith(':')) node = node.param ??= new TrieNode<T>();
        else {
          let next = node.statics.get(segment);
          if (!next) node.statics.set(segment, (next = new TrieNode<T>()));
          node = next;
        }
      }
      candidate.prefixRank = rank;
      (isPrefix ? node.prefix : node.full).push(candidate);
    }
  }

  private matchTable(table: PathTable<T>, input: MatchInput): Candidate<T> | null {
    const path = input.path;
    if (table.ordered.length > 0) {
      const ordered = table.ordered;
      for (let i = 0; i < ordered.length; i++) {
        const o = ordered[i]!;
        if (o.path(path) && conditionsHold(o.candidate, input)) return o.candidate;
      }
    }
    if (table.exact.size > 0) {
      const hit = firstHolding(table.exact.get(path), input);
      if (hit !== null) return hit;
    }
    // Precedence: exact, then parameter paths (the walk), then regexes, then prefixes (collected by
    // the walk, longest first), then routes without a path.
    const scratch = this.scratch;
    scratch.length = 0;
    if (table.hasTrie) {
      const hit = this.walk(table.root, path, 1, input, scratch);
      if (hit !== null) return this.done(hit);
    }
    for (let i = 0; i < table.regexes.length; i++) {
      const r = table.regexes[i]!;
      if (r.regex.test(path) && conditionsHold(r.candidate, input)) return this.done(r.candidate);
    }
    if (scratch.length > 1) scratch.sort(byPrefixRank);
    const prefixed = scratch.length > 0 ? firstHolding(scratch, input) : null;
    return this.done(prefixed ?? firstHolding(table.anyPath, input));
  }

  /** Lets go of the prefixes the walk collected (the scratch array is reused by every match). */
  private done(hit: Candidate<T> | null): Candidate<T> | null {
    this.scratch.length = 0;
    return hit;
  }

  /**
   * Depth-first over segments, static before parameter. Returns the first full match whose
   * conditions hold; pushes prefix routes passed on the way into `prefixes`.
   * `start` indexes the first character of the current segment.
   */
  private walk(
    node: TrieNode<T>,
    path: string,
    start: number,
    input: MatchInput,
    prefixes: Candidate<T>[],
  ): Candidate<T> | null {
    for (let i = 0; i < node.prefix.length; i++) prefixes.push(node.prefix[i]!);
    if (start > path.length) {
      return firstHolding(node.full, input);
    }
    let end = path.indexOf('/', start);
    if (end === -1) end = path.length;
    if (node.statics.size > 0) {
      const next = node.statics.get(path.slice(start, end));
      if (next !== undefined) {
        const hit = this.walk(next, path, end + 1, input, prefixes);
        if (hit !== null) return hit;
      }
    }
    if (node.param !== null && end > start) {
      const hit = this.walk(node.param, path, end + 1, input, prefixes);
      if (hit !== null) return hit;
    }
    return null;
  }
}

function sortTable<T>(table: PathTable<T>) {
  table.ordered.sort((a, b) => b.priority - a.priority || a.candidate.order - b.candidate.order);
  for (const list of table.exact.values()) list.sort(byWeightThenOrder);
  table.anyPath.sort(byWeightThenOrder);
  // Rule 3 compares routes only within one pattern: distinct regexes keep declaration order, each
  // ranked where its pattern first appears.
  const firstOrder = new Map<string, number>();
  for (const { regex, candidate } of table.regexes) {
    const seen = firstOrder.get(regex.source);
    if (seen === undefined || candidate.order < seen) firstOrder.set(regex.source, candidate.order);
  }
  table.regexes.sort(
    (a, b) =>
      firstOrder.get(a.regex.source)! - firstOrder.get(b.regex.source)! || byWeightThenOrder(a.candidate, b.candidate),
  );
  const visit = (node: TrieNode<T>) => {
    node.full.sort(byWeightThenOrder);
    node.prefix.sort(byWeightThenOrder);
    for (const child of node.statics.values()) visit(child);
    if (node.param) visit(node.param);
  };
  visit(table.root);
}

/** Values of `:name` segments for a route's path pattern, computed on demand (never on the hot path). */
export function pathParams(pattern: string, path: string): Record<string, string> {
  const params: Record<string, string> = {};
  const names = pattern.split('/');
  const values = path.split('/');
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    if (!name.startsWith(':') || values[i] === undefined) continue;
    try {
      params[name.slice(1)] = decodeURIComponent(values[i]!);
    } catch {
      params[name.slice(1)] = values[i]!; // a malformed escape stays as sent
    }
  }
  return params;
}

/** `match.grpc` is sugar for a path: `/service/method`, or `/service/*` for every method. */
export function effectiveMatch(rc: RouteConfig): RouteConfig['match'] {
  const match = rc.match;
  if (match?.grpc === undefined) return match;
  const { grpc, ...rest } = match;
  return { ...rest, path: grpc.method === undefined ? `/${grpc.service}/*` : `/${grpc.service}/${grpc.method}` };
}
