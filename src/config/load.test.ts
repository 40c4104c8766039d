/**
 * Loading a config end to end from real files: parse with positions, `${ENV}` substitution, schema and
 * reference checks, freezing and hashing. The catalogue of individual mistakes is in issues.test.ts.
 * YAML is written as a list of lines so that `lines[i]` is line i + 1.
 */
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: `${NAME}` here is config text, not a template.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Config } from '../api/config.ts';
import { type ConfigIssue, formatIssue } from './issues.ts';
import { type LoadedConfig, type LoadResult, loadConfigFile, parseConfigTexts, validateConfigObject } from './load.ts';

let dir: string;
let written = 0;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'meshgate-load-'));
});
after(() => rm(dir, { recursive: true, force: true }));

async function write(lines: string[], ext = 'yaml'): Promise<string> {
  const file = join(dir, `config-${++written}.${ext}`);
  await writeFile(file, lines.join('\n') + '\n');
  return file;
}

function loaded(result: LoadResult): LoadedConfig {
  if (!result.ok) assert.fail(`expected a valid config, got:\n${result.issues.map(formatIssue).join('\n')}`);
  return result.value;
}

function rejected(result: LoadResult): ConfigIssue[] {
  assert.equal(result.ok, false, 'expected the config to be rejected');
  return result.ok ? [] : result.issues;
}

/** `line:col: path: message (hint)`, as the CLI prints it without the file name. */
function printed(file: string, issues: ConfigIssue[]): string[] {
  return issues.map((issue) => {
    assert.equal(issue.file, file);
    return formatIssue(issue).slice(file.length + 1);
  });
}

/** `line:col` of the first occurrence of `needle`, for files whose columns are tedious to count by hand. */
function at(lines: string[], needle: string): string {
  const line = lines.findIndex((l) => l.includes(needle));
  assert.notEqual(line, -1, needle);
  return `${line + 1}:${lines[line]!.indexOf(needle) + 1}`;
}

const GATEWAY = [
  '# the config contract of DESIGN.md, minus what the schema does not have yet',
  '$schema: ../schema/meshgate.schema.json',
  'listeners:',
  '  - name: public',
  '    port: 8080',
  'admin:',
  '  port: 9901',
  'services:',
  '  - name: property-service',
  '    endpoints:',
  '      - url: http://127.0.0.1:8081',
  '        labels: { version: v1 }',
  '      - url: http://127.0.0.1:8082',
  '        labels: { version: v2 }',
  '        weight: 3',
  '    subsets:',
  '      v1: { version: v1 }',
  '      v2: { version: v2 }',
  '    timeouts: { connect: 1s, request: 5s }',
  '  - name: search-service',
  '    endpoints:',
  '      - url: http://127.0.0.1:8083',
  'routes:',
  '  - name: property-canary',
  '    match: { path: /api/v1/properties/*, headers: { canary: "true" } }',
  '    destinations: [{ service: property-service, subset: v2, weight: 100 }]',
  '  - name: property-api',
  '    match: { path: /api/v1/properties/*, methods: [GET, POST, PUT, DELETE] }',
  '    destinations:',
  '      - { service: property-service, subset: v1, weight: 90 }',
  '      - { service: property-service, subset: v2, weight: 10 }',
  '  - name: search',
  '    match: { path: /api/v1/search/*, methods: [GET] }',
  '    service: search-service',
  '    rewrite: { prefix: /search/, autoHost: true }',
  '    timeouts: { request: 2s }',
];

const GATEWAY_CONFIG: Config = {
  $schema: '../schema/meshgate.schema.json',
  listeners: [{ name: 'public', port: 8080 }],
  admin: { port: 9901 },
  services: [
    {
      name: 'property-service',
      endpoints: [
        { url: 'http://127.0.0.1:8081', labels: { version: 'v1' } },
        { url: 'http://127.0.0.1:8082', labels: { version: 'v2' }, weight: 3 },
      ],
      subsets: { v1: { version: 'v1' }, v2: { version: 'v2' } },
      timeouts: { connect: '1s', request: '5s' },
    },
    { name: 'search-service', endpoints: [{ url: 'http://127.0.0.1:8083' }] },
  ],
  routes: [
    {
      name: 'property-canary',
      match: { path: '/api/v1/properties/*', headers: { canary: 'true' } },
      destinations: [{ service: 'property-service', subset: 'v2', weight: 100 }],
    },
    {
      name: 'property-api',
      match: { path: '/api/v1/properties/*', methods: ['GET', 'POST', 'PUT', 'DELETE'] },
      destinations: [
        { service: 'property-service', subset: 'v1', weight: 90 },
        { service: 'property-service', subset: 'v2', weight: 10 },
      ],
    },
    {
      name: 'search',
      match: { path: '/api/v1/search/*', methods: ['GET'] },
      service: 'search-service',
      rewrite: { prefix: '/search/', autoHost: true },
      timeouts: { request: '2s' },
    },
  ],
};

