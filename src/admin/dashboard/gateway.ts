/**
 * The dashboard of a gateway run on its own (`meshgate gateway --config FILE`), on its admin listener:
 * its own telemetry (read from its metrics every interval, as a mesh proxy reports it), its routes'
 * golden signals and its request lookup. No control plane, so no other proxy, no change log and no
 * weights to change from the page: its config is its file.
 */

import type { IncomingMessage } from 'node:http';
import type { Authenticator } from '../../control-plane/auth/tokens.ts';
import { DEFAULT_TELEMETRY_INTERVAL_MS } from '../../core/defaults.ts';
import type { Logger } from '../../observability/logger.ts';
import type { DataPlane } from '../../proxy/data-plane.ts';
import { lookupRequests, sampleTelemetry } from '../../proxy/telemetry-sample.ts';
import type { AdminReply } from '../server.ts';
import type { DashboardBackend, DashboardGuard, LookupResult, WeightedRoute } from './api.ts';
import { type Overview, TelemetryStore } from './telemetry-store.ts';

const SELF = { id: 'gateway', kind: 'gateway' as const, service: 'gateway' };

export class GatewayDashboard implements DashboardBackend {
  readonly kind = 'gateway';
  readonly intervalMs: number;
  private readonly store: TelemetryStore;
  private readonly plane: Pick<DataPlane, 'query'>;
  private readonly timer: NodeJS.Timeout;

  constructor(plane: Pick<DataPlane, 'query'>, log: Pick<Logger, 'debug'>, intervalMs = DEFAULT_TELEMETRY_INTERVAL_MS) {
    this.plane = plane;
    this.intervalMs = intervalMs;
    this.store = new TelemetryStore({ intervalMs });
    const since = Date.now();
    const sample = () =>
      sampleTelemetry(plane, since).then(
        (report) => this.store.ingest(SELF, report),
        (e: Error) => log.debug({ err: e.message }, 'could not read the telemetry for the dashboard'),
      );
    void sample();
    this.timer = setInterval(() => void sample(), intervalMs);
    this.timer.unref();
  }

  overview(windowMs: number): Overview {
    return this.store.overview({ windowMs });
  }

  proxies() {
    return [];
  }

  changes() {
    return [];
  }

  async changeDiff() {
    return undefined;
  }

  routes(): WeightedRoute[] {
    return [];
  }

  async lookup(id: string): Promise<LookupResult> {
    const first = await lookupRequests(this.plane, [id]);
    const traces = [...new Set(first.map((r) => r.traceId).filter((t): t is string => t !== null && t !== id))];
    const records = traces.length > 0 ? await lookupRequests(this.plane, [id, ...traces].slice(0, 16)) : first;
    return {
      id,
      hops: records.map((r) => ({ proxy: SELF.id, kind: SELF.kind, proxyService: SELF.service, ...r })),
      asked: 1,
      answered: 1,
    };
  }

  close(): void {
    clearInterval(this.timer);
  }
}

/** 127.0.0.0/8, ::1 and localhost: addresses only this host can reach. */
export function isLoopbackAddress(address: string): boolean {
  return address === 'localhost' || address === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(address);
}

/**
 * Who may use a gateway's dashboard: anyone who can reach a loopback admin listener; on any other
 * address, only a caller with an operator token. Returns null when the dashboard may not be served at
 * all (a reachable address and no token configured): it is never open to the network.
 */
export function gatewayDashboardGuard(address: string, auth: Authenticator | null): DashboardGuard | null {
  if (isLoopbackAddress(address)) return () => undefined;
  if (auth === null || auth.open) return null;
  return (req: IncomingMessage): AdminReply | undefined => {
    const p = auth.authenticate(req);
    if (p?.kind === 'operator') return undefined;
    const detail = 'the dashboard on a non-loopback admin address needs Authorization: Bearer <operator token>';
    return {
      status: p === undefined ? 401 : 403,
      body: JSON.stringify({
        type: 'about:blank',
        title: 'Authentication required',
        status: p === undefined ? 401 : 403,
        code: p === undefined ? 'MG_UNAUTHORIZED' : 'MG_FORBIDDEN',
        detail,
      }),
      contentType: 'application/problem+json',
      ...(p === undefined ? { headers: { 'www-authenticate': 'Bearer realm="meshgate-admin"' } } : {}),
    };
  };
}
