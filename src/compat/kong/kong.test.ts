/**
 * The Kong converter: a file of every supported entity and plugin against its golden file; Kong's route
 * order, `~` regex paths, strip_path, preserve_host and defaults through the real router and rewrite
 * (a golden table of requests); the upstream path against a model of Kong's path handling over a grid
 * of paths; detection by shape beside meshgate's own config; the located report of what is not
 * supported.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { Config, RouteConfig } from '../../api/config.ts';
import type { ConfigIssue } from '../../api/issues.ts';
import { formatIssue } from '../../config/issues.ts';
import { type ConfigText, parseTexts, validateParsed } from '../../config/load.ts';
import { createPluginCatalog } from '../../plugins/index.ts';
import { compileRewrite, normalisePath, upstreamPath } from '../../proxy/path.ts';
import { type MatchInput, Router } from '../../proxy/router/router.ts';
import { type CompatOptions, convertTexts, FOREIGN_FORMATS } from '../index.ts';
import { isKongShaped } from './kong.ts';
import { upstreamPathRewrite } from './routes.ts';

const catalog = createPluginCatalog();
const fixture = (name: string) => new URL(`../../../test/fixtures/kong/${name}`, import.meta.url);
const golden = (name: string) => new URL(`../../../test/golden/${name}.golden.json`, import.meta.url);

function convert(texts: ConfigText[], options: CompatOptions = {}) {
  const parsed = parseTexts(texts, texts[0]!.file, {});
  const result = convertTexts(parsed, FOREIGN_FORMATS, options);
  return { ...result, checked: validateParsed(result.parsed, { catalog }) };
}

function load(texts: ConfigText[], options: CompatOptions = {}): Config {
  const { checked } = convert(texts, options);
  if (!checked.ok) throw new Error(checked.issues.map(formatIssue).join('\n'));
  return checked.value.config;
}

const doc = (lines: string[]) => `${lines.join('\n')}\n`;
const loadFixture = (name: string) =>
  load([{ file: `test/fixtures/kong/${name}`, text: readFileSync(fixture(name), 'utf8') }]);

function matchGolden(name: string, value: unknown): void {
  const text = `${JSON.stringify(value, null, 2)}\n`;
  if (process.env.UPDATE_GOLDEN) writeFileSync(golden(name), text);
  assert.equal(text, readFileSync(golden(name), 'utf8'));
}

describe('Kong conversion: golden files', () => {
  it('converts services, upstreams, routes, consumers, credentials and every plugin as test/golden/kong-shop.golden.json', () => {
    matchGolden('kong-shop', loadFixture('shop.yaml'));
  });

  it('routes requests in Kong’s order, with its regex paths, strip_path, preserve_host and defaults, as test/golden/kong-routing.golden.json', () => {
    const config = loadFixture('routing.yaml');
    const routes = config.routes!;
    const router = new Router(routes.map((r, order) => ({ match: r.match, order, priority: r.priority, value: r })));
    const requests: [method: string, host: string, target: string, headers?: Record<string, string>][] = [
      ['GET', 'any.test', '/api/items'],
      ['POST', 'any.test', '/api/items'],
      ['POST', 'any.test', '/api/items/42'],
      ['POST', 'any.test', '/api/items/special/x'],
      ['POST', 'any.test', '/api/itemsX'],
      ['GET', 'any.test', '/keep/a?x=1'],
      ['GET', 'any.test', '/keep'],
      ['POST', 'any.test', '/m/short/x'],
      ['POST', 'any.test', '/m/long-prefix/x'],
      ['POST', 'any.test', '/m/re/7/y'],
      ['GET', 'shop.example.com', '/api/cart'],
      ['GET', 'a.example.com', '/api/cart', { 'x-beta': 'v2' }],
      ['GET', 'a.example.com', '/api/cart', { 'x-beta': 'YES' }],
      ['GET', 'a.example.com', '/api/cart'],
      ['GET', 'any.test', '/other'],
      ['GET', 'any.test', '/s'],
      ['GET', 'any.test', '/s/'],
      ['GET', 'any.test', '/s/x'],
      ['GET', 'any.test', '/k/x'],
    ];
    const table = requests.map(([method, host, target, headers = {}]) => {
      const [path, query = ''] = target.split('?') as [string, string?];
      const input: MatchInput = { method, host, path, query, header: (n) => (n === 'host' ? host : headers[n]) };
      const route = router.match(input);
      const request = `${method} ${host}${target}${Object.entries(headers)
        .map(([k, v]) => ` ${k}: ${v}`)
        .join('')}`;
      if (route === null) return { request, route: null };
      return { request, route: route.name, upstream: forwarded(config, route, path, query, host) };
    });
    matchGolden('kong-routing', table);
  });
});

/** What the upstream gets: path (the route's rewrite, as the proxy applies it) and Host. */
function forwarded(config: Config, route: RouteConfig, path: string, query: string, clientHost: string): string {
  const rw = route.rewrite ? compileRewrite(route, route.rewrite) : null;
  const target = upstreamPath(rw, { path, rawPath: path, query, listener: { encodedSlashes: 'keep' } });
  const service = config.services!.find((s) => s.name === route.service)!;
  const host = route.rewrite?.host ?? (route.rewrite?.autoHost ? new URL(service.endpoints![0]!.url).host : clientHost);
  return `${target} (Host: ${host})`;
}

