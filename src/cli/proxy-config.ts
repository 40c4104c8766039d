/**
 * `meshgate proxy-config listeners|routes|services|endpoints PROXY`: what one proxy has, read from the
 * control plane (the config the proxy last ACKed) or from the proxy's own admin API (`--admin`, with
 * live connection counters).
 */
import { parseArgs } from 'node:util';
import type { Config, RouteConfig } from '../api/config.ts';
import type { ProxyStatusView } from '../api/mesh.ts';
import { closest } from '../config/issues.ts';
import { DEFAULT_CONTROL_PLANE_URL } from '../core/defaults.ts';
import { listenerEngine } from '../core/listener-engine.ts';
import {
  controlPlaneUrl,
  EXIT,
  getJson,
  operatorToken,
  reporting,
  short,
  table,
  Unavailable,
  until,
} from './mesh-client.ts';

export const usage = `Usage: meshgate proxy-config listeners|routes|services|endpoints|secrets PROXY [options]
       meshgate proxy-config listeners|routes|services|endpoints|secrets --admin URL [options]

Shows what one proxy has: by default the config it last ACKed, as the control plane records it,
with its version and whether it is in sync; with --admin, what the proxy itself serves, read from
its admin API (e.g. http://127.0.0.1:15000), with live request and connection counts.
PROXY is a proxy id as \`meshgate proxy-status\` lists them, or a unique prefix of one.
\`secrets\` shows the proxy's workload identity: SPIFFE ID, issuer, serial, validity, and the trust
bundle's root fingerprints (never a key: the control plane never has it, the proxy never serves it).
From the control plane it needs an operator token ($MESHGATE_OPERATOR_TOKEN or
$MESHGATE_OPERATOR_TOKEN_FILE) when tokens are configured.

Options:
      --control-plane URL   default $MESHGATE_CONTROL_PLANE or ${DEFAULT_CONTROL_PLANE_URL}
      --admin URL           ask the proxy's admin API instead
  -o, --output text|json

Exit status: 0 shown (and, from the control plane, in sync), 1 shown but the proxy is not in sync,
2 bad usage, 3 the control plane or proxy cannot be reached, or has no such proxy.`;

const VIEWS = ['listeners', 'routes', 'services', 'endpoints', 'secrets'] as const;
type View = (typeof VIEWS)[number];

interface BundleRoot {
  subject: string;
  fingerprint256: string;
  notAfter: string;
  active?: boolean;
}

interface ProxyDetail extends ProxyStatusView {
  config: Config | null;
  trustBundle: { trustDomain: string; digest: string; roots: BundleRoot[] } | null;
}

/** The proxy's `GET /identity`. */
interface AdminIdentity {
  state: string;
  spiffeId: string | null;
  issuer: string | null;
  serial: string | null;
  notBefore: string | null;
  notAfter: string | null;
  renewAt: string | null;
  trustBundle: { digest: string | null; roots: BundleRoot[] };
}

interface AdminService {
  name: string;
  endpoints: { url: string; activeRequests: number; connections: { open: number; busy: number } }[];
}

