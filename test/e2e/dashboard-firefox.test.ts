/**
 * The dashboard in Firefox: Debian's stock `firefox-esr`, headless, driven over WebDriver BiDi
 * (test/helpers/firefox.ts), against the running demo (`npm start -- --load`). Lighter than the
 * Chromium test (dashboard.test.ts), which also drives the canary change, the proxies page and the
 * request lookup: here, every demo service on the graph with traffic, a service page drawing its
 * charts, no script error or policy violation reported by the browser, and no request outside the
 * page's origin.
 *
 * Skipped only when /usr/bin/firefox-esr is missing (.ci/run installs it).
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type RunningDemo, startDemo, until } from '../helpers/demo.ts';
import { FIREFOX_BIN, Firefox, firefoxInstalled } from '../helpers/firefox.ts';
import { repoRoot } from '../helpers/process.ts';

const SERVICES = ['property-service', 'photo-service', 'valuation-service', 'search-service', 'enrichment-service'];
const CHARTS = ['requests', 'errors (5xx)', 'latency'];

/**
 * Page-side: the canvases under `selector`, each with its size and how many of its pixels are drawn
 * (not transparent), i.e. whether the library that owns it painted anything.
 */
const paintedCanvases = (selector: string) => `[...document.querySelectorAll(${JSON.stringify(selector)})].map((c) => {
  const pixels = c.width && c.height ? c.getContext('2d').getImageData(0, 0, c.width, c.height).data : [];
  let drawn = 0;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) drawn++;
  return { width: c.width, height: c.height, drawn };
})`;

interface Canvas {
  width: number;
  height: number;
  drawn: number;
}

describe('the dashboard in Firefox, on the demo under load', {
  skip: firefoxInstalled() ? false : `${FIREFOX_BIN} is missing (apt-get install firefox-esr)`,
}, () => {
  let demo: RunningDemo;
  let firefox: Firefox;
  let tab = '';
  let dashboard = '';
  const requests: string[] = [];
  const problems: string[] = [];

  before(async () => {
    // One after the other: a browser's start takes both cores for seconds, and the demo's own start
    // (every proxy in sync within its budget) failed when they overlapped on a busy machine.
    demo = await startDemo(['--load']);
    firefox = await Firefox.launch();
    dashboard = `${demo.controlPlane}/dashboard/`;
    tab = await firefox.firstTab();
    firefox.onEvent(({ method, params }) => {
      if (method === 'network.beforeRequestSent') requests.push((params.request as { url: string }).url);
      // Script errors, console.error and Content-Security-Policy violations all arrive as level "error".
      if (method === 'log.entryAdded' && (params.level === 'error' || /Content-Security-Policy/.test(`${params.text}`)))
        problems.push(`${params.type} ${params.level}: ${params.text}`);
    });
    await firefox.send('session.subscribe', {
      events: ['log.entryAdded', 'network.beforeRequestSent'],
      contexts: [tab],
    });
    await firefox.send('browsingContext.setViewport', { context: tab, viewport: { width: 1400, height: 900 } });
  });

  after(async () => {
    await firefox?.close();
    await demo?.stop();
  });

  it(`runs in ${FIREFOX_BIN}`, (t) => {
    assert.match(firefox.version, /^\d+\.\d+/);
    t.diagnostic(`Firefox ${firefox.version}`);
  });

  it('shows every demo service on the graph, each with traffic', async () => {
    await firefox.navigate(tab, dashboard);
    const rates = () =>
      firefox.evaluate<Record<string, number>>(
        tab,
        `Object.fromEntries([...document.querySelectorAll('#nodes tr[data-node]')]
          .map((r) => [r.getAttribute('data-node'), Number(r.getAttribute('data-rps'))]))`,
      );
    // Reports come every 5 s; a rate needs two of them from each proxy.
    await until(
      'every service with traffic',
      60_000,
      async () => {
        const nodes = await rates();
        return SERVICES.every((s) => nodes[`service:${s}`]! > 0);
      },
      async () => JSON.stringify(await rates()),
    );
    // The graph itself: cytoscape painted its canvases.
    const graph = () => firefox.evaluate<Canvas[]>(tab, paintedCanvases('#graph canvas'));
    await until(
      'the graph drawn',
      20_000,
      async () => (await graph()).some((c) => c.drawn > 0),
      async () => JSON.stringify(await graph()),
    );
    if (process.env.SCREENSHOTS_DIR) {
      const dir = resolve(repoRoot, process.env.SCREENSHOTS_DIR);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'dashboard-firefox-topology.png'), await firefox.screenshot(tab));
    }
  });

  it("opens a service's page from the graph's table and draws its charts", async () => {
    // A click on the link, as a user does: the page routes on its hash.
    await firefox.evaluate(tab, `document.querySelector('#nodes a[href="#/service/photo-service"]').click()`);
    const service = 'section.service[data-service="photo-service"]';
    const charts = () =>
      firefox.evaluate<{ title: string; canvases: Canvas[] }[]>(
        tab,
        `[...document.querySelectorAll('${service} figure.chart')].map((f) => ({
          title: f.querySelector('figcaption').firstChild.textContent,
          canvases: ${paintedCanvases('canvas').replace('document.querySelectorAll', 'f.querySelectorAll')},
        }))`,
      );
    await until(
      "photo-service's charts drawn",
      20_000,
      async () => {
        const shown = await charts();
        return (
          CHARTS.every((t) => shown.some((c) => c.title === t)) &&
          shown.every((c) => c.canvases.some((canvas) => canvas.width > 0 && canvas.drawn > 0))
        );
      },
      async () => JSON.stringify(await charts()),
    );
    assert.equal(await firefox.evaluate(tab, 'location.hash'), '#/service/photo-service');
    const facts = await firefox.evaluate<string>(tab, `document.querySelector('${service} dl.facts').textContent`);
    assert.match(facts, /circuit breaker/);
  });

  it('made no request outside its origin, and the browser reported no error or violation', () => {
    const origin = new URL(dashboard).origin;
    const outside = requests.filter((u) => !u.startsWith('data:') && new URL(u).origin !== origin);
    assert.deepEqual(outside, []);
    assert.ok(
      requests.some((u) => u.endsWith('/dashboard/app.js')),
      JSON.stringify(requests),
    );
    assert.ok(
      requests.some((u) => u.includes('/dashboard/api/')),
      JSON.stringify(requests),
    );
    assert.deepEqual(problems, []);
  });
});
