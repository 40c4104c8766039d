/**
 * Every kind of mistake a config can hold, as the user sees it: `line:col: path: message (hint)`.
 * Each config is written to a real file and loaded the way the CLI loads it. YAML is written as a list
 * of lines so that `lines[i]` is line i + 1 and every position in an assertion can be read off.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Config } from '../api/config.ts';
import { type ConfigIssue, closest, didYouMean, formatIssue, formatPath } from './issues.ts';
import { loadConfigFile } from './load.ts';

let dir: string;
let written = 0;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'meshgate-issues-'));
});
after(() => rm(dir, { recursive: true, force: true }));

async function load(lines: string[], env: Record<string, string> = {}) {
  const file = join(dir, `config-${++written}.yaml`);
  await writeFile(file, lines.join('\n') + '\n');
  return { file, result: await loadConfigFile(file, env) };
}

/** The issues of a config that must be rejected, printed as the CLI prints them, minus the file name. */
async function problems(lines: string[]): Promise<string[]> {
  const { file, result } = await load(lines);
  assert.equal(result.ok, false, 'expected the config to be rejected');
  if (result.ok) return [];
  return result.issues.map((issue) => {
    const line = formatIssue(issue);
    assert.ok(line.startsWith(`${file}:`), line);
    return line.slice(file.length + 1);
  });
}

async function accepted(lines: string[]): Promise<Config> {
  const { result } = await load(lines);
  if (!result.ok) assert.fail(`expected a valid config, got:\n${result.issues.map(formatIssue).join('\n')}`);
  return result.value.config;
}

const METHODS = 'GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, CONNECT, TRACE';
const DURATION_HINT = '(write a number with a unit: 250ms, 5s, 1m30s, 1h; 0 disables)';

/** Appended after `routes:` so that route lines keep small, readable numbers. */
const SERVICES = [
  'services:',
  '  - name: property-service',
  '    endpoints:',
  '      - url: http://127.0.0.1:8081',
  '        labels: { version: v1 }',
  '      - url: http://127.0.0.1:8082',
  '        labels: { version: v2 }',
  '    subsets:',
  '      v1: { version: v1 }',
  '      v2: { version: v2 }',
  '  - name: search-service',
  '    endpoints:',
  '      - url: http://127.0.0.1:8083',
];