export async function proxyConfigCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      'control-plane': { type: 'string' },
      admin: { type: 'string' },
      output: { type: 'string', short: 'o', default: 'text' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(usage);
    return EXIT.ok;
  }
  const [view, proxy] = positionals as [View | undefined, string | undefined];
  if (
    !VIEWS.includes(view as View) ||
    positionals.length > 2 ||
    (proxy === undefined && values.admin === undefined) ||
    !['text', 'json'].includes(values.output!)
  ) {
    console.error(usage);
    return EXIT.usage;
  }
  const json = values.output === 'json';
  if (view === 'secrets') return reporting('proxy-config', () => secrets(values, proxy, json));
  return reporting('proxy-config', async () => {
    let config: Config;
    let header: string;
    let meta: Record<string, unknown>;
    let live: AdminService[] | null = null;
    let bound: Record<string, number> = {};
    let inSync = true;
    if (values.admin !== undefined) {
      const base = values.admin.replace(/\/$/, '');
      const dump = await getJson<{
        version: number;
        hash: string;
        source: string;
        config: Config;
        listeners: Record<string, number>;
      }>(base, '/config');
      config = dump.config;
      bound = dump.listeners;
      if (view === 'endpoints') live = (await getJson<{ services: AdminService[] }>(base, '/services')).services;
      header = `proxy at ${base}: config ${short(dump.hash)} (local version ${dump.version}) from ${dump.source}`;
      meta = { admin: base, hash: dump.hash, version: dump.version, source: dump.source };
    } else {
      const base = controlPlaneUrl(values['control-plane']);
      const id = await resolveProxy(base, proxy!);
      const detail = await getJson<ProxyDetail>(base, `/proxies/${encodeURIComponent(id)}`, { token: operatorToken() });
      inSync = detail.state === 'SYNCED';
      const what = detail.kind === 'sidecar' ? `sidecar of ${detail.service}` : detail.kind;
      header =
        `proxy ${detail.id} (${what}): ${detail.state}, version ${short(detail.ackedVersion)}` +
        (inSync ? '' : `, expected ${short(detail.expectedVersion)}`) +
        (detail.lastNack ? `; last NACK: ${detail.lastNack.error.message}` : '');
      meta = {
        proxy: detail.id,
        kind: detail.kind,
        service: detail.service,
        state: detail.state,
        version: detail.ackedVersion,
        expectedVersion: detail.expectedVersion,
      };
      if (detail.config === null) {
        if (json) console.log(JSON.stringify({ ...meta, [view!]: null }, null, 2));
        else console.log(`${header}\nthe control plane does not know what this proxy serves yet`);
        return EXIT.findings;
      }
      config = detail.config;
    }
    const rows = render(view as Exclude<View, 'secrets'>, config, bound, live);
    if (json) console.log(JSON.stringify({ ...meta, [view!]: rows.data }, null, 2));
    else console.log(`${header}\n\n${rows.text}`);
    return inSync ? EXIT.ok : EXIT.findings;
  });
}

/** An exact id, else a unique prefix (as with container and pod names). */
async function resolveProxy(base: string, wanted: string, token = operatorToken()): Promise<string> {
  const { proxies } = await getJson<{ proxies: ProxyStatusView[] }>(base, '/proxies', { token });
  const ids = proxies.map((p) => p.id);
  if (ids.includes(wanted)) return wanted;
  const prefixed = ids.filter((id) => id.startsWith(wanted));
  if (prefixed.length === 1) return prefixed[0]!;
  if (prefixed.length > 1)
    throw new Unavailable(`"${wanted}" matches ${prefixed.length} proxies: ${prefixed.join(', ')}`);
  const guess = closest(wanted, ids);
  throw new Unavailable(
    `no proxy "${wanted}"${guess ? ` (did you mean "${guess}"?)` : ids.length ? ` (proxies: ${ids.join(', ')})` : ''}`,
  );
}

function routesOn(config: Config, listener: string): RouteConfig[] {
  return (config.routes ?? []).filter((r) => r.listeners === undefined || r.listeners.includes(listener));
}

/** Where a converted object came from (src/compat/): shown only when the config has such objects. */
function originOf(item: { origin?: string }): { origin?: string } {
  return item.origin === undefined ? {} : { origin: item.origin };
}

function hasOrigins(rows: readonly { origin?: string }[]): boolean {
  return rows.some((r) => r.origin !== undefined);
}

