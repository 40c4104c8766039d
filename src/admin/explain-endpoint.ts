/**
 * `GET /requests/:id/explain` on a proxy's admin API: the decision trails this proxy (every worker)
 * recorded of one request, found by request id or trace id (docs/explain.md). The trails are worked
 * out into words only now, in the process that recorded them.
 */
import type { ExplainResult } from '../api/explain.ts';
import type { DataPlane } from '../proxy/data-plane.ts';
import { explainRequests } from '../proxy/telemetry-sample.ts';
import type { DashboardGuard } from './dashboard/api.ts';
import type { AdminServer } from './server.ts';

/** The proxy as its hops are labelled: a mesh proxy's identity, or `gateway` for one run on its own. */
export interface ExplainSelf {
  id: string;
  kind: string;
  service: string | null;
}

const MAX_ID_LENGTH = 256;

export function addExplainEndpoint(
  admin: AdminServer,
  plane: Pick<DataPlane, 'query'>,
  self: ExplainSelf,
  guard: DashboardGuard | null = null,
): void {
  admin.route('GET /requests/:id/explain', async (req, _url, params) => {
    const refused = guard?.(req);
    if (refused !== undefined) return refused;
    const id = params.id!;
    if (id.length === 0 || id.length > MAX_ID_LENGTH)
      return { status: 400, body: { error: `a request id has 1 to ${MAX_ID_LENGTH} characters` } };
    const trails = await explainRequests(plane, [id]);
    const body: ExplainResult = {
      id,
      hops: trails.map((trail) => ({ proxy: self.id, kind: self.kind, proxyService: self.service, trail })),
      asked: 1,
      answered: 1,
    };
    return trails.length === 0
      ? {
          status: 404,
          body: { ...body, error: `no decision trail of request ${id} here (not sampled, asked for, or kept)` },
        }
      : { status: 200, body };
  });
}