describe('schema errors', () => {
  test('an unknown field is located at its key, with a did-you-mean', async () => {
    assert.deepEqual(await problems(['listeners:', '  - name: public', '    port: 8080', '    adress: 127.0.0.1']), [
      '4:5: listeners[0].adress: unknown field "adress" (did you mean "address"?)',
    ]);
  });

  test('an unknown top-level field suggests the section', async () => {
    assert.deepEqual(await problems(['servces: []']), [
      '1:1: servces: unknown field "servces" (did you mean "services"?)',
    ]);
  });

  test('an unknown field with no close name lists the known ones', async () => {
    assert.deepEqual(await problems(['listeners:', '  - name: public', '    port: 8080', '    zzzzzzzzzz: 1']), [
      '4:5: listeners[0].zzzzzzzzzz: unknown field "zzzzzzzzzz" (expected one of: name, port, address, trustedHops, ' +
        'tls, mtls, http2, engine, redirectToHttps, httpsPort, encodedSlashes, limits, origin)',
    ]);
  });

  test('a wrong type says what was expected and what was found', async () => {
    assert.deepEqual(
      await problems([
        'listeners:',
        '  - name: public',
        '    port: eighty',
        'admin:',
        '  port: [9901]',
        'services:',
        '  - name: s',
        '    endpoints: { url: http://127.0.0.1:1 }',
        'routes:',
        '  - name: r',
        '    service: s',
        '    rewrite: { autoHost: "yes" }',
      ]),
      [
        '3:11: listeners[0].port: expected integer, got "eighty"',
        '5:9: admin.port: expected integer, got a list',
        '8:16: services[0].endpoints: expected array, got a map',
        '12:26: routes[0].rewrite.autoHost: expected boolean, got "yes"',
      ],
    );
  });

  test('scalars are coerced as YAML users expect', async () => {
    const config = await accepted([
      'listeners:',
      '  - { name: public, port: "8080" }',
      'routes:',
      '  - name: r',
      '    match: { headers: { x-version: 2 } }',
      '    rewrite: { autoHost: "true" }',
      '    directResponse: { status: 200 }',
    ]);
    assert.equal(config.listeners?.[0]?.port, 8080);
    assert.equal(config.routes?.[0]?.match?.headers?.['x-version'], '2');
    assert.equal(config.routes?.[0]?.rewrite?.autoHost, true);
  });

  test('a bad duration says so, with the accepted forms as hint', async () => {
    assert.deepEqual(
      await problems([
        'services:',
        '  - name: s',
        '    endpoints: []',
        '    timeouts:',
        '      connect: 1 sec',
        '      request: 5',
        'routes:',
        '  - name: r',
        '    service: s',
        '    timeouts: { idle: 1d }',
      ]),
      [
        `5:16: services[0].timeouts.connect: "1 sec" is not a duration ${DURATION_HINT}`,
        `6:16: services[0].timeouts.request: "5" is not a duration ${DURATION_HINT}`,
        `10:23: routes[0].timeouts.idle: "1d" is not a duration ${DURATION_HINT}`,
      ],
    );
  });

  test('every documented duration form is accepted', async () => {
    const config = await accepted([
      'services:',
      '  - name: s',
      '    endpoints: []',
      '    timeouts: { connect: 250ms, request: 1m30s, idle: 0 }',
      'routes:',
      '  - name: r',
      '    service: s',
      '    timeouts: { request: 1.5s, idle: 1h }',
    ]);
    assert.deepEqual(config.services?.[0]?.timeouts, { connect: '250ms', request: '1m30s', idle: '0' });
    assert.deepEqual(config.routes?.[0]?.timeouts, { request: '1.5s', idle: '1h' });
  });

  test('a bad method lists the allowed ones and suggests the closest', async () => {
    assert.deepEqual(
      await problems([
        'routes:',
        '  - name: r',
        '    match:',
        '      methods: [GET, GETT, XYZZY]',
        '    directResponse: { status: 200 }',
      ]),
      [
        `4:22: routes[0].match.methods[1]: "GETT" is not one of ${METHODS} (did you mean "GET"?)`,
        `4:28: routes[0].match.methods[2]: "XYZZY" is not one of ${METHODS}`,
      ],
    );
  });

  test('a missing required field is reported at the object that lacks it', async () => {
    assert.deepEqual(
      await problems([
        'listeners:',
        '  - name: public',
        'services:',
        '  - endpoints: []',
        'routes:',
        '  - name: r',
        '    directResponse: { body: down }',
      ]),
      [
        '2:5: listeners[0]: missing required field "port"',
        '4:5: services[0]: missing required field "name"',
        '7:21: routes[0].directResponse: missing required field "status"',
      ],
    );
  });

  test('a typo in a header or query match object is located at the key', async () => {
    assert.deepEqual(
      await problems([
        'routes:',
        '  - name: r',
        '    match:',
        '      headers:',
        '        x-canary: { exakt: "true" }',
        '      query:',
        '        debug: { presnt: true }',
        '    directResponse: { status: 200 }',
      ]),
      [
        '5:21: routes[0].match.headers.x-canary.exakt: unknown field "exakt" (did you mean "exact"?)',
        '7:18: routes[0].match.query.debug.presnt: unknown field "presnt" (did you mean "present"?)',
      ],
    );
  });

  test('a header match that is neither a string nor a one-key map is one issue, not one per branch', async () => {
    const issues = await problems([
      'routes:',
      '  - name: r',
      '    match:',
      '      headers:',
      '        x-list: [a, b]',
      '        x-both: { exact: a, prefix: b }',
      '    directResponse: { status: 200 }',
    ]);
    assert.equal(issues.length, 2, issues.join('\n'));
    assert.equal(issues[0], '5:17: routes[0].match.headers.x-list: expected string or object, got a list');
    assert.match(issues[1]!, /^6:17: routes\[0\]\.match\.headers\.x-both: /);
  });

  test('mistakes in two header matches of different routes are both reported, each once', async () => {
    // All values of a record share one schema path; each must still be judged on its own.
    assert.deepEqual(
      await problems([
        'routes:',
        '  - name: a',
        '    match: { headers: { x-a: { exakt: a } } }',
        '    directResponse: { status: 200 }',
        '  - name: b',
        '    match: { headers: { x-b: [a] } }',
        '    directResponse: { status: 200 }',
      ]),
      [
        '3:32: routes[0].match.headers.x-a.exakt: unknown field "exakt" (did you mean "exact"?)',
        '6:30: routes[1].match.headers.x-b: expected string or object, got a list',
      ],
    );
  });

  test('numbers out of range name the bound', async () => {
    assert.deepEqual(
      await problems([
        'listeners:',
        '  - { name: public, port: 70000 }',
        'routes:',
        '  - name: r',
        '    directResponse: { status: 700 }',
      ]),
      [
        '2:27: listeners[0].port: 70000 is out of range: it must be <= 65535',
        '5:31: routes[0].directResponse.status: 700 is out of range: it must be <= 599',
      ],
    );
  });

  test('a string of the wrong form quotes the field description as hint', async () => {
    assert.deepEqual(await problems(['services:', '  - name: s', '    endpoints:', '      - url: http://a:1/path']), [
      '4:14: services[0].endpoints[0].url: "http://a:1/path" is not valid here (Origin of one instance, `http://host:port` (no path).)',
    ]);
  });

  test('a document that is not a map is one issue at 1:1', async () => {
    assert.deepEqual(await problems(['- listeners']), ['1:1: expected object, got a list']);
  });
});