describe('Kong conversion: the upstream path', () => {
  /** A model of Kong's path handling (its router's upstream URI), written from its documented behaviour. */
  const sanitize = (p: string) =>
    p === '.' || p === '..' ? '' : p.startsWith('./') ? p.slice(2) : p.startsWith('../') ? p.slice(3) : p;
  function kongV0(s: string, p: string, r: string, strip: boolean): string {
    const rest = sanitize(r.slice(p.length));
    if (s.endsWith('/')) {
      if (!strip) return s + r.slice(1);
      if (rest === '') return s === '/' ? '/' : r.endsWith('/') ? s : s.slice(0, -1);
      return rest.startsWith('/') ? s.slice(0, -1) + rest : s + rest;
    }
    if (!strip) return r === '/' ? s : s + r;
    if (rest === '') return r.length > 1 && r.endsWith('/') ? `${s}/` : s;
    return rest.startsWith('/') ? s + rest : `${s}/${rest}`;
  }
  function kongV1(s: string, p: string, r: string, strip: boolean): string {
    if (!strip) return s + r.slice(1);
    const rest = sanitize(r.slice(p.length));
    return s.endsWith('/') && rest.startsWith('/') ? s.slice(0, -1) + rest : s + rest;
  }
  const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const services = ['/', '/s', '/s/', '/a/b', '/$1'];
  const prefixes = ['/', '/api', '/api/'];
  const rests = ['', '/', '/x', 'x', '/x/', 'x/y', './x', '../', '.', '..', './', '...'];

  for (const [handling, model] of [
    ['v0', kongV0],
    ['v1', kongV1],
  ] as const)
    it(`matches Kong’s ${handling} for every service path, prefix, request path and strip_path`, () => {
      let checked = 0;
      for (const s of services)
        for (const p of prefixes)
          for (const rest of rests)
            for (const strip of [true, false]) {
              const r = p + rest;
              if (normalisePath(r, 'keep') !== r) continue; // the rewrite sees normalised paths only
              const rw = upstreamPathRewrite(s, `(?:${escapeRegex(p)})`, strip, handling);
              const got = rw ? r.replace(new RegExp(rw.pattern), rw.substitution) : r;
              assert.equal(got, model(s, p, r, strip), `service ${s}, prefix ${p}, request ${r}, strip_path ${strip}`);
              checked++;
            }
      assert.ok(checked > 150, `${checked} cases`);
    });

  it('strips what a regex path matched, its named groups aside', () => {
    const rw = upstreamPathRewrite('/v2', '(?:/items/(?<id>\\d+))', true, 'v0')!;
    assert.equal('/items/42/reviews'.replace(new RegExp(rw.pattern), rw.substitution), '/v2/reviews');
    assert.equal('/items/42'.replace(new RegExp(rw.pattern), rw.substitution), '/v2');
  });
});

