import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RouteMatchConfig } from '../../api/config.ts';
import { type MatchInput, pathParams, Router } from './router.ts';

type Def = [name: string, match?: RouteMatchConfig];

/** Routes named for the assertions, in declaration order. */
function router(...defs: Def[]): Router<string> {
  return new Router(defs.map(([value, match], order) => ({ match, order, value })));
}

interface Req {
  method?: string;
  host?: string;
  query?: string;
  headers?: Record<string, string>;
}

/** Header names are looked up verbatim, so a router that forgets to lower-case config names fails. */
function req(path: string, r: Req = {}): MatchInput {
  const headers = r.headers ?? {};
  return {
    method: r.method ?? 'GET',
    host: r.host ?? 'example.com',
    path,
    query: r.query ?? '',
    header: (name) => headers[name],
  };
}

/** Asserts the route each path (or request) resolves to; `null` for no match. */
function expectRoutes(rt: Router<string>, cases: [path: string, expected: string | null, r?: Req][]) {
  for (const [path, expected, r] of cases) {
    assert.equal(rt.match(req(path, r)), expected, `${r?.method ?? 'GET'} ${r?.host ?? 'example.com'}${path}`);
  }
}

describe('Router: paths', () => {
  it('matches an exact path and nothing else', () => {
    const rt = router(['ab', { path: '/a/b' }]);
    expectRoutes(rt, [
      ['/a/b', 'ab'],
      ['/a/b/', null],
      ['/a', null],
      ['/a/b/c', null],
      ['/a/bc', null],
      ['/A/B', null],
    ]);
  });

  it('matches the root path exactly', () => {
    expectRoutes(router(['root', { path: '/' }]), [
      ['/', 'root'],
      ['/a', null],
    ]);
  });

  it('lets a parameter match exactly one non-empty segment', () => {
    const rt = router(['item', { path: '/a/:id' }]);
    expectRoutes(rt, [
      ['/a/1', 'item'],
      ['/a/with.dots-and_more', 'item'],
      ['/a', null],
      ['/a/', null],
      ['/a/1/2', null],
      ['/a/1/', null],
      ['/b/1', null],
    ]);
  });

  it('matches parameters between and after static segments', () => {
    const rt = router(['comment', { path: '/posts/:post/comments/:comment' }], ['top', { path: '/:section' }]);
    expectRoutes(rt, [
      ['/posts/7/comments/9', 'comment'],
      ['/posts/7/comments', null],
      ['/posts/7/other/9', null],
      ['/news', 'top'],
      ['/', null],
    ]);
  });

  it('matches a prefix, the path without the trailing slash and everything below it', () => {
    const rt = router(['a', { path: '/a/*' }]);
    expectRoutes(rt, [
      ['/a', 'a'],
      ['/a/', 'a'],
      ['/a/x', 'a'],
      ['/a/x/y', 'a'],
      ['/ab', null],
      ['/ab/x', null],
      ['/', null],
      ['/b/a', null],
    ]);
  });

  it('matches a prefix with a parameter only when the parameter is non-empty', () => {
    const rt = router(['tenant', { path: '/t/:tenant/*' }]);
    expectRoutes(rt, [
      ['/t/acme', 'tenant'],
      ['/t/acme/', 'tenant'],
      ['/t/acme/x/y', 'tenant'],
      ['/t', null],
      ['/t/', null],
    ]);
  });

  for (const [label, match] of [
    ['/*', { path: '/*' }],
    ['no path', {}],
    ['no match at all', undefined],
  ] as const) {
    it(`matches every path with ${label}`, () => {
      expectRoutes(router(['all', match]), [
        ['/', 'all'],
        ['/a', 'all'],
        ['/a/b/c/', 'all'],
      ]);
    });
  }

  it('anchors pathRegex to the whole path', () => {
    const rt = router(['v', { pathRegex: '/v[0-9]+/x' }]);
    expectRoutes(rt, [
      ['/v1/x', 'v'],
      ['/v42/x', 'v'],
      ['/v1/x/y', null],
      ['/pre/v1/x', null],
      ['/v/x', null],
    ]);
  });

  it('anchors every alternative of a pathRegex', () => {
    const rt = router(['alt', { pathRegex: '/a|/b' }]);
    expectRoutes(rt, [
      ['/a', 'alt'],
      ['/b', 'alt'],
      ['/a/x', null],
      ['/x/b', null],
    ]);
  });
});