describe('reference errors', () => {
  test('an unknown service is located at the reference, with a did-you-mean when one is close', async () => {
    assert.deepEqual(
      await problems([
        'routes:',
        '  - name: a',
        '    service: search-service',
        '  - name: b',
        '    service: serch-service',
        '  - name: c',
        '    destinations:',
        '      - service: propety-service',
        '  - name: d',
        '    service: billing',
        ...SERVICES,
      ]),
      [
        '5:14: routes[1].service: unknown service "serch-service" (did you mean "search-service"?)',
        '8:18: routes[2].destinations[0].service: unknown service "propety-service" (did you mean "property-service"?)',
        '10:14: routes[3].service: unknown service "billing"',
      ],
    );
  });

  test('an unknown subset names the close one, the existing ones, or how to define one', async () => {
    assert.deepEqual(
      await problems([
        'routes:',
        '  - name: a',
        '    destinations:',
        '      - { service: property-service, subset: v3, weight: 50 }',
        '      - { service: property-service, subset: canary, weight: 50 }',
        '  - name: b',
        '    destinations: [{ service: search-service, subset: v1 }]',
        ...SERVICES,
      ]),
      [
        '4:46: routes[0].destinations[0].subset: service "property-service" has no subset "v3" (did you mean "v1"?)',
        '5:46: routes[0].destinations[1].subset: service "property-service" has no subset "canary" (its subsets: v1, v2)',
        '7:55: routes[1].destinations[0].subset: service "search-service" has no subset "v1" (define it under subsets)',
      ],
    );
  });

  test('duplicate listener, service and route names point at the second and name the first', async () => {
    assert.deepEqual(
      await problems([
        'listeners:',
        '  - { name: public, port: 8080 }',
        '  - { name: public, port: 8081 }',
        'routes:',
        '  - { name: r, service: search-service }',
        '  - { name: r, service: search-service }',
        ...SERVICES,
        '  - name: search-service',
        '    endpoints: []',
      ]),
      [
        '3:13: listeners[1].name: duplicate listener name "public" (first at listeners[0])',
        '6:13: routes[1].name: duplicate route name "r" (first at routes[0])',
        '20:11: services[2].name: duplicate service name "search-service" (first at services[1])',
      ],
    );
  });

  test('weights must be given for several destinations and sum to 100', async () => {
    assert.deepEqual(
      await problems([
        'routes:',
        '  - name: under',
        '    destinations:',
        '      - { service: property-service, subset: v1, weight: 60 }',
        '      - { service: property-service, subset: v2, weight: 30 }',
        '  - name: unweighted',
        '    destinations:',
        '      - { service: property-service, subset: v1 }',
        '      - { service: property-service, subset: v2 }',
        '  - name: partly',
        '    destinations:',
        '      - { service: property-service, subset: v1, weight: 100 }',
        '      - { service: property-service, subset: v2 }',
        '  - name: one-half',
        '    destinations: [{ service: search-service, weight: 50 }]',
        ...SERVICES,
      ]),
      [
        '4:7: routes[0].destinations: weights sum to 90, not 100 (make them add up to 100)',
        '8:7: routes[1].destinations: every destination needs a weight when there are several',
        '12:7: routes[2].destinations: every destination needs a weight when there are several',
        '15:19: routes[3].destinations: weights sum to 50, not 100 (make them add up to 100)',
      ],
    );
  });

  test('one destination needs no weight, and a weight of 0 is allowed', async () => {
    const config = await accepted([
      'routes:',
      '  - name: single',
      '    destinations: [{ service: search-service }]',
      '  - name: dark',
      '    destinations:',
      '      - { service: property-service, subset: v1, weight: 100 }',
      '      - { service: property-service, subset: v2, weight: 0 }',
      ...SERVICES,
    ]);
    assert.equal(config.routes?.length, 2);
  });

  test('a route has exactly one action', async () => {
    assert.deepEqual(
      await problems([
        'routes:',
        '  - name: both',
        '    service: search-service',
        '    directResponse: { status: 204 }',
        '  - name: three',
        '    service: search-service',
        '    destinations: [{ service: search-service }]',
        '    directResponse: { status: 204 }',
        '  - name: none',
        '    match: { path: /none }',
        ...SERVICES,
      ]),
      [
        '4:21: routes[0].directResponse: a route has one action, but this one has service and directResponse',
        '7:19: routes[1].destinations: a route has one action, but this one has service and destinations and directResponse',
        '9:5: routes[2]: a route needs an action (add service, destinations, directResponse, redirect, aggregate, graphql or transcode)',
      ],
    );
  });

  test('regular expressions must compile: pathRegex, header and query regex, rewrite regex', async () => {
    assert.deepEqual(
      await problems([
        'routes:',
        '  - name: a',
        '    match: { pathRegex: "^/(a" }',
        '    service: search-service',
        '  - name: b',
        '    match:',
        '      headers:',
        '        x-version: { regex: "[a-" }',
        '      query:',
        '        q: { regex: "*" }',
        '    service: search-service',
        '  - name: c',
        '    match: { path: /c/* }',
        '    rewrite:',
        '      regex: { pattern: "(", substitution: x }',
        '    service: search-service',
        ...SERVICES,
      ]),
      [
        '3:25: routes[0].match.pathRegex: invalid regular expression: /^/(a/: Unterminated group',
        '8:29: routes[1].match.headers.x-version.regex: invalid regular expression: /[a-/: Unterminated character class',
        '10:21: routes[1].match.query.q.regex: invalid regular expression: /*/: Nothing to repeat',
        '15:25: routes[2].rewrite.regex.pattern: invalid regular expression: /(/: Unterminated group',
      ],
    );
  });

  test('valid regular expressions pass', async () => {
    await accepted([
      'routes:',
      '  - name: a',
      '    match:',
      '      pathRegex: "^/items/[0-9]+$"',
      '      headers: { x-version: { regex: "v[12]" } }',
      '      query: { q: { regex: "(?<term>\\\\w+)" } }',
      '    rewrite: { regex: { pattern: "^/items/(.*)", substitution: "/v2/$1" } }',
      '    service: search-service',
      ...SERVICES,
    ]);
  });

  test('`*` only ends a path after a slash; parameters are identifiers; path and pathRegex exclude each other', async () => {
    assert.deepEqual(
      await problems([
        'routes:',
        '  - name: middle',
        '    match: { path: /a/*/b }',
        '    service: search-service',
        '  - name: glued',
        '    match: { path: /b* }',
        '    service: search-service',
        '  - name: param',
        '    match: { path: "/users/:1d" }',
        '    service: search-service',
        '  - name: both',
        '    match: { path: /d, pathRegex: "^/d$" }',
        '    service: search-service',
        ...SERVICES,
      ]),
      [
        '3:20: routes[0].match.path: `*` may only end the path, after a `/` (e.g. /api/v1/*)',
        '6:20: routes[1].match.path: `*` may only end the path, after a `/` (e.g. /api/v1/*)',
        '9:20: routes[2].match.path: ":1d" is not a parameter name (e.g. /users/:id)',
        '12:35: routes[3].match.pathRegex: use either path or pathRegex, not both',
      ],
    );
  });

  test('every documented path form passes', async () => {
    await accepted([
      'routes:',
      '  - { name: exact, match: { path: /healthz }, service: search-service }',
      '  - { name: prefix, match: { path: /api/v1/* }, service: search-service }',
      '  - { name: all, match: { path: /* }, service: search-service }',
      '  - { name: params, match: { path: "/users/:id/orders/:order_id" }, service: search-service }',
      ...SERVICES,
    ]);
  });

  test('a route limited to an unknown listener is located at the name, with a did-you-mean', async () => {
    assert.deepEqual(
      await problems([
        'listeners:',
        '  - { name: public, port: 0 }',
        'routes:',
        '  - name: a',
        '    listeners: [pubic, public]',
        '    directResponse: { status: 200 }',
        '  - name: b',
        '    listeners: [internal]',
        '    directResponse: { status: 200 }',
      ]),
      [
        '5:17: routes[0].listeners[0]: unknown listener "pubic" (did you mean "public"?)',
        '8:17: routes[1].listeners[0]: unknown listener "internal" (its listeners: public)',
      ],
    );
  });

  test('listeners may not share a port with each other or with the admin API', async () => {
    assert.deepEqual(
      await problems([
        'admin:',
        '  port: 9901',
        'listeners:',
        '  - { name: a, port: 8080 }',
        '  - { name: b, port: 8080 }',
        '  - { name: c, port: 9901 }',
        '  - { name: d, port: 0 }',
        '  - { name: e, port: 0 }',
        '  - { name: f, port: 8081, address: 127.0.0.1 }',
        '  - { name: g, port: 8081, address: 127.0.0.2 }',
        '  - { name: h, port: 8081 }',
      ]),
      [
        '5:22: listeners[1].port: port 8080 on 0.0.0.0 is already taken by listeners[0] (give each a port)',
        '6:22: listeners[2].port: port 9901 on 0.0.0.0 is already taken by admin (give each a port)',
        '11:22: listeners[7].port: port 8081 on 0.0.0.0 is already taken by listeners[5] (give each a port)',
      ],
    );
  });

  test('port 0 (any free port) never conflicts, not even with an admin port 0', async () => {
    await accepted(['admin: { port: 0 }', 'listeners:', '  - { name: a, port: 0 }', '  - { name: b, port: 0 }']);
  });

  test('rewrite.prefix needs match.path', async () => {
    assert.deepEqual(
      await problems([
        'routes:',
        '  - name: a',
        '    match: { pathRegex: "^/a/.*" }',
        '    rewrite: { prefix: /v2/ }',
        '    service: search-service',
        '  - name: b',
        '    rewrite: { prefix: / }',
        '    service: search-service',
        '  - name: c',
        '    match: { path: /c/* }',
        '    rewrite: { prefix: / }',
        '    service: search-service',
        ...SERVICES,
      ]),
      [
        '4:24: routes[0].rewrite.prefix: a prefix rewrite needs match.path (or use rewrite.regex)',
        '7:24: routes[1].rewrite.prefix: a prefix rewrite needs match.path (or use rewrite.regex)',
      ],
    );
  });

  test('an endpoint URL that matches the pattern but does not parse', async () => {
    assert.deepEqual(
      await problems(['services:', '  - name: s', '    endpoints:', '      - url: "http://[::1:8080"']),
      ['4:14: services[0].endpoints[0].url: "http://[::1:8080" is not a URL (e.g. http://127.0.0.1:8081)'],
    );
  });
});