/** The route's action kind (forward, direct, redirect, transcode, …) and, in a few words, what it does. */
function action(r: RouteConfig): { kind: string; to: string } {
  if (r.directResponse) return { kind: 'direct', to: String(r.directResponse.status) };
  if (r.redirect) {
    const { status, ...parts } = r.redirect;
    const changes = Object.entries(parts).map(([k, v]) => `${k}=${v}`);
    return { kind: 'redirect', to: [String(status ?? 301), ...changes].join(' ') };
  }
  if (r.graphql)
    return {
      kind: 'graphql',
      to: `${r.graphql.service}${r.graphql.subset ? `/${r.graphql.subset}` : ''}${r.graphql.path ?? ''}`,
    };
  if (r.transcode) return { kind: 'transcode', to: r.transcode.service };
  if (r.service) return { kind: 'forward', to: r.service };
  const to = (r.destinations ?? [])
    .map(
      (d) => `${d.service}${d.subset ? `/${d.subset}` : ''}${r.destinations!.length > 1 ? ` ${d.weight ?? 0}%` : ''}`,
    )
    .join(', ');
  return { kind: 'forward', to };
}

function render(
  view: Exclude<View, 'secrets'>,
  config: Config,
  bound: Record<string, number>,
  live: AdminService[] | null,
): { text: string; data: unknown[] } {
  switch (view) {
    case 'listeners': {
      const data = (config.listeners ?? []).map((l) => ({
        name: l.name,
        address: l.address ?? '0.0.0.0',
        port: l.port,
        ...(bound[l.name] !== undefined ? { boundPort: bound[l.name] } : {}),
        engine: listenerEngine(l),
        routes: routesOn(config, l.name).map((r) => r.name),
        ...originOf(l),
      }));
      const origins = hasOrigins(data);
      return {
        data,
        text: table(
          ['LISTENER', 'ADDRESS', 'PORT', 'ENGINE', 'ROUTES', ...(origins ? ['ORIGIN'] : [])],
          data.map((l) => [
            l.name,
            l.address,
            l.boundPort !== undefined && l.boundPort !== l.port ? `${l.port} (bound ${l.boundPort})` : String(l.port),
            l.engine,
            l.routes.join(', '),
            ...(origins ? [l.origin ?? '-'] : []),
          ]),
        ),
      };
    }
    case 'routes': {
      const data = (config.routes ?? []).map((r) => ({
        name: r.name,
        listeners: r.listeners ?? null,
        hosts: r.match?.hosts ?? null,
        path: r.match?.path ?? r.match?.pathRegex ?? null,
        methods: r.match?.methods ?? null,
        headers: r.match?.headers ?? null,
        ...action(r),
        version: r.version ?? null,
        ...originOf(r),
      }));
      const origins = hasOrigins(data);
      // The column only when some route serves an API version (docs/versioning.md).
      const versioned = data.some((r) => r.version !== null);
      const lifecycle = (v: NonNullable<RouteConfig['version']>) =>
        `${v.api} ${v.name}${v.sunset ? ` (sunset ${v.sunset})` : v.deprecation ? ` (deprecated ${v.deprecation})` : ''}`;
      return {
        data,
        text: table(
          [
            'ROUTE',
            'LISTENERS',
            'HOSTS',
            'PATH',
            'METHODS',
            'HEADERS',
            'ACTION',
            'TO',
            ...(versioned ? ['VERSION'] : []),
            ...(origins ? ['ORIGIN'] : []),
          ],
          data.map((r) => [
            r.name,
            r.listeners?.join(',') ?? '*',
            r.hosts?.join(',') ?? '*',
            r.path ?? '*',
            r.methods?.join(',') ?? '*',
            r.headers ? Object.keys(r.headers).join(',') : '-',
            r.kind,
            r.to,
            ...(versioned ? [r.version === null ? '-' : lifecycle(r.version)] : []),
            ...(origins ? [r.origin ?? '-'] : []),
          ]),
        ),
      };
    }
    case 'services': {
      const data = (config.services ?? []).map((s) => ({
        name: s.name,
        endpoints: (s.endpoints ?? []).length,
        subsets: Object.keys(s.subsets ?? {}),
        timeouts: s.timeouts ?? {},
        ...originOf(s),
      }));
      const origins = hasOrigins(data);
      return {
        data,
        text: table(
          ['SERVICE', 'ENDPOINTS', 'SUBSETS', 'TIMEOUTS', ...(origins ? ['ORIGIN'] : [])],
          data.map((s) => [
            s.name,
            String(s.endpoints),
            s.subsets.join(',') || '-',
            Object.entries(s.timeouts)
              .map(([k, v]) => `${k}=${v}`)
              .join(',') || '-',
            ...(origins ? [s.origin ?? '-'] : []),
          ]),
        ),
      };
    }
    case 'endpoints': {
      const data = (config.services ?? []).flatMap((s) =>
        (s.endpoints ?? []).map((e) => {
          const counters = live?.find((l) => l.name === s.name)?.endpoints.find((x) => x.url === new URL(e.url).origin);
          return {
            service: s.name,
            url: e.url,
            labels: e.labels ?? {},
            subsets: Object.entries(s.subsets ?? {})
              .filter(([, sel]) => Object.entries(sel).every(([k, v]) => e.labels?.[k] === v))
              .map(([name]) => name),
            ...(counters ? { activeRequests: counters.activeRequests, connections: counters.connections } : {}),
          };
        }),
      );
      const headers = ['SERVICE', 'ENDPOINT', 'LABELS', 'SUBSETS', ...(live ? ['ACTIVE', 'CONNECTIONS'] : [])];
      return {
        data,
        text: table(
          headers,
          data.map((e) => [
            e.service,
            e.url,
            Object.entries(e.labels)
              .map(([k, v]) => `${k}=${v}`)
              .join(',') || '-',
            e.subsets.join(',') || '-',
            ...(live ? [String(e.activeRequests ?? 0), String(e.connections?.open ?? 0)] : []),
          ]),
        ),
      };
    }
  }
}