describe('Router: hosts', () => {
  it('matches an exact host case-insensitively', () => {
    const rt = router(['api', { hosts: ['API.Example.com'] }]);
    expectRoutes(rt, [
      ['/', 'api', { host: 'api.example.com' }],
      ['/', null, { host: 'example.com' }],
      ['/', null, { host: 'x.api.example.com' }],
      ['/', null, { host: 'api.example.org' }],
    ]);
  });

  it('matches any host listed on a route', () => {
    const rt = router(['both', { hosts: ['a.test', 'b.test'] }]);
    expectRoutes(rt, [
      ['/', 'both', { host: 'a.test' }],
      ['/', 'both', { host: 'b.test' }],
      ['/', null, { host: 'c.test' }],
    ]);
  });

  it('matches a wildcard host against subdomains at any depth but not the bare domain', () => {
    const rt = router(['wild', { hosts: ['*.Example.com'] }]);
    expectRoutes(rt, [
      ['/', 'wild', { host: 'a.example.com' }],
      ['/', 'wild', { host: 'a.b.example.com' }],
      ['/', null, { host: 'example.com' }],
      ['/', null, { host: 'badexample.com' }],
      ['/', null, { host: 'a.example.com.evil.test' }],
    ]);
  });

  it('tries the longest wildcard suffix first, whatever the declaration order', () => {
    for (const defs of [
      [
        ['any-sub', { hosts: ['*.example.com'] }],
        ['eu-sub', { hosts: ['*.eu.example.com'] }],
      ],
      [
        ['eu-sub', { hosts: ['*.eu.example.com'] }],
        ['any-sub', { hosts: ['*.example.com'] }],
      ],
    ] as Def[][]) {
      expectRoutes(router(...defs), [
        ['/', 'eu-sub', { host: 'x.eu.example.com' }],
        ['/', 'any-sub', { host: 'eu.example.com' }],
        ['/', 'any-sub', { host: 'x.us.example.com' }],
      ]);
    }
  });

  it('prefers an exact host to a wildcard, and a wildcard to any host, whatever the declaration order', () => {
    const defs: Def[] = [
      ['any', { path: '/x' }],
      ['wild', { path: '/x', hosts: ['*.example.com'] }],
      ['exact', { path: '/x', hosts: ['api.example.com'] }],
    ];
    for (const order of [defs, [...defs].reverse()]) {
      expectRoutes(router(...order), [
        ['/x', 'exact', { host: 'api.example.com' }],
        ['/x', 'wild', { host: 'www.example.com' }],
        ['/x', 'any', { host: 'example.com' }],
        ['/x', 'any', { host: 'other.test' }],
      ]);
    }
  });

  it('ranks the host above path specificity', () => {
    const rt = router(['any-exact', { path: '/a' }], ['host-catch-all', { hosts: ['api.test'] }]);
    expectRoutes(rt, [
      ['/a', 'host-catch-all', { host: 'api.test' }],
      ['/a', 'any-exact', { host: 'other.test' }],
    ]);
  });

  it('falls through to wildcard and then to any host when a host-specific route does not match', () => {
    const rt = router(
      ['exact-canary', { hosts: ['api.example.com'], headers: { canary: 'true' } }],
      ['wild-post', { hosts: ['*.example.com'], methods: ['POST'] }],
      ['exact-other-path', { hosts: ['api.example.com'], path: '/other' }],
      ['any', { path: '/*' }],
    );
    expectRoutes(rt, [
      ['/a', 'exact-canary', { host: 'api.example.com', headers: { canary: 'true' } }],
      ['/a', 'wild-post', { host: 'api.example.com', method: 'POST' }],
      ['/a', 'any', { host: 'api.example.com' }],
      ['/other', 'exact-other-path', { host: 'api.example.com' }],
    ]);
  });
});

describe('Router: methods', () => {
  it('matches only the listed methods and otherwise falls through', () => {
    const rt = router(['write', { path: '/a', methods: ['POST', 'PUT'] }], ['fallback', { path: '/a/*' }]);
    expectRoutes(rt, [
      ['/a', 'write', { method: 'POST' }],
      ['/a', 'write', { method: 'PUT' }],
      ['/a', 'fallback', { method: 'GET' }],
      ['/a', 'fallback', { method: 'DELETE' }],
    ]);
  });
});

