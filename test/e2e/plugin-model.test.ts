/**
 * The plugin model end to end: scopes and precedence, disabling, order overrides, consumer chains,
 * user plugins loaded by path, asynchronous and failing filters.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { loadConfigFile } from '../../src/config/load.ts';
import { definePlugin, type Filter } from '../../src/core/plugin.ts';
import { builtinPlugins, createPluginCatalog } from '../../src/plugins/index.ts';
import { PluginRegistry } from '../../src/plugins/registry.ts';
import { startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/servers.ts';

/** A test plugin that appends its tag to `x-trail` on the request, to see order and scope. */
const tag = definePlugin<{ tag: string }>({
  name: 'tag',
  phase: 'transform',
  order: 100,
  description: 'test: appends to x-trail',
  configSchema: {
    type: 'object',
    required: ['tag'],
    properties: { tag: { type: 'string' } },
    additionalProperties: false,
  },
  compile(config) {
    const filter: Filter = {
      onRequestHeaders(ctx) {
        const trail = ctx.header('x-trail');
        ctx.setHeader('x-trail', trail ? `${trail},${config.tag}` : config.tag);
        return undefined;
      },
    };
    return () => filter;
  },
});
const second = definePlugin<{ tag: string }>({ ...tag, name: 'second', order: 200 });
const slow = definePlugin<{ ms: number; fail?: boolean; throws?: boolean }>({
  name: 'slow',
  phase: 'request',
  order: 500,
  description: 'test: waits, fails or throws',
  configSchema: { type: 'object' },
  compile(config) {
    const filter: Filter = {
      onRequestHeaders() {
        if (config.throws) throw new Error('boom');
        return sleep(config.ms).then(() => {
          if (config.fail) throw new Error('async boom');
          return undefined;
        });
      },
    };
    return () => filter;
  },
});

const KEYS = { gold: 'gold-key-0123456789abcdef', free: 'free-key-0123456789abcdef' };