describe('a valid config', () => {
  test('loads as written, with its source and a hash', async () => {
    const file = await write(GATEWAY);
    const value = loaded(await loadConfigFile(file, {}));
    assert.deepEqual(value.config, GATEWAY_CONFIG);
    assert.equal(value.source, file);
    assert.match(value.hash, /^[0-9a-f]{16}$/);
  });

  test('is deep-frozen: no part of it can be changed', async () => {
    const { config } = loaded(await loadConfigFile(await write(GATEWAY), {}));
    const parts: object[] = [
      config,
      config.listeners!,
      config.listeners![0]!,
      config.admin!,
      config.services![0]!.endpoints!,
      config.services![0]!.endpoints![0]!.labels!,
      config.services![0]!.subsets!.v1!,
      config.routes![0]!.match!.headers!,
      config.routes![1]!.destinations![1]!,
      config.routes![1]!.match!.methods!,
    ];
    for (const part of parts) assert.ok(Object.isFrozen(part), JSON.stringify(part));
    // ESM is strict mode: writes to frozen objects throw instead of being ignored.
    assert.throws(() => {
      (config.listeners![0] as { port: number }).port = 1;
    }, TypeError);
    assert.throws(() => (config.routes as unknown[]).push({}), TypeError);
    assert.throws(() => {
      (config.services![0]!.endpoints![0]!.labels as Record<string, string>).version = 'v9';
    }, TypeError);
  });

  test('the hash depends on the content, not on the file, its comments or its layout', async () => {
    const first = loaded(await loadConfigFile(await write(GATEWAY), {}));
    const again = loaded(await loadConfigFile(await write(GATEWAY), {}));
    const relaid = loaded(
      await loadConfigFile(
        await write([
          '$schema: "../schema/meshgate.schema.json"  # same value, quoted',
          'listeners: [{ name: public, port: 8080 }]',
          'admin: { port: 9901 }',
          ...GATEWAY.slice(7),
        ]),
        {},
      ),
    );
    assert.equal(again.hash, first.hash);
    assert.equal(relaid.hash, first.hash);

    const changed = loaded(
      await loadConfigFile(await write(GATEWAY.map((l) => l.replace('request: 2s', 'request: 3s'))), {}),
    );
    assert.notEqual(changed.hash, first.hash);
  });

  test('examples/gateway.yaml is valid', async () => {
    const file = fileURLToPath(new URL('../../examples/gateway.yaml', import.meta.url));
    const { config } = loaded(await loadConfigFile(file, {}));
    assert.deepEqual(
      config.routes?.map((r) => r.name),
      ['property-canary', 'property-api', 'search', 'health'],
    );
  });

  test('an empty file is an empty config', async () => {
    const { config } = loaded(await loadConfigFile(await write(['# nothing yet']), {}));
    assert.deepEqual(config, {});
  });
});

describe('reading the file', () => {
  test('a missing file is one issue without a position', async () => {
    const file = join(dir, 'does-not-exist.yaml');
    assert.deepEqual(rejected(await loadConfigFile(file, {})), [
      { file, line: 0, column: 0, path: '', message: 'file not found' },
    ]);
  });

  test('a directory is one issue that says why', async () => {
    const issues = rejected(await loadConfigFile(dir, {}));
    assert.equal(issues.length, 1);
    assert.match(issues[0]!.message, /EISDIR/);
    assert.equal(issues[0]!.line, 0);
  });
});