describe('Router: headers', () => {
  const only = (headers: NonNullable<RouteMatchConfig['headers']>) => router(['hit', { headers }]);

  it('matches a string as an exact value, with the header name case-insensitive', () => {
    const rt = only({ 'X-Canary': 'true' });
    expectRoutes(rt, [
      ['/', 'hit', { headers: { 'x-canary': 'true' } }],
      ['/', null, { headers: { 'x-canary': 'True' } }],
      ['/', null, { headers: { 'x-canary': 'true ' } }],
      ['/', null, { headers: { 'x-canary': 'truer' } }],
      ['/', null],
    ]);
  });

  it('matches { exact }', () => {
    expectRoutes(only({ env: { exact: 'prod' } }), [
      ['/', 'hit', { headers: { env: 'prod' } }],
      ['/', null, { headers: { env: 'production' } }],
      ['/', null],
    ]);
  });

  it('matches { prefix }', () => {
    expectRoutes(only({ authorization: { prefix: 'Bearer ' } }), [
      ['/', 'hit', { headers: { authorization: 'Bearer abc' } }],
      ['/', 'hit', { headers: { authorization: 'Bearer ' } }],
      ['/', null, { headers: { authorization: 'bearer abc' } }],
      ['/', null, { headers: { authorization: 'Basic abc' } }],
      ['/', null],
    ]);
  });

  it('anchors { regex } to the whole value', () => {
    expectRoutes(only({ version: { regex: 'v[12]|beta' } }), [
      ['/', 'hit', { headers: { version: 'v1' } }],
      ['/', 'hit', { headers: { version: 'beta' } }],
      ['/', null, { headers: { version: 'v12' } }],
      ['/', null, { headers: { version: 'xv1' } }],
      ['/', null, { headers: { version: 'betamax' } }],
      ['/', null],
    ]);
  });

  it('matches { present: true } for any value, even empty', () => {
    expectRoutes(only({ 'x-debug': { present: true } }), [
      ['/', 'hit', { headers: { 'x-debug': '1' } }],
      ['/', 'hit', { headers: { 'x-debug': '' } }],
      ['/', null, { headers: { 'x-other': '1' } }],
    ]);
  });

  it('matches { present: false } only when the header is absent', () => {
    expectRoutes(only({ 'x-debug': { present: false } }), [
      ['/', 'hit'],
      ['/', 'hit', { headers: { 'x-other': '1' } }],
      ['/', null, { headers: { 'x-debug': '' } }],
      ['/', null, { headers: { 'x-debug': '1' } }],
    ]);
  });

  it('requires every header condition to hold', () => {
    expectRoutes(only({ a: '1', b: { present: true } }), [
      ['/', 'hit', { headers: { a: '1', b: 'x' } }],
      ['/', null, { headers: { a: '1' } }],
      ['/', null, { headers: { b: 'x' } }],
    ]);
  });
});

describe('Router: query', () => {
  const only = (query: NonNullable<RouteMatchConfig['query']>) => router(['hit', { query }]);

  it('matches an exact value of the named parameter', () => {
    expectRoutes(only({ debug: '1' }), [
      ['/', 'hit', { query: 'debug=1' }],
      ['/', 'hit', { query: 'a=b&debug=1&c' }],
      ['/', null, { query: 'debug=10' }],
      ['/', null, { query: 'xdebug=1' }],
      ['/', null, { query: 'Debug=1' }],
      ['/', null],
    ]);
  });

  it('uses the first value of a repeated parameter', () => {
    expectRoutes(only({ v: '1' }), [
      ['/', 'hit', { query: 'v=1&v=2' }],
      ['/', null, { query: 'v=2&v=1' }],
    ]);
  });

  it('matches { regex } anchored to the whole value', () => {
    expectRoutes(only({ page: { regex: '[0-9]+' } }), [
      ['/', 'hit', { query: 'page=12' }],
      ['/', null, { query: 'page=12a' }],
      ['/', null, { query: 'page=' }],
    ]);
  });

  it('matches { present } with or without a value', () => {
    expectRoutes(only({ flag: { present: true } }), [
      ['/', 'hit', { query: 'flag' }],
      ['/', 'hit', { query: 'flag=' }],
      ['/', 'hit', { query: 'flag=0' }],
      ['/', null, { query: 'flags=1' }],
      ['/', null],
    ]);
    expectRoutes(only({ flag: { present: false } }), [
      ['/', 'hit'],
      ['/', 'hit', { query: 'other=1' }],
      ['/', null, { query: 'flag' }],
    ]);
  });

  it('compares URL-decoded names and values', () => {
    expectRoutes(only({ q: 'hello world', name: { prefix: 'é' } }), [
      ['/', 'hit', { query: 'q=hello%20world&name=%C3%A9t%C3%A9' }],
      ['/', 'hit', { query: 'q=hello+world&%6Eame=%C3%A9' }],
      ['/', null, { query: 'q=hello%2Bworld&name=%C3%A9' }],
      ['/', null, { query: 'q=hello%20world&name=e' }],
    ]);
  });
});