describe('Kong conversion: versions and defaults', () => {
  for (const version of ['1.1', '2.1'])
    it(`reads a ${version} file’s paths with regex characters as regexes, and honours its path_handling v1`, () => {
      const [route] = load([
        {
          file: 'kong.yaml',
          text: doc([
            `_format_version: "${version}"`,
            'services:',
            '- name: a',
            '  url: http://a.internal/base',
            '  routes:',
            '  - name: r',
            '    paths: ["/items/\\\\d+"]',
            '    path_handling: v1',
          ]),
        },
      ]).routes!;
      assert.equal(route!.match!.pathRegex, '(?:/items/\\d+).*');
      const rw = compileRewrite(route!, route!.rewrite!);
      assert.equal(
        upstreamPath(rw, { path: '/items/7x', rawPath: '/items/7x', query: '', listener: { encodedSlashes: 'keep' } }),
        '/basex',
      );
    });

  it('reads a path with regex characters as a plain prefix in a file of no version, as Kong 3 does', () => {
    const [route] = load([
      {
        file: 'kong.yaml',
        text: doc([
          'services:',
          '- { name: a, url: "http://a.internal", routes: [{ name: r, paths: ["/items/\\\\d+"] }] }',
        ]),
      },
    ]).routes!;
    assert.equal(route!.match!.pathRegex, '(?:/items/\\\\d\\+).*');
    const router = new Router([{ match: route!.match, order: 0, priority: route!.priority, value: 'hit' }]);
    const input = (path: string): MatchInput => ({
      method: 'GET',
      host: 'a',
      path,
      query: '',
      header: () => undefined,
    });
    assert.equal(router.match(input('/items/\\d+/x')), 'hit');
    assert.equal(router.match(input('/items/7')), null);
  });

  it('refuses a _format_version Kong never wrote', () => {
    const { checked } = convert([{ file: 'kong.yaml', text: doc(['_format_version: "4.0"', 'services: []']) }]);
    assert.equal(checked.ok, false);
    const issue = (checked.ok ? [] : checked.issues)[0]!;
    assert.deepEqual([issue.line, issue.column, issue.code], [1, 1, 'unsupported']);
    assert.match(issue.message, /_format_version "4\.0" is not supported/);
  });

  it('ignores path_handling v1 in a 3.0 file, as Kong 3’s router does', () => {
    const [route] = load([
      {
        file: 'kong.yaml',
        text: doc([
          '_format_version: "3.0"',
          'services:',
          '- { name: a, url: "http://a.internal/base", routes: [{ name: r, paths: [/items], path_handling: v1 }] }',
        ]),
      },
    ]).routes!;
    const rw = compileRewrite(route!, route!.rewrite!);
    assert.equal(
      upstreamPath(rw, { path: '/itemsx', rawPath: '/itemsx', query: '', listener: { encodedSlashes: 'keep' } }),
      '/base/x',
    );
  });

  it('writes Kong’s service defaults: 5 retries on connection failures and timeouts, 60 s timeouts, port 80', () => {
    const [service] = load([
      { file: 'kong.yaml', text: doc(['services:', '- name: a', '  host: a.internal', '  protocol: https']) },
    ]).services!;
    assert.deepEqual(
      service!.endpoints,
      [{ url: 'https://a.internal:80' }],
      'Kong’s port default is 80 whatever the protocol',
    );
    assert.deepEqual(service!.timeouts, { connect: '60s', request: '0s', idle: '60s' });
    assert.deepEqual(service!.retries, {
      attempts: 5,
      on: ['connect-failure', 'reset'],
      perTryTimeout: '60s',
      backoff: { base: '0s', max: '0s' },
    });
  });

  it('listens where Kong’s proxy does (0.0.0.0:8000), or where --listen says', () => {
    const text = doc(['services:', '- { name: a, url: "http://a.internal", routes: [{ paths: [/] }] }']);
    assert.deepEqual(load([{ file: 'kong.yaml', text }]).listeners, [
      { name: 'kong-proxy', port: 8000, address: '0.0.0.0', origin: 'kong: default listener (no file names one)' },
    ]);
    assert.deepEqual(
      load([{ file: 'kong.yaml', text }], { listen: { address: '127.0.0.1', port: 18000 } }).listeners!.map((l) => [
        l.address,
        l.port,
      ]),
      [['127.0.0.1', 18000]],
    );
  });
});