describe('plugin model', () => {
  let upstream: Upstream;
  let gw: TestGateway;
  before(async () => {
    upstream = await startUpstream();
    const catalog = new PluginRegistry([...builtinPlugins, tag, second, slow] as never);
    gw = await startGateway(
      {
        services: [
          { name: 'svc', endpoints: [{ url: upstream.url }] },
          {
            name: 'tagged',
            endpoints: [{ url: upstream.url }],
            plugins: [{ name: 'tag', config: { tag: 'service' } }],
          },
        ],
        consumers: [
          {
            name: 'gold',
            credentials: [{ type: 'api-key', key: KEYS.gold }],
            plugins: [
              { name: 'rate-limit', config: { minute: 5 } },
              { name: 'second', config: { tag: 'gold' } },
            ],
          },
          { name: 'free', credentials: [{ type: 'api-key', key: KEYS.free }] },
        ],
        plugins: [{ name: 'tag', config: { tag: 'global' } }],
        routes: [
          { name: 'inherits', match: { path: '/inherits' }, service: 'svc' },
          { name: 'service-wins', match: { path: '/service' }, service: 'tagged' },
          {
            name: 'route-wins',
            match: { path: '/route' },
            service: 'tagged',
            plugins: [{ name: 'tag', config: { tag: 'route' } }],
          },
          {
            name: 'disabled',
            match: { path: '/disabled' },
            service: 'svc',
            plugins: [{ name: 'tag', enabled: false }],
          },
          {
            name: 'reordered',
            match: { path: '/order' },
            service: 'svc',
            plugins: [
              { name: 'second', config: { tag: 'second' }, order: 0 },
              { name: 'tag', config: { tag: 'first-by-default' } },
            ],
          },
          {
            name: 'consumer',
            match: { path: '/consumer' },
            service: 'svc',
            plugins: [{ name: 'key-auth' }, { name: 'rate-limit', config: { minute: 2 } }],
          },
          { name: 'async', match: { path: '/async' }, service: 'svc', plugins: [{ name: 'slow', config: { ms: 50 } }] },
          {
            name: 'async-fail',
            match: { path: '/async-fail' },
            service: 'svc',
            plugins: [{ name: 'slow', config: { ms: 5, fail: true } }],
          },
          {
            name: 'throws',
            match: { path: '/throws' },
            service: 'svc',
            plugins: [{ name: 'slow', config: { ms: 0, throws: true } }],
          },
          { name: 'slow', match: { path: '/slow' }, service: 'svc', plugins: [{ name: 'slow', config: { ms: 300 } }] },
        ],
      },
      { catalog },
    );
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  async function trail(path: string, headers: Record<string, string> = {}) {
    const res = await request(`${gw.url()}${path}`, { headers });
    const body = (await res.body.json()) as { headers: Record<string, string> };
    return { status: res.statusCode, trail: body.headers?.['x-trail'], headers: res.headers };
  }

  it('a global plugin applies to every route', async () => {
    assert.equal((await trail('/inherits')).trail, 'global');
  });

  it('a service entry replaces the global one; a route entry replaces both', async () => {
    assert.equal((await trail('/service')).trail, 'service');
    assert.equal((await trail('/route')).trail, 'route');
  });

  it('enabled: false removes an inherited plugin', async () => {
    assert.equal((await trail('/disabled')).trail, undefined);
  });

  it('a route can override order; /routes shows the chain as it runs', async () => {
    assert.equal((await trail('/order')).trail, 'second,first-by-default');
    const routes = (await (await request(`${gw.adminUrl}/routes`)).body.json()) as {
      routes: { name: string; plugins: { name: string; order: number; scope: string }[] }[];
    };
    const chain = routes.routes.find((r) => r.name === 'reordered')!.plugins;
    assert.deepEqual(
      chain.map((p) => [p.name, p.order, p.scope]),
      [
        ['second', 5000, 'route'],
        ['tag', 5100, 'route'],
      ],
    );
  });

  it("a consumer's own plugins replace the route's after authentication", async () => {
    const free: number[] = [];
    const gold: number[] = [];
    for (let i = 0; i < 6; i++) {
      free.push((await trail('/consumer', { apikey: KEYS.free })).status);
      gold.push((await trail('/consumer', { apikey: KEYS.gold })).status);
    }
    assert.deepEqual(free, [200, 200, 429, 429, 429, 429], 'the route allows 2 a minute');
    assert.deepEqual(gold, [200, 200, 200, 200, 200, 429], 'gold has 5 a minute');
    const r = await trail('/inherits', { apikey: KEYS.gold });
    assert.equal(r.trail, 'global', 'consumer plugins apply only after authentication on that route');
    const g = await request(`${gw.url()}/consumer`, { headers: { apikey: KEYS.gold } });
    assert.equal(g.headers['ratelimit-limit'], '5');
    await g.body.dump();
  });

  it('an asynchronous filter holds the request until it settles', async () => {
    const started = performance.now();
    const r = await trail('/async');
    assert.equal(r.status, 200);
    assert.ok(performance.now() - started >= 45);
  });

  it('a filter that throws or rejects answers 500 MG_INTERNAL without reaching the upstream', async () => {
    const before = upstream.seen.length;
    for (const path of ['/async-fail', '/throws']) {
      const res = await request(`${gw.url()}${path}`);
      const body = (await res.body.json()) as { code: string; detail: string };
      assert.equal(res.statusCode, 500);
      assert.equal(body.code, 'MG_INTERNAL');
      assert.match(body.detail, /plugin slow/);
    }
    assert.equal(upstream.seen.length, before);
  });

  it('a client that leaves during a slow filter never reaches the upstream', async () => {
    const before = upstream.seen.length;
    const controller = new AbortController();
    const pending = request(`${gw.url()}/slow`, { signal: controller.signal }).catch(() => null);
    await sleep(50);
    controller.abort();
    await pending;
    // A marker through the same slow filter, started after the abort: it reaches the upstream after
    // the abandoned request would have, had the proxy forwarded it once its filter finished.
    const marker = await request(`${gw.url()}/slow?marker`);
    assert.equal(marker.statusCode, 200);
    await marker.body.dump();
    assert.deepEqual(
      upstream.seen.slice(before).map((s) => s.url),
      ['/slow?marker'],
      'only the marker reached the upstream',
    );
  });
});

describe('user plugins loaded by path', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'meshgate-plugin-'));
    writeFileSync(
      join(dir, 'add-header.js'),
      `import { definePlugin } from ${JSON.stringify(new URL('../../src/core/plugin.ts', import.meta.url).pathname)};
export default definePlugin({
  name: 'add-header',
  phase: 'transform',
  order: 10,
  description: 'adds a response header',
  configSchema: { type: 'object', required: ['name', 'value'], additionalProperties: false,
    properties: { name: { type: 'string' }, value: { type: 'string' } } },
  compile(config) {
    const filter = { onResponseHeaders(_ctx, response) { response.setHeader(config.name, config.value); } };
    return () => filter;
  },
});
`,
    );
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('runs a module named by path, relative to the config file', async () => {
    const upstream = await startUpstream();
    writeFileSync(
      join(dir, 'gateway.yaml'),
      `listeners: [{ name: main, port: 0, address: 127.0.0.1 }]
services: [{ name: svc, endpoints: [{ url: ${upstream.url} }] }]
routes:
  - name: r
    service: svc
    plugins: [{ path: ./add-header.js, config: { name: x-powered-by, value: meshgate } }]
`,
    );
    const loaded = await loadConfigFile(join(dir, 'gateway.yaml'), process.env, { catalog: createPluginCatalog() });
    assert.ok(loaded.ok, loaded.ok ? '' : JSON.stringify(loaded.issues));
    const gw = await startGateway(loaded.value.config as unknown as Record<string, unknown>);
    try {
      const res = await request(`${gw.url()}/`);
      await res.body.dump();
      assert.equal(res.headers['x-powered-by'], 'meshgate');
    } finally {
      await gw.close();
      await upstream.close();
    }
  });

  it("checks the module's config against its schema, with the position in the file", async () => {
    writeFileSync(
      join(dir, 'bad.yaml'),
      'routes:\n  - name: r\n    directResponse: { status: 200 }\n    plugins:\n      - path: ./add-header.js\n        config: { name: x, valeu: y }\n',
    );
    const loaded = await loadConfigFile(join(dir, 'bad.yaml'), process.env, { catalog: createPluginCatalog() });
    assert.equal(loaded.ok, false);
    const issues = loaded.ok ? [] : loaded.issues.map((i) => `${i.line}:${i.column} ${i.path}: ${i.message}`);
    assert.ok(issues.includes('6:28 routes[0].plugins[0].config.valeu: unknown field "valeu"'), issues.join('\n'));
    assert.ok(
      issues.some((i) => i.startsWith('6:17 routes[0].plugins[0].config: missing required field "value"')),
      issues.join('\n'),
    );
  });

  it('an unknown plugin name and a missing module are located errors', async () => {
    writeFileSync(
      join(dir, 'unknown.yaml'),
      'routes:\n  - name: r\n    directResponse: { status: 200 }\n    plugins:\n      - name: rate-limt\n      - path: ./nope.js\n',
    );
    const loaded = await loadConfigFile(join(dir, 'unknown.yaml'), process.env, { catalog: createPluginCatalog() });
    const issues = loaded.ok
      ? []
      : loaded.issues.map((i) => `${i.line}:${i.column} ${i.message}${i.hint ? ` (${i.hint})` : ''}`);
    assert.equal(issues[0], '5:15 unknown plugin "rate-limt" (did you mean "rate-limit"?)');
    assert.match(issues[1]!, /^6:15 cannot load a plugin from .*nope\.js/);
  });

  it('a module named like a built-in plugin is refused: it cannot stand in for jwt', async () => {
    writeFileSync(
      join(dir, 'fake-jwt.js'),
      `export default { name: 'jwt', phase: 'authenticate', order: 1, description: 'lets everyone in',
  configSchema: { type: 'object' }, compile() { return () => ({}); } };
`,
    );
    writeFileSync(
      join(dir, 'shadow.yaml'),
      'routes:\n  - name: r\n    directResponse: { status: 200 }\n    plugins:\n      - path: ./fake-jwt.js\n',
    );
    const catalog = createPluginCatalog();
    const loaded = await loadConfigFile(join(dir, 'shadow.yaml'), process.env, { catalog });
    assert.equal(loaded.ok, false);
    assert.match(loaded.ok ? '' : loaded.issues[0]!.message, /named "jwt", as a built-in one/);
    assert.notEqual(catalog.get('jwt')?.description, 'lets everyone in', 'the built-in jwt is still the one in use');
  });
});