describe('Router: precedence', () => {
  // Every one of these matches `/users/me`; removing the winner in turn must reveal the next kind.
  const kinds: Def[] = [
    ['exact', { path: '/users/me' }],
    ['param', { path: '/users/:id' }],
    ['regex', { pathRegex: '/users/[a-z]+' }],
    ['prefix', { path: '/users/*' }],
    ['any', {}],
  ];

  it('ranks exact > params > regex > prefix > no path, whatever the declaration order', () => {
    for (let i = 0; i < kinds.length; i++) {
      const present = kinds.slice(i);
      for (const defs of [present, [...present].reverse()]) {
        assert.equal(router(...defs).match(req('/users/me')), kinds[i]![0], defs.map((d) => d[0]).join(','));
      }
    }
  });

  it('ranks regex above prefix for paths the params route cannot match', () => {
    const rt = router(['prefix', { path: '/files/*' }], ['regex', { pathRegex: '/files/.+\\.png' }]);
    expectRoutes(rt, [
      ['/files/a/b.png', 'regex'],
      ['/files/a/b.jpg', 'prefix'],
    ]);
  });

  it('lets a static segment beat a parameter at the first difference, whatever the declaration order', () => {
    for (const [path, param, statik] of [
      ['/users/me', { path: '/users/:id' }, { path: '/users/me' }],
      ['/users/me/profile', { path: '/users/:id/profile' }, { path: '/users/me/:tab' }],
      ['/x/b', { path: '/:a/b' }, { path: '/x/:b' }],
      ['/a/b/c/d', { path: '/a/:x/c/d' }, { path: '/a/b/:y/:z' }],
    ] as [string, RouteMatchConfig, RouteMatchConfig][]) {
      const defs: Def[] = [
        ['param', param],
        ['static', statik],
      ];
      for (const order of [defs, [...defs].reverse()]) assert.equal(router(...order).match(req(path)), 'static', path);
    }
  });

  it('backtracks to a parameter when the static branch has no full match', () => {
    const rt = router(['static-short', { path: '/a/b/:c' }], ['param-long', { path: '/a/:x/y/z' }]);
    expectRoutes(rt, [
      ['/a/b/y', 'static-short'],
      ['/a/b/y/z', 'param-long'],
      ['/a/q/y/z', 'param-long'],
    ]);
  });

  it('backtracks to a parameter when the static branch fails its conditions', () => {
    const rt = router(['me-post', { path: '/users/me', methods: ['POST'] }], ['by-id', { path: '/users/:id' }]);
    expectRoutes(rt, [
      ['/users/me', 'me-post', { method: 'POST' }],
      ['/users/me', 'by-id', { method: 'GET' }],
    ]);
  });

  it('tries the longest prefix first, whatever the declaration order', () => {
    const defs: Def[] = [
      ['api', { path: '/api/*' }],
      ['v1', { path: '/api/v1/*' }],
      ['users', { path: '/api/v1/users/*' }],
    ];
    for (const order of [defs, [...defs].reverse()]) {
      expectRoutes(router(...order), [
        ['/api/v1/users/7', 'users'],
        ['/api/v1/users', 'users'],
        ['/api/v1/orders', 'v1'],
        ['/api/v2/users', 'api'],
        ['/api', 'api'],
        ['/apiv1', null],
      ]);
    }
  });

  it('counts depth for prefixes, and prefers a static to a parameter segment at the same depth', () => {
    const defs: Def[] = [
      ['shallow-static', { path: '/t/*' }],
      ['param', { path: '/t/:tenant/*' }],
      ['static', { path: '/t/acme/*' }],
      ['deep-param', { path: '/t/:tenant/admin/*' }],
    ];
    for (const order of [defs, [...defs].reverse()]) {
      expectRoutes(router(...order), [
        ['/t/acme/x', 'static'],
        ['/t/other/x', 'param'],
        ['/t/acme/admin/x', 'deep-param'],
        ['/t', 'shallow-static'],
      ]);
    }
  });

  it('falls through to a shorter prefix when a longer one fails its conditions', () => {
    const rt = router(['api', { path: '/api/*' }], ['v1-admin', { path: '/api/v1/*', headers: { role: 'admin' } }]);
    expectRoutes(rt, [
      ['/api/v1/x', 'v1-admin', { headers: { role: 'admin' } }],
      ['/api/v1/x', 'api'],
      ['/api/v1/x', 'api', { headers: { role: 'user' } }],
    ]);
  });

  for (const [kind, path, match] of [
    ['exact', '/p', { path: '/p' }],
    ['params', '/p/1', { path: '/p/:id' }],
    ['regex', '/p/1', { pathRegex: '/p/[0-9]' }],
    ['prefix', '/p/1', { path: '/p/*' }],
    ['no path', '/p', {}],
  ] as [string, string, RouteMatchConfig][]) {
    it(`puts routes with more conditions first within one ${kind} pattern`, () => {
      const rt = router(
        ['plain', match],
        ['get', { ...match, methods: ['GET'] }],
        ['get-beta', { ...match, methods: ['GET'], headers: { beta: '1' } }],
        ['get-beta-q', { ...match, methods: ['GET'], headers: { beta: '1' }, query: { x: { present: true } } }],
      );
      expectRoutes(rt, [
        [path, 'get-beta-q', { headers: { beta: '1' }, query: 'x' }],
        [path, 'get-beta', { headers: { beta: '1' } }],
        [path, 'get'],
        [path, 'plain', { method: 'POST', headers: { beta: '1' }, query: 'x' }],
      ]);
    });
  }

  it('breaks ties between equally specific routes by declaration order', () => {
    const rt = router(['first', { path: '/a', methods: ['GET'] }], ['second', { path: '/a', headers: { h: '1' } }]);
    assert.equal(rt.match(req('/a', { headers: { h: '1' } })), 'first');
    const swapped = router(
      ['first', { path: '/a', headers: { h: '1' } }],
      ['second', { path: '/a', methods: ['GET'] }],
    );
    assert.equal(swapped.match(req('/a', { headers: { h: '1' } })), 'first');
  });

  it('takes declaration order from `order`, not from the position in the list', () => {
    const rt = new Router([
      { match: { path: '/a' }, order: 1, value: 'declared-second' },
      { match: { path: '/a' }, order: 0, value: 'declared-first' },
    ]);
    assert.equal(rt.match(req('/a')), 'declared-first');
  });

  it('orders different regexes by declaration, not by their number of conditions', () => {
    const rt = router(['broad', { pathRegex: '/r/.*' }], ['narrow-get', { pathRegex: '/r/x', methods: ['GET'] }]);
    assert.equal(rt.match(req('/r/x')), 'broad');
    const swapped = router(['narrow-get', { pathRegex: '/r/x', methods: ['GET'] }], ['broad', { pathRegex: '/r/.*' }]);
    expectRoutes(swapped, [
      ['/r/x', 'narrow-get'],
      ['/r/x', 'broad', { method: 'POST' }],
    ]);
  });

  it('ranks all routes of one regex where that regex is first declared', () => {
    const rt = router(
      ['broad', { pathRegex: '/r/.*' }],
      ['narrow', { pathRegex: '/r/x' }],
      ['broad-get', { pathRegex: '/r/.*', methods: ['GET'] }],
    );
    expectRoutes(rt, [
      ['/r/x', 'broad-get'],
      ['/r/x', 'broad', { method: 'POST' }],
    ]);
  });

  it('sends the canary header to the canary route and everything else to the plain route, in either order', () => {
    const canary: Def = ['canary', { path: '/api/v1/properties/*', headers: { canary: 'true' } }];
    const plain: Def = ['plain', { path: '/api/v1/properties/*' }];
    for (const defs of [
      [canary, plain],
      [plain, canary],
    ]) {
      expectRoutes(router(...defs), [
        ['/api/v1/properties/42', 'canary', { headers: { canary: 'true' } }],
        ['/api/v1/properties', 'canary', { headers: { canary: 'true' } }],
        ['/api/v1/properties/42', 'plain'],
        ['/api/v1/properties/42', 'plain', { headers: { canary: 'false' } }],
        ['/api/v1/other', null, { headers: { canary: 'true' } }],
      ]);
    }
  });

  it('keeps the seed config behaviour: canary and method-restricted route of equal weight go by declaration', () => {
    const canary: Def = ['canary', { path: '/api/v1/properties/*', headers: { canary: 'true' } }];
    const api: Def = ['api', { path: '/api/v1/properties/*', methods: ['GET', 'POST', 'PUT', 'DELETE'] }];
    expectRoutes(router(canary, api), [
      ['/api/v1/properties/1', 'canary', { headers: { canary: 'true' } }],
      ['/api/v1/properties/1', 'api'],
      ['/api/v1/properties/1', null, { method: 'PATCH' }],
    ]);
    expectRoutes(router(api, canary), [
      ['/api/v1/properties/1', 'api', { headers: { canary: 'true' } }],
      ['/api/v1/properties/1', 'canary', { method: 'PATCH', headers: { canary: 'true' } }],
    ]);
  });
});

