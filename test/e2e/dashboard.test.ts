/**
 * The dashboard in a real browser (headless Chromium driven by playwright-core) against the running
 * demo (`npm start -- --load`, as demo.test.ts starts it, on ports found free). Checked: the demo
 * prints the dashboard's URL; every demo service appears on the graph with a non-zero rate; changing
 * property-service's weights to 50/50 from the page (preview with a diff, then apply) makes a change
 * record every proxy it was pushed to applied, and within a minute the page shows v2's share above
 * 40%; a request id pasted in the lookup shows its hops across proxies; the page makes no request
 * outside its origin and the browser reports no policy violation or script error.
 *
 * Screenshots of the topology, a service page and the change log go to $SCREENSHOTS_DIR (default a
 * temporary directory); `SCREENSHOTS_DIR=docs/images` refreshes the ones docs/dashboard.md shows.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import type { ChangeRecord } from '../../src/api/mesh.ts';
import { type RunningDemo, startDemo, until } from '../helpers/demo.ts';
import { repoRoot } from '../helpers/process.ts';

const SERVICES = ['property-service', 'photo-service', 'valuation-service', 'search-service', 'enrichment-service'];
const SHOTS = resolve(repoRoot, process.env.SCREENSHOTS_DIR ?? mkdtempSync(join(tmpdir(), 'meshgate-dashboard-')));

const EDGES = [
  'gateway:gateway>service:property-service',
  'service:property-service>service:photo-service',
  'service:property-service>service:valuation-service',
  'gateway:gateway>service:search-service',
  'service:search-service>service:enrichment-service',
];

describe('the dashboard, in a browser, on the demo under load', () => {
  let demo: RunningDemo;
  /** The demo's output up to its ready banner (the dashboard's URL, the token). */
  let output = '';
  let browser: Browser;
  let page: Page;
  let dashboard = '';
  let gateway = '';
  let controlPlane = '';
  const requests: string[] = [];
  const problems: string[] = [];

  before(async () => {
    mkdirSync(SHOTS, { recursive: true });
    demo = await startDemo(['--load']);
    output = demo.output();
    gateway = demo.gateway;
    controlPlane = demo.controlPlane;
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.on('request', (r) => requests.push(r.url()));
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' || /Content.Security.Policy|Refused to/i.test(m.text()))
        problems.push(`console ${m.type()}: ${m.text()}`);
    });
  });

  after(async () => {
    await browser?.close();
    await demo?.stop();
  });

  it('npm start prints the dashboard URL', () => {
    const line = /^ {2}Dashboard +(\S+)$/m.exec(output);
    assert.ok(line, output);
    dashboard = line[1]!;
    assert.equal(dashboard, `${controlPlane}/dashboard/`);
  });

  it('shows every demo service on the graph, each with traffic', async () => {
    await page.goto(dashboard);
    // Reports come every 5 s; a rate needs two of them from each proxy. Polled from here through
    // locators: page-side predicates (waitForFunction) are evaluated as strings, which the page's
    // policy rightly refuses.
    const rates = (table: string, attribute: string) =>
      page
        .locator(`${table} tr[${attribute}]`)
        .evaluateAll(
          (rows, a) => Object.fromEntries(rows.map((r) => [r.getAttribute(a), Number(r.getAttribute('data-rps'))])),
          attribute,
        );
    await until(
      'every service and call with traffic',
      60_000,
      async () => {
        const nodes = await rates('#nodes', 'data-node');
        const edges = await rates('#edges', 'data-edge');
        return SERVICES.every((s) => nodes[`service:${s}`]! > 0) && EDGES.every((e) => edges[e]! > 0);
      },
      async () => JSON.stringify([await rates('#nodes', 'data-node'), await rates('#edges', 'data-edge')]),
    );
    // The graph itself: a canvas cytoscape drew.
    assert.ok(await page.locator('#graph canvas').count());
    assert.match((await page.locator('#edges').textContent()) ?? '', /mTLS/);
    await page.screenshot({ path: join(SHOTS, 'dashboard-topology.png') });
    // A click on a service opens its page.
    await page.locator('#nodes a[href="#/service/photo-service"]').click();
    const service = page.locator('section.service[data-service="photo-service"]');
    await service.waitFor({ timeout: 20_000 });
    // Beside the signals: the breaker, endpoints (healthy, ejected), retries and rate-limited counts.
    const facts = service.locator('dl.facts');
    await until(
      "photo-service's resilience facts",
      20_000,
      async () => /circuit breaker\s*closed/.test((await facts.textContent()) ?? ''),
      () => facts.textContent(),
    );
    const text = (await facts.textContent()) ?? '';
    assert.match(text, /endpoints\s*[1-9]\d* healthy, 0 ejected, 0 unhealthy/);
    assert.match(text, /retries.*rate-limited/s);
    assert.equal(await service.locator('.headline [data-stat="rate-limited"]').count(), 1);
  });

  it('lists every proxy with its role, sync state, config version and certificate expiry', async () => {
    const listed = (await (await fetch(`${dashboard}api/proxies`)).json()) as {
      proxies: { id: string; ackedVersion: string | null }[];
    };
    await page.goto(`${dashboard}#/proxies`);
    const rows = page.locator('#proxies tbody tr');
    await until(
      'every proxy listed and in sync',
      30_000,
      async () =>
        (await rows.count()) === listed.proxies.length &&
        (await page.locator('#proxies tbody tr[data-state="SYNCED"]').count()) === listed.proxies.length,
      () => page.locator('main').textContent(),
    );
    const cells = await rows.evaluateAll((trs) =>
      trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')),
    );
    assert.deepEqual(cells.map((c) => c[0]).sort(), listed.proxies.map((p) => p.id).sort());
    const acked = new Map(listed.proxies.map((p) => [p.id, p.ackedVersion]));
    for (const [id, role, , , version, , , expires] of cells) {
      assert.match(role!, /^(gateway|sidecar)$/, `${id}'s role`);
      assert.ok(acked.get(id!)?.startsWith(version!) && version!.length >= 6, `${id}'s config version: ${version}`);
      assert.match(expires!, /^in /, `${id}'s certificate expiry`);
    }
  });

  it("changes property-api's weights to 50/50 from the page: a recorded change every proxy applied, and v2's share moves above 40%", async () => {
    await page.goto(`${dashboard}#/canary`);
    const card = page.locator('article[data-route="property-api"]');
    await card.waitFor({ timeout: 20_000 });
    assert.equal(await card.locator('input[data-destination="v1"]').inputValue(), '90');
    await card.locator('button[data-preset="50/50"]').click();
    await card.locator('button[data-action="preview"]').click();
    await card.locator('.preview[data-valid="true"]').waitFor({ timeout: 20_000 });
    const diff = (await card.locator('pre.diff').textContent()) ?? '';
    assert.match(diff, /^-\s+weight: 90$/m);
    assert.match(diff, /^\+\s+weight: 50$/m);
    const appliedAt = performance.now();
    await card.locator('button[data-action="apply"]').click();
    const applied = card.locator('.applied[data-status="applied"]');
    await until(
      'the change applied',
      30_000,
      async () => (await applied.count()) === 1,
      () => card.textContent(),
    );
    const changeId = Number(await applied.getAttribute('data-change'));
    assert.ok(changeId > 0);

    // The record, as the control plane keeps it: pushed to whom it concerns, applied by each.
    const record = (await (await fetch(`${controlPlane}/changes/${changeId}`)).json()) as ChangeRecord;
    assert.equal(record.status, 'applied');
    assert.match(record.cause, /weights of route property-api set to 50\/50/);
    assert.ok(record.results.length > 0);
    assert.ok(record.results.every((r) => r.status === 'applied' && r.propagationMs !== null));
    assert.ok(record.results.some((r) => r.proxy === 'gateway'));
    const proxies = (await (await fetch(`${controlPlane}/proxies`)).json()) as { proxies: unknown[] };
    assert.equal(
      record.results.length + record.unaffected,
      proxies.proxies.length,
      'every proxy: applied or unaffected',
    );

    // Within a minute of the change, the page shows the shift (its window is the last 30 s).
    const v2 = card.locator('tr[data-version="v2"]');
    await until(
      'v2 above 40%',
      60_000,
      async () => Number(await v2.getAttribute('data-share', { timeout: 1000 })) > 0.4,
      () => card.textContent(),
    );
    assert.ok(performance.now() - appliedAt < 60_000);

    await page.goto(`${dashboard}#/service/property-service`);
    await page.locator('#versions tr[data-version="v2"]').waitFor({ timeout: 20_000 });
    await page.locator('figure.chart canvas').first().waitFor({ timeout: 20_000 });
    await page.screenshot({ path: join(SHOTS, 'dashboard-service.png'), fullPage: true });
    await page.goto(`${dashboard}#/changes/${changeId}`);
    await page.locator('pre.diff').waitFor({ timeout: 20_000 });
    await page.screenshot({ path: join(SHOTS, 'dashboard-changes.png'), fullPage: true });
  });

  it('finds a pasted request id and shows its hops across proxies', async () => {
    const token = /^Token .*:\n {2}(\S+)$/m.exec(output)![1]!;
    const requestId = `dashboard-e2e-${Date.now()}`;
    const res = await fetch(`${gateway}/api/v1/properties/7`, {
      headers: { authorization: `Bearer ${token}`, 'x-request-id': requestId },
    });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    await page.goto(`${dashboard}#/requests`);
    await page.locator('#request-id').fill(requestId);
    await page.locator('.requests button[type="submit"]').click();
    // The gateway, property's sidecar (in, and out to photos and valuations), photo's and valuation's.
    await until(
      'the hops',
      30_000,
      async () => (await page.locator('#hops tbody tr').count()) >= 4,
      () => page.locator('main').textContent(),
    );
    const hops = await page
      .locator('#hops tbody tr')
      .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-hop')));
    assert.equal(hops[0], 'gateway', JSON.stringify(hops));
    assert.ok(hops.some((h) => h?.startsWith('property-')));
    assert.ok(hops.includes('photo') && hops.includes('valuation'), JSON.stringify(hops));
    // The same request's trace from the demo's trace receiver (the control plane's --trace-query):
    // each process exports its spans within a second or so, so the lookup is asked again until the
    // gateway's (the demo's default service name) and every service's are there.
    const wanted = ['meshgate', 'property-service', 'photo-service', 'valuation-service'];
    const spanServices = () =>
      page.locator('#spans tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-span')));
    let asked = 0;
    await until(
      'the trace spans of the gateway and every service',
      30_000,
      async () => {
        const spans = await spanServices();
        if (wanted.every((w) => spans.includes(w))) return true;
        if (++asked % 4 === 0) await page.locator('.requests button[type="submit"]').click();
        return false;
      },
      () => page.locator('main').textContent(),
    );
    assert.equal((await spanServices())[0], 'meshgate', 'the root span is the gateway’s');
    await page.screenshot({ path: join(SHOTS, 'dashboard-requests.png'), fullPage: true });
  });

  it('made no request outside its origin, and the browser reported no violation or error', () => {
    const origin = new URL(dashboard).origin;
    const outside = requests.filter((u) => !u.startsWith('data:') && new URL(u).origin !== origin);
    assert.deepEqual(outside, []);
    assert.ok(requests.some((u) => u.endsWith('/dashboard/app.js')));
    assert.deepEqual(problems, []);
  });
});