describe('plugin state shared across configs', () => {
  /** Counts requests in state shared across snapshots, keyed by its config; records when it is closed. */
  const closed: string[] = [];
  const counter = definePlugin<{ name: string }>({
    name: 'counter',
    phase: 'transform',
    order: 100,
    description: 'test: counts in shared state',
    configSchema: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } },
    compile(config, deps) {
      const state = deps.shared(`counter:${config.name}`, () => ({
        count: 0,
        close: () => closed.push(config.name),
      }));
      const filter: Filter = {
        onRequestHeaders(ctx) {
          ctx.setHeader('x-count', String(++state.count));
          return undefined;
        },
      };
      return () => filter;
    },
  });
  const configWith = (name: string) => ({
    services: [{ name: 'svc', endpoints: [{ url: upstream.url }] }],
    routes: [{ name: 'r', service: 'svc', plugins: [{ name: 'counter', config: { name } }] }],
  });
  let upstream: Upstream;

  it('keeps state while a config asks for it, and closes it once the config in force no longer does', async () => {
    upstream = await startUpstream();
    const gw = await startGateway(configWith('a'), {
      catalog: new PluginRegistry([...builtinPlugins, counter] as never),
    });
    const count = async () => {
      const res = await request(`${gw.url()}/x`);
      return (JSON.parse(await res.body.text()) as { headers: Record<string, string> }).headers['x-count'];
    };
    try {
      assert.equal(await count(), '1');
      await gw.apply(configWith('a'));
      assert.equal(await count(), '2', 'survives a reload that still uses it');
      assert.deepEqual(closed, []);
      await gw.apply(configWith('b'));
      assert.deepEqual(closed, ['a'], 'closed once no config in force asks for it');
      assert.equal(await count(), '1');
      await gw.apply(configWith('a'));
      assert.equal(await count(), '1', 'asked for again: starts afresh');
    } finally {
      await gw.close();
      await upstream.close();
    }
    assert.deepEqual(closed, ['a', 'b', 'a'], 'the rest closes with the proxy');
  });
});