describe('formatting', () => {
  const issue: ConfigIssue = { file: 'gw.yaml', line: 3, column: 7, path: 'routes[0].service', message: 'bad' };

  test('formatIssue prints file:line:col: path: message (hint)', () => {
    assert.equal(formatIssue({ ...issue, hint: 'fix it' }), 'gw.yaml:3:7: routes[0].service: bad (fix it)');
    assert.equal(formatIssue(issue), 'gw.yaml:3:7: routes[0].service: bad');
  });

  test('formatIssue leaves out what is unknown: the position at line 0, the path when empty', () => {
    assert.equal(formatIssue({ ...issue, line: 0, column: 0 }), 'gw.yaml: routes[0].service: bad');
    assert.equal(formatIssue({ ...issue, path: '' }), 'gw.yaml:3:7: bad');
  });

  test('formatPath uses dots for names, brackets for indexes and for keys that are not names', () => {
    assert.equal(formatPath(['routes', 2, 'destinations', 0, 'service']), 'routes[2].destinations[0].service');
    assert.equal(formatPath(['routes', 0, 'match', 'headers', 'x-canary']), 'routes[0].match.headers.x-canary');
    assert.equal(
      formatPath(['services', 0, 'labels', 'app.kubernetes.io/name']),
      'services[0].labels["app.kubernetes.io/name"]',
    );
    assert.equal(formatPath([]), '');
  });

  test('closest ignores case and gives up beyond a typo', () => {
    assert.equal(closest('propety-service', ['search-service', 'property-service']), 'property-service');
    assert.equal(closest('get', ['GET', 'PUT']), 'GET');
    assert.equal(closest('billing', ['search-service', 'property-service']), undefined);
    assert.equal(closest('x', []), undefined);
    assert.equal(didYouMean('adress', ['port', 'address']), 'did you mean "address"?');
    assert.equal(didYouMean('zzzz', ['port', 'address']), undefined);
  });
});