describe('Router: misses and scale', () => {
  it('returns null when nothing matches', () => {
    assert.equal(router().match(req('/')), null);
    assert.equal(router().size, 0);
    const rt = router(['a', { path: '/a', methods: ['POST'] }], ['b', { path: '/b/*', headers: { x: '1' } }]);
    expectRoutes(rt, [
      ['/a', null],
      ['/b/c', null],
      ['/c', null],
    ]);
  });

  it('resolves many routes that share prefixes, independently of earlier lookups', () => {
    const n = 300;
    const defs: Def[] = [];
    for (let i = 0; i < n; i++) {
      defs.push(
        [`prefix-${i}`, { path: `/api/v1/svc${i}/*` }],
        [`item-${i}`, { path: `/api/v1/svc${i}/items/:id` }],
        [`health-${i}`, { path: `/api/v1/svc${i}/health` }],
        [`canary-${i}`, { path: `/api/v1/svc${i}/*`, headers: { canary: 'true' } }],
        [`host-${i}`, { path: `/api/v1/svc${i}/*`, hosts: [`svc${i}.internal`] }],
      );
    }
    defs.push(['api', { path: '/api/*' }]);
    const rt = router(...defs);
    assert.equal(rt.size, 5 * n + 1);
    // Interleave kinds so that any state left behind by one lookup would corrupt the next.
    for (let i = 0; i < n; i += 7) {
      expectRoutes(rt, [
        [`/api/v1/svc${i}/items/9`, `item-${i}`],
        [`/api/v1/svc${i}/items/9/x`, `prefix-${i}`],
        [`/api/v1/svc${i}/health`, `health-${i}`],
        [`/api/v1/svc${i}/items`, `prefix-${i}`],
        [`/api/v1/svc${i}/items/9`, `item-${i}`, { headers: { canary: 'true' } }],
        [`/api/v1/svc${i}/items/9/x`, `canary-${i}`, { headers: { canary: 'true' } }],
        [`/api/v1/svc${i}/anything`, `host-${i}`, { host: `svc${i}.internal` }],
        [`/api/v1/svc${i}/anything`, `prefix-${i}`, { host: `svc${i + 1}.internal` }],
        [`/api/v1/svc${n + i}/x`, 'api'],
        [`/api/v2/svc${i}/x`, 'api'],
        [`/other/svc${i}`, null],
      ]);
    }
  });
});