describe('YAML syntax errors', () => {
  test('are located, and stop the load before the schema is checked', async () => {
    const file = await write([
      'listeners:',
      '  - name: public',
      '    port: 8080',
      '    colour: red',
      '  - name: admin',
      '   port: 8081',
    ]);
    // `colour` is an unknown field, but with broken structure nothing past the syntax error is trusted.
    assert.deepEqual(printed(file, rejected(await loadConfigFile(file, {}))), [
      '6:1: Sequence item without - indicator',
    ]);
  });

  test('an unclosed quote is reported where the parser runs out of file', async () => {
    const file = await write(['listeners:', '  - name: "public', '    port: 8080']);
    assert.deepEqual(printed(file, rejected(await loadConfigFile(file, {}))), ['4:1: Missing closing "quote']);
  });

  test('a duplicate key is located at its second occurrence', async () => {
    const file = await write(['listeners:', '  - name: public', '    port: 8080', '    port: 8081']);
    assert.deepEqual(printed(file, rejected(await loadConfigFile(file, {}))), ['4:5: Map keys must be unique']);
  });

  test('tabs used for indentation', async () => {
    const file = await write(['listeners:', '\t- name: public']);
    assert.deepEqual(printed(file, rejected(await loadConfigFile(file, {}))), [
      '2:1: Tabs are not allowed as indentation',
    ]);
  });

  test('an alias whose anchor does not exist is located at the alias', async () => {
    const file = await write(['defaults: &d { port: 8080 }', 'listeners:', '  - *dflt']);
    assert.deepEqual(printed(file, rejected(await loadConfigFile(file, {}))), [
      '3:5: alias *dflt has no anchor &dflt before it (quote the value if the * is meant literally, e.g. "*.example.com")',
    ]);
  });

  test('an unquoted wildcard host reads as an alias, and the hint says to quote it', async () => {
    const file = await write([
      'routes:',
      '  - name: tenants',
      '    match: { hosts: [*.example.com] }',
      '    directResponse: { status: 200 }',
    ]);
    assert.deepEqual(printed(file, rejected(await loadConfigFile(file, {}))), [
      '3:22: alias *.example.com has no anchor &.example.com before it (quote the value if the * is meant literally, e.g. "*.example.com")',
    ]);
  });

  test('an alias bomb is refused, not expanded', async () => {
    const file = await write([
      'a: &a [x, x, x, x, x, x, x, x, x, x]',
      'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]',
      'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]',
      'd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]',
    ]);
    const issues = rejected(await loadConfigFile(file, {}));
    assert.equal(issues.length, 1);
    assert.match(issues[0]!.message, /alias count/);
  });
});

describe('${NAME} environment substitution', () => {
  const LISTENER = [
    'listeners:',
    '  - name: public-${MG_ZONE}',
    '    port: ${MG_PORT}',
    '    address: "${MG_ADDRESS}"',
  ];

  test('takes values from the environment, anywhere in a string; a port becomes an integer', async () => {
    const file = await write(LISTENER);
    const { config } = loaded(await loadConfigFile(file, { MG_ZONE: 'eu1', MG_PORT: '8080', MG_ADDRESS: '10.0.0.1' }));
    assert.deepEqual(config.listeners, [{ name: 'public-eu1', port: 8080, address: '10.0.0.1' }]);
    assert.equal(typeof config.listeners![0]!.port, 'number');
  });

  test('an unset variable is one located issue with a hint, not also a follow-on schema error', async () => {
    const file = await write(LISTENER);
    assert.deepEqual(rejected(await loadConfigFile(file, { MG_ZONE: 'eu1' })), [
      {
        file,
        line: 3,
        column: 11,
        path: 'listeners[0].port',
        message: 'environment variable MG_PORT is not set',
        hint: 'export MG_PORT=... before starting, or write the value in the file',
      },
      {
        file,
        line: 4,
        column: 14,
        path: 'listeners[0].address',
        message: 'environment variable MG_ADDRESS is not set',
        hint: 'export MG_ADDRESS=... before starting, or write the value in the file',
      },
    ]);
  });

  test('a set variable that is not a number, used as a port, is a type error at the reference', async () => {
    const file = await write(LISTENER);
    const issues = rejected(await loadConfigFile(file, { MG_ZONE: 'eu1', MG_PORT: 'http', MG_ADDRESS: '10.0.0.1' }));
    assert.deepEqual(printed(file, issues), ['3:11: listeners[0].port: expected integer, got "http"']);
  });

  test('`$${` writes a literal `${`, whether or not the variable exists', async () => {
    const file = await write([
      'routes:',
      '  - name: r',
      '    directResponse: { status: 200, body: "$${MG_SET} $${MG_UNSET} ${MG_SET}" }',
    ]);
    const { config } = loaded(await loadConfigFile(file, { MG_SET: 'x' }));
    assert.equal(config.routes?.[0]?.directResponse?.body, '${MG_SET} ${MG_UNSET} x');
  });

  test('a value from the environment is used as is, not expanded again', async () => {
    const file = await write(['routes:', '  - name: r', '    directResponse: { status: 200, body: "${MG_OUTER}" }']);
    const { config } = loaded(await loadConfigFile(file, { MG_OUTER: '${MG_INNER}', MG_INNER: 'leak' }));
    assert.equal(config.routes?.[0]?.directResponse?.body, '${MG_INNER}');
  });
});