/** `proxy-config secrets`: the identity a proxy holds (from its admin API) or was issued (from the control plane). */
async function secrets(
  values: { admin?: string | undefined; 'control-plane'?: string | undefined },
  proxy: string | undefined,
  json: boolean,
): Promise<number> {
  let data: {
    proxy: string;
    spiffeId: string | null;
    issuer: string | null;
    serial: string | null;
    notBefore: string | null;
    notAfter: string | null;
    trustBundle: { digest: string | null; roots: BundleRoot[] } | null;
  };
  if (values.admin !== undefined) {
    const base = values.admin.replace(/\/$/, '');
    const id = await getJson<AdminIdentity & { proxy: string }>(base, '/identity');
    data = { ...id, proxy: id.proxy };
  } else {
    const base = controlPlaneUrl(values['control-plane']);
    const token = operatorToken();
    const id = await resolveProxy(base, proxy!, token);
    const detail = await getJson<ProxyDetail>(base, `/proxies/${encodeURIComponent(id)}`, { token });
    const c = detail.certificate ?? null;
    data = {
      proxy: detail.id,
      spiffeId: c?.spiffeId ?? null,
      issuer: c?.issuer ?? null,
      serial: c?.serial ?? null,
      notBefore: c?.notBefore ?? null,
      notAfter: c?.notAfter ?? null,
      trustBundle: detail.trustBundle,
    };
  }
  if (json) console.log(JSON.stringify(data, null, 2));
  else {
    const rows = [
      ['IDENTITY', data.spiffeId ?? '- (none issued)'],
      ['ISSUER', data.issuer ?? '-'],
      ['SERIAL', data.serial ?? '-'],
      ['NOT BEFORE', data.notBefore ?? '-'],
      ['NOT AFTER', data.notAfter ? `${data.notAfter} (${until(data.notAfter)})` : '-'],
    ];
    const roots = data.trustBundle?.roots ?? [];
    console.log(
      `proxy ${data.proxy}\n\n${table(['', ''], rows).split('\n').slice(1).join('\n')}\n\n` +
        `trust bundle ${data.trustBundle?.digest?.slice(0, 16) ?? '-'}\n` +
        table(
          ['ROOT', 'SHA-256 FINGERPRINT', 'NOT AFTER'],
          roots.map((r) => [r.subject, r.fingerprint256, r.notAfter]),
        ),
    );
  }
  return data.spiffeId === null ? EXIT.findings : EXIT.ok;
}