describe('pathParams', () => {
  it('extracts named segments', () => {
    assert.deepEqual(pathParams('/users/:id', '/users/42'), { id: '42' });
    assert.deepEqual(pathParams('/posts/:post/comments/:comment', '/posts/7/comments/9'), {
      post: '7',
      comment: '9',
    });
  });

  it('extracts parameters before a prefix wildcard and ignores the rest', () => {
    assert.deepEqual(pathParams('/t/:tenant/*', '/t/acme/x/y'), { tenant: 'acme' });
  });

  it('URL-decodes values', () => {
    assert.deepEqual(pathParams('/files/:name', '/files/a%20b%2Fc'), { name: 'a b/c' });
    assert.deepEqual(pathParams('/u/:name', '/u/%C3%A9'), { name: 'é' });
  });

  it('returns an empty object for patterns without parameters', () => {
    assert.deepEqual(pathParams('/a/b', '/a/b'), {});
    assert.deepEqual(pathParams('/a/*', '/a/b/c'), {});
  });

  it('omits parameters the path does not reach', () => {
    assert.deepEqual(pathParams('/t/:tenant/*', '/t'), {});
  });
});

describe('Router: the worked example in docs/routing.md', () => {
  const rt = router(
    ['health', { path: '/health' }],
    ['user-me', { path: '/users/me' }],
    ['user', { path: '/users/:id' }],
    ['user-image', { pathRegex: '/users/[0-9]+/files/.+\\.(png|jpg)' }],
    ['users', { path: '/users/*' }],
    ['users-canary', { path: '/users/*', headers: { canary: 'true' } }],
    ['admin', { hosts: ['admin.example.com'] }],
    ['tenant-users', { hosts: ['*.example.com'], path: '/users/*' }],
    ['fallback', {}],
  );

  it('resolves each request of the table', () => {
    const canary = { canary: 'true' };
    expectRoutes(rt, [
      ['/users/me', 'user-me'],
      ['/users/42', 'user'],
      ['/users/42', 'user', { headers: canary }],
      ['/users/42/files/a.png', 'user-image', { headers: canary }],
      ['/users/42/orders', 'users-canary', { headers: canary }],
      ['/users/42/orders', 'users'],
      ['/users', 'users'],
      ['/health', 'health'],
      ['/users/me', 'tenant-users', { host: 'acme.example.com' }],
      ['/health', 'health', { host: 'acme.example.com' }],
      ['/users/me', 'admin', { host: 'admin.example.com' }],
      ['/other', 'fallback'],
    ]);
  });
});