describe('several mistakes', () => {
  test('are all reported in one pass, each with its line and column, in file order', async () => {
    const file = await write([
      'listeners:',
      '  - name: public',
      '    port: ${MG_TEST_PORT}',
      '    adress: 127.0.0.1',
      'services:',
      '  - name: property-service',
      '    endpoints:',
      '      - url: http://127.0.0.1:8081',
      '        labels: { version: v1 }',
      '    subsets:',
      '      v1: { version: v1 }',
      '    timeouts: { connect: 1 sec }',
      'routes:',
      '  - name: api',
      '    match: { path: /api/*, methods: [GETT] }',
      '    destinations:',
      '      - { service: property-service, subset: v1, weight: 90 }',
      '      - { service: propety-service, weight: 0 }',
      '  - name: api',
      '    match: { pathRegex: "(" }',
      '    service: property-service',
    ]);
    assert.deepEqual(printed(file, rejected(await loadConfigFile(file, {}))), [
      '3:11: listeners[0].port: environment variable MG_TEST_PORT is not set (export MG_TEST_PORT=... before starting, or write the value in the file)',
      '4:5: listeners[0].adress: unknown field "adress" (did you mean "address"?)',
      '12:26: services[0].timeouts.connect: "1 sec" is not a duration (write a number with a unit: 250ms, 5s, 1m30s, 1h; 0 disables)',
      '15:38: routes[0].match.methods[0]: "GETT" is not one of GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, CONNECT, TRACE (did you mean "GET"?)',
      '17:7: routes[0].destinations: weights sum to 90, not 100 (make them add up to 100)',
      '18:20: routes[0].destinations[1].service: unknown service "propety-service" (did you mean "property-service"?)',
      '19:11: routes[1].name: duplicate route name "api" (first at routes[0])',
      '20:25: routes[1].match.pathRegex: invalid regular expression: /(/: Unterminated group',
    ]);
  });

  test('shapes the schema rejected do not break the reference checks', async () => {
    const file = await write([
      'services:',
      '  - { name: s, endpoints: [] }',
      'routes:',
      '  - name: list-path',
      '    match: { path: [a] }',
      '    service: s',
      '  - name: map-path',
      '    match: { path: { a: 1 } }',
      '    service: s',
      '  - name: null-destination',
      '    destinations: [null, { service: s }]',
      '  - name: text-weight',
      '    destinations: [{ service: s, weight: half }, { service: s, weight: 50 }]',
    ]);
    const lines = printed(file, rejected(await loadConfigFile(file, {})));
    assert.deepEqual(lines, [
      '5:20: routes[0].match.path: expected string, got a list',
      '8:20: routes[1].match.path: expected string, got a map',
      '11:20: routes[2].destinations[0]: expected object, got null',
      '13:42: routes[3].destinations[0].weight: expected integer, got "half"',
    ]);
  });
});

describe('JSON input', () => {
  test('a JSON file loads like the same YAML, to the same hash', async () => {
    const yaml = loaded(await loadConfigFile(await write(GATEWAY), {}));
    const json = loaded(await loadConfigFile(await write([JSON.stringify(GATEWAY_CONFIG, null, 2)], 'json'), {}));
    assert.deepEqual(json.config, GATEWAY_CONFIG);
    assert.equal(json.hash, yaml.hash);
  });

  test('mistakes in a JSON file are located in it', async () => {
    const lines = [
      '{',
      '  "listeners": [{ "name": "public", "port": "eighty" }],',
      '  "routes": [',
      '    { "name": "r", "service": "nope" }',
      '  ]',
      '}',
    ];
    const file = await write(lines, 'json');
    assert.deepEqual(printed(file, rejected(await loadConfigFile(file, {}))), [
      `${at(lines, '"eighty"')}: listeners[0].port: expected integer, got "eighty"`,
      `${at(lines, '"nope"')}: routes[0].service: unknown service "nope"`,
    ]);
  });

  test('a JSON syntax error is located', async () => {
    const lines = ['{', '  "listeners": [', '    { "name": "public" "port": 8080 }', '  ]', '}'];
    const file = await write(lines, 'json');
    const issues = printed(file, rejected(await loadConfigFile(file, {})));
    assert.equal(issues[0], `${at(lines, '"port"')}: Unexpected double-quoted-scalar token`);
  });
});

