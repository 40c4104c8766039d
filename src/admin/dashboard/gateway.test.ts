/**
 * A gateway on its own serves the dashboard on its admin listener: its own traffic as the topology
 * (clients → gateway → services) with golden signals per route, and its request lookup. On a
 * loopback address anyone local may look; elsewhere only with an operator token, and without one
 * configured it is not served at all.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { after, describe, it } from 'node:test';
import { request } from 'undici';
import { eventually } from '../../../test/helpers/mesh.ts';
import { simpleConfig, startGateway, startUpstream } from '../../../test/helpers/servers.ts';
import { Authenticator } from '../../control-plane/auth/tokens.ts';
import { silentLogger } from '../../observability/logger.ts';
import { InProcessDataPlane } from '../../proxy/data-plane.ts';
import type { LookupResult } from './api.ts';
import { addDashboard } from './api.ts';
import { GatewayDashboard, gatewayDashboardGuard } from './gateway.ts';
import type { Overview } from './telemetry-store.ts';

describe('the dashboard of a gateway on its own', () => {
  const closers: (() => Promise<void> | void)[] = [];
  after(async () => {
    for (const close of closers.reverse()) await close();
  });

  it('shows its routes and services from its own metrics, and finds a request by id', async () => {
    const upstream = await startUpstream();
    closers.push(upstream.close);
    const gw = await startGateway(simpleConfig(upstream.url));
    closers.push(gw.close);
    const dashboard = new GatewayDashboard(new InProcessDataPlane(gw.proxy), silentLogger(), 100);
    closers.push(() => dashboard.close());
    addDashboard(gw.admin, dashboard, gatewayDashboardGuard('127.0.0.1', null)!);
    const api = `${gw.adminUrl}/dashboard/api`;
    const overview = await eventually(
      async () => {
        const res = await request(`${gw.url()}/items/1`, { headers: { 'x-request-id': 'alone-1' } });
        await res.body.dump();
        const o = (await (await request(`${api}/overview?window=1000`)).body.json()) as Overview;
        return o.edges.find((e) => e.id === 'gateway:gateway>service:svc' && e.stat.rps > 0) ? o : undefined;
      },
      10_000,
      'the gateway → svc edge with traffic',
    );
    assert.deepEqual(
      overview.nodes.map((n) => n.id),
      ['clients', 'gateway:gateway', 'service:svc'],
    );
    assert.deepEqual(
      overview.routes.map((r) => [r.name, r.services]),
      [['all', ['svc']]],
    );
    const info = (await (await request(`${api}/info`)).body.json()) as { kind: string; canWeights: boolean };
    assert.deepEqual([info.kind, info.canWeights], ['gateway', false]);
    const found = (await (await request(`${api}/requests/alone-1`)).body.json()) as LookupResult;
    assert.ok(found.hops.length >= 1);
    assert.deepEqual([found.hops[0]!.proxy, found.hops[0]!.route, found.hops[0]!.status], ['gateway', 'all', 200]);
  });

  it('is open on loopback, needs an operator token elsewhere, and is not served without one', () => {
    assert.equal(gatewayDashboardGuard('127.0.0.1', null)!({ headers: {} } as IncomingMessage), undefined);
    assert.equal(gatewayDashboardGuard('0.0.0.0', null), null);
    const token = 'an-operator-token-of-32-characters-or-more';
    const guard = gatewayDashboardGuard('0.0.0.0', new Authenticator({ operator: [token] }))!;
    assert.equal(guard({ headers: {} } as IncomingMessage)?.status, 401);
    assert.equal(
      guard({ headers: { authorization: 'Bearer wrong-token-wrong-token-wrong-token' } } as IncomingMessage)?.status,
      401,
    );
    assert.equal(guard({ headers: { authorization: `Bearer ${token}` } } as IncomingMessage), undefined);
  });
});