describe('Kong conversion: plugin defaults', () => {
  const pluginsOf = (plugins: string[]) =>
    load([
      {
        file: 'kong.yaml',
        text: doc(['services:', '- name: a', '  url: http://a.internal', '  plugins:', ...plugins]),
      },
    ]).services![0]!.plugins!;

  it('jwt: the token from the jwt query parameter, then Authorization; exp checked only when asked; no leeway', () => {
    assert.deepEqual(pluginsOf(['  - { name: jwt, config: { secret_is_base64: false } }']), [
      {
        name: 'jwt',
        config: {
          tokenFrom: [{ query: 'jwt' }, { header: 'authorization' }],
          requireExpiration: false,
          clockSkew: '0s',
        },
      },
    ]);
    const [asked] = pluginsOf(['  - { name: jwt, config: { claims_to_verify: [exp], cookie_names: [session] } }']);
    assert.deepEqual(asked!.config, {
      tokenFrom: [{ query: 'jwt' }, { cookie: 'session' }, { header: 'authorization' }],
      requireExpiration: true,
      clockSkew: '0s',
    });
  });

  it('rate-limiting: every window from second to year, counted in calendar windows', () => {
    const [limit] = pluginsOf([
      '  - name: rate-limiting',
      '    config: { second: 1, minute: 2, hour: 3, day: 4, month: 5, year: 6 }',
    ]);
    assert.deepEqual(limit, {
      name: 'rate-limit',
      config: {
        second: 1,
        minute: 2,
        hour: 3,
        day: 4,
        month: 5,
        year: 6,
        by: 'consumer',
        algorithm: 'fixed',
        group: 'kong:service:a',
        periodHeaders: true,
      },
    });
  });
});

describe('Kong conversion: detection by shape', () => {
  it('reads meshgate’s own services, routes, consumers and plugins as native', () => {
    for (const native of [
      { services: [{ name: 'a', endpoints: [{ url: 'http://127.0.0.1:1' }] }] },
      { routes: [{ name: 'r', match: { path: '/a', methods: ['GET'], hosts: ['a.test'] }, service: 'a' }] },
      { consumers: [{ name: 'c', groups: ['g'], credentials: [{ type: 'api-key', key: 'k'.repeat(16) }] }] },
      { plugins: [{ name: 'cors', config: { origins: ['*'], exposedHeaders: ['x'] } }] },
      { plugins: [{ name: 'request-transformer', config: { add: { json: ['a:1'], json_types: ['number'] } } }] },
      { listeners: [{ name: 'l', port: 1 }], services: [{ name: 'a', url: 'http://x' }] },
    ])
      assert.equal(isKongShaped(native), false, JSON.stringify(native));
  });

  it('reads Kong’s shapes as Kong', () => {
    for (const kong of [
      { _format_version: '3.0' },
      { services: [{ name: 'a', url: 'http://a' }] },
      { services: [{ name: 'a', host: 'a', routes: [] }] },
      { routes: [{ name: 'r', paths: ['/a'], service: 'a' }] },
      { consumers: [{ username: 'c' }] },
      { upstreams: [{ name: 'u' }] },
      { plugins: [{ name: 'rate-limiting', config: { minute: 1 } }] },
      { plugins: [{ name: 'jwt', config: { secret_is_base64: false } }] },
    ])
      assert.equal(isKongShaped(kong), true, JSON.stringify(kong));
  });

  it('leaves a native file beside a Kong file native, and merges both', () => {
    const config = load([
      {
        file: 'kong.yaml',
        text: doc(['services:', '- { name: kong-svc, url: "http://a.internal", routes: [{ name: kr, paths: [/k] }] }']),
      },
      {
        file: 'native.yaml',
        text: doc([
          'listeners: [{ name: public, port: 9000 }]',
          'services: [{ name: native-svc, endpoints: [{ url: "http://127.0.0.1:1" }] }]',
          'routes: [{ name: nr, match: { path: /n }, service: native-svc }]',
        ]),
      },
    ]);
    assert.deepEqual(
      config.routes!.map((r) => r.name),
      ['kr', 'nr'],
    );
    assert.deepEqual(
      config.listeners!.map((l) => l.name),
      ['public'],
    );
  });

  it('with --from kong, refuses a file that has no Kong shape', () => {
    const { checked } = convert([{ file: 'a.yaml', text: doc(['listeners: [{ name: a, port: 1 }]']) }], {
      from: 'kong',
    });
    assert.equal(checked.ok, false);
    assert.match((checked.ok ? [] : checked.issues)[0]!.message, /not kong config/);
  });
});