describe('validateConfigObject', () => {
  test('accepts an object as a file would be accepted: same config, same hash, frozen', async () => {
    const fromFile = loaded(await loadConfigFile(await write(GATEWAY), {}));
    const value = loaded(validateConfigObject(structuredClone(GATEWAY_CONFIG), 'admin-api'));
    assert.deepEqual(value.config, GATEWAY_CONFIG);
    assert.equal(value.hash, fromFile.hash);
    assert.equal(value.source, 'admin-api');
    assert.ok(Object.isFrozen(value.config.services![0]!.endpoints![0]));
  });

  test('leaves the caller’s object alone', () => {
    const input = { listeners: [{ name: 'public', port: '8080' }] };
    const value = loaded(validateConfigObject(input, 'admin-api'));
    assert.equal(value.config.listeners![0]!.port, 8080);
    assert.equal(input.listeners[0]!.port, '8080');
    assert.ok(!Object.isFrozen(input));
  });

  test('reports every issue by path, without a position (there is no file)', () => {
    const issues = rejected(
      validateConfigObject(
        { listeners: [{ name: 'public', port: 'x', adress: '::1' }], routes: [{ name: 'r', service: 'nope' }] },
        'admin-api',
      ),
    );
    assert.deepEqual(issues.map(formatIssue), [
      'admin-api: listeners[0].port: expected integer, got "x"',
      'admin-api: listeners[0].adress: unknown field "adress" (did you mean "address"?)',
      'admin-api: routes[0].service: unknown service "nope"',
    ]);
  });

  test('does not substitute ${NAME}: an object is already final', () => {
    const value = loaded(
      validateConfigObject({ routes: [{ name: 'r', directResponse: { status: 200, body: '${HOME}' } }] }, 'api'),
    );
    assert.equal(value.config.routes?.[0]?.directResponse?.body, '${HOME}');
  });

  test('null and undefined are the empty config', () => {
    assert.deepEqual(loaded(validateConfigObject(null, 'api')).config, {});
    assert.deepEqual(loaded(validateConfigObject(undefined, 'api')).config, {});
  });
});

describe('a config in several files (a control plane directory)', () => {
  const services = ['services:', '  - name: search-service', '    endpoints: [{ url: "http://127.0.0.1:8083" }]'];
  const routes = [
    'routes:',
    '  - name: search',
    '    service: search-service',
    '  - name: typo',
    '    service: serch-service',
  ];

  test('lists are merged in file order; each issue points into its own file, with that file’s path', () => {
    const issues = rejected(
      parseConfigTexts(
        [
          { file: 'a.yaml', text: services.join('\n') },
          { file: 'b.yaml', text: routes.join('\n') },
          { file: 'c.yaml', text: 'routes:\n  - name: search\n    service: search-service\n' },
        ],
        'dir',
        {},
      ),
    );
    assert.deepEqual(issues.map(formatIssue), [
      'b.yaml:5:14: routes[1].service: unknown service "serch-service" (did you mean "search-service"?)',
      'c.yaml:2:11: routes[0].name: duplicate route name "search" (first at routes[0])',
    ]);
  });

  test('a valid split config equals the same config in one file: same hash', () => {
    const split = loaded(
      parseConfigTexts(
        [
          { file: 'a.yaml', text: services.join('\n') },
          { file: 'b.yaml', text: routes.slice(0, 3).join('\n') },
        ],
        'dir',
        {},
      ),
    );
    const whole = loaded(
      parseConfigTexts([{ file: 'x.yaml', text: [...services, ...routes.slice(0, 3)].join('\n') }], 'x', {}),
    );
    assert.equal(split.hash, whole.hash);
    assert.equal(split.source, 'dir');
  });

  test('a section other than the lists may be set in one file only; a file that is not a map is an issue', () => {
    const issues = rejected(
      parseConfigTexts(
        [
          { file: 'a.yaml', text: 'admin: { port: 9901 }\n' },
          { file: 'b.yaml', text: 'listeners: []\nadmin: { port: 9902 }\n' },
          { file: 'c.yaml', text: '- oops\n' },
        ],
        'dir',
        {},
      ),
    );
    assert.deepEqual(issues.map(formatIssue), [
      'b.yaml:2:1: admin: admin is already set in a.yaml (set it in one file only)',
      'c.yaml:1:1: expected a map of config sections, got a list',
    ]);
  });

  test('no files: the empty config', () => {
    assert.deepEqual(loaded(parseConfigTexts([], 'empty-dir', {})).config, {});
  });
});