describe('Router: routes with a priority (first-match lists)', () => {
  function prioritized(...defs: [name: string, priority: number | undefined, match?: RouteMatchConfig][]) {
    return new Router(defs.map(([value, priority, match], order) => ({ match, order, priority, value })));
  }

  it('tries prioritised routes in declaration order before any specificity rule', () => {
    // In specificity order the exact path and the header condition would win; here the first written does.
    const rt = prioritized(
      ['prefix', 1, { pathRegex: '/api/.*' }],
      ['exact', 1, { path: '/api/items' }],
      ['canary', 1, { headers: { Canary: 'true' } }],
      ['rest', 1],
    );
    expectRoutes(rt, [
      ['/api/items', 'prefix', { headers: { canary: 'true' } }],
      ['/other', 'canary', { headers: { canary: 'true' } }],
      ['/other', 'rest'],
    ]);
  });

  it('orders higher priorities first and goes on to unprioritised routes when none holds', () => {
    const rt = prioritized(
      ['low', 1, { path: '/a/*' }],
      ['high', 5, { path: '/a/:id' }],
      ['plain-exact', undefined, { path: '/a/b' }],
      ['plain-any', undefined],
    );
    expectRoutes(rt, [
      ['/a/b', 'high'],
      ['/a/b/c', 'low'],
      ['/a', 'low'],
      ['/ab', 'plain-any'],
    ]);
  });

  it('keeps the host groups: an exact host outranks prioritised host-less routes', () => {
    const rt = prioritized(['any', 1], ['host', undefined, { hosts: ['api.example.com'], path: '/x' }]);
    expectRoutes(rt, [
      ['/x', 'host', { host: 'api.example.com' }],
      ['/y', 'any', { host: 'api.example.com' }],
    ]);
  });
});