describe('Kong conversion: what is not supported', () => {
  const file = 'unsupported.yaml';
  const text = doc([
    '_format_version: "3.0"', // 1
    'certificates: []', // 2
    'services:', // 3
    '- name: a', // 4
    '  url: http://a.internal', // 5
    '  tls_verify: false', // 6
    '  routes:', // 7
    '  - name: r', // 8
    '    paths: [/a]', // 9
    '    snis: [a.example.com]', // 10
    '    methods: [GET, PURGE]', // 11
    '  plugins:', // 12
    '  - name: rate-limiting', // 13
    '    config: { minute: 5, year: 100, policy: cluster, limit_by: path, path: /a }', // 14
    '  - name: jwt', // 15
    '    config: { key_claim_name: sub, claims_to_verify: [exp] }', // 16
    '  - name: bot-detection', // 17
    'consumers:', // 18
    '- username: alice', // 19
    '  basicauth_credentials: [{ username: alice, password: x }]', // 20
    '  keyauth_credentials: [{ key: short }]', // 21
  ]);
  const expected = [
    [2, 1, 'kong:certificates'],
    [6, 3, 'kong:services[0].tls_verify'],
    [10, 5, 'kong:services[0].routes[0].snis'],
    [11, 20, 'kong:services[0].routes[0].methods[1]'],
    [14, 37, 'kong:services[0].plugins[0].config.policy'],
    [14, 54, 'kong:services[0].plugins[0].config.limit_by'],
    [16, 15, 'kong:services[0].plugins[1].config.key_claim_name'],
    [17, 5, 'kong:services[0].plugins[2].name'],
    [20, 3, 'kong:consumers[0].basicauth_credentials'],
    [21, 27, 'kong:consumers[0].keyauth_credentials[0].key'],
  ];
  const located = (issues: readonly ConfigIssue[]) =>
    issues
      .map((i) => [i.line, i.column, i.path])
      .sort((a, b) => (a[0] as number) - (b[0] as number) || (a[1] as number) - (b[1] as number));

  it('refuses the file by default, naming each unsupported entity, plugin and field with its file, line and column', () => {
    const { checked } = convert([{ file, text }]);
    assert.equal(checked.ok, false);
    const issues = checked.ok ? [] : checked.issues;
    assert.ok(
      issues.every((i) => i.file === file && i.code === 'unsupported'),
      issues.map(formatIssue).join('\n'),
    );
    assert.deepEqual(located(issues), expected);
    assert.ok(issues.every((i) => /--allow-unsupported/.test(i.hint ?? '')));
  });

  it('with allowUnsupported, loads the rest and hands each unsupported part to warn', () => {
    const warnings: ConfigIssue[] = [];
    const config = load([{ file, text }], { allowUnsupported: true, warn: (i) => warnings.push(i) });
    assert.deepEqual(located(warnings), expected);
    const [route] = config.routes!;
    assert.deepEqual(route!.match!.methods, ['GET']);
    assert.deepEqual(
      config.services![0]!.plugins!.map((p) => p.name),
      ['rate-limit', 'jwt'],
    );
    assert.equal(config.consumers![0]!.credentials, undefined, 'the short key was left out');
  });

  it('points the validator’s issues about converted values into the Kong file', () => {
    const { checked } = convert([
      {
        file: 'kong.yaml',
        text: doc([
          'services:',
          '- name: a',
          '  url: http://a.internal',
          '  plugins:',
          '  - name: key-auth',
          '    config: { key_names: ["bad name"] }',
        ]),
      },
    ]);
    assert.equal(checked.ok, false);
    const issue = (checked.ok ? [] : checked.issues)[0]!;
    assert.deepEqual([issue.file, issue.line], ['kong.yaml', 5], formatIssue(issue));
    assert.match(issue.path, /^kong:/);
  });
});
