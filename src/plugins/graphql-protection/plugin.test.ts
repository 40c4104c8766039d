/**
 * graphql-protection in front of a real GraphQL server (graphql-js behind graphql-http): refused
 * queries never reach the server (counted there), accepted ones arrive as sent, and a hash-only
 * persisted query arrives with its full query inserted.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { type GraphqlServer, LISTINGS_SDL, startGraphqlServer } from '../../../test/helpers/graphql-server.ts';
import { formatIssue } from '../../config/issues.ts';
import { validateConfigObject } from '../../config/load.ts';
import { startGateway, type TestGateway } from '../../testing/servers.ts';
import { createPluginCatalog } from '../index.ts';

const sha = (q: string) => createHash('sha256').update(q).digest('hex');
const PERSISTED = 'query Cheap { listings(city: "Paris", limit: 1) { id } }';
const FROM_FILE = 'query FromFile { listing(id: "3") { id city } }';

const dir = mkdtempSync(join(tmpdir(), 'meshgate-gqlprot-'));
const schemaFile = join(dir, 'schema.graphql');
writeFileSync(schemaFile, LISTINGS_SDL);
const manifest = join(dir, 'persisted.json');
writeFileSync(
  manifest,
  JSON.stringify({
    format: 'apollo-persisted-query-manifest',
    version: 1,
    operations: [{ id: sha(FROM_FILE), name: 'FromFile', type: 'query', body: FROM_FILE }],
  }),
);

describe('graphql-protection plugin', () => {
  let upstream: GraphqlServer;
  let gw: TestGateway;
  before(async () => {
    upstream = await startGraphqlServer();
    gw = await startGateway({
      services: [{ name: 'gql', endpoints: [{ url: upstream.url }] }],
      routes: [
        {
          name: 'graphql',
          match: { path: '/graphql' },
          service: 'gql',
          plugins: [
            {
              name: 'graphql-protection',
              config: {
                maxDepth: 4,
                maxAliases: 2,
                maxCost: 100,
                fieldCosts: { 'Query.search': 10, 'Owner.name': 5 },
                schema: schemaFile,
                persistedQueries: { file: manifest, queries: { [sha(PERSISTED)]: PERSISTED } },
                maxBodyBytes: 2048,
              },
            },
          ],
        },
        {
          name: 'strict',
          match: { path: '/strict/graphql' },
          service: 'gql',
          rewrite: { prefix: '/graphql' },
          plugins: [
            {
              name: 'graphql-protection',
              config: {
                introspection: true,
                persistedQueries: { only: true, queries: { [sha(PERSISTED)]: PERSISTED } },
              },
            },
          ],
        },
      ],
    });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  async function post(body: unknown, path = '/graphql', contentType = 'application/json') {
    const res = await request(`${gw.url()}${path}`, {
      method: 'POST',
      headers: { 'content-type': contentType },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.body.text();
    return {
      status: res.statusCode,
      contentType: res.headers['content-type'],
      json: text.startsWith('{') || text.startsWith('[') ? JSON.parse(text) : {},
      text,
    };
  }

  async function get(params: Record<string, string>, path = '/graphql') {
    const res = await request(`${gw.url()}${path}?${new URLSearchParams(params)}`);
    const text = await res.body.text();
    return { status: res.statusCode, contentType: res.headers['content-type'], json: JSON.parse(text), text };
  }

  /** Sends a request that must be refused with `code`, and checks the server never saw it. */
  async function refused(
    send: () => Promise<{
      status: number;
      contentType: string | string[] | undefined;
      json: { code: string; detail: string; requestId: string };
    }>,
    code: string,
  ) {
    const before = upstream.requests;
    const r = await send();
    assert.equal(r.status, 400, JSON.stringify(r.json));
    assert.equal(r.contentType, 'application/problem+json');
    assert.equal(r.json.code, code);
    assert.ok(r.json.requestId, 'the problem names the request');
    assert.equal(upstream.requests, before, 'the GraphQL server never got the request');
    return r.json.detail;
  }

  it('passes a query within every limit, as sent', async () => {
    const query = 'query Ok { listings(city: "Lyon", limit: 2) { id owner { name } } }';
    const r = await post({ query, operationName: 'Ok' });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.data.listings, [
      { id: '1', owner: { name: 'owner-1' } },
      { id: '2', owner: { name: 'owner-2' } },
    ]);
    assert.equal(upstream.operations.at(-1)!.query, query);
  });

  it('refuses a query nested deeper than maxDepth, fragments included', async () => {
    const deep = '{ listings(city: "x") { owner { listings { owner { name } } } } }';
    assert.match(
      await refused(() => post({ query: deep }), 'MG_GRAPHQL_TOO_DEEP'),
      /nests 5 fields deep; this route accepts 4/,
    );
    const viaFragments = `
      query Q { listings(city: "x") { ...L } }
      fragment L on Listing { owner { ...O } }
      fragment O on Owner { listings { owner { name } } }`;
    await refused(() => post({ query: viaFragments }), 'MG_GRAPHQL_TOO_DEEP');
    await refused(() => get({ query: deep }), 'MG_GRAPHQL_TOO_DEEP');
  });

  it('refuses fragments that spread each other in a cycle', async () => {
    const cycle = `
      query Q { listings(city: "x") { ...A } }
      fragment A on Listing { owner { listings { ...B } } }
      fragment B on Listing { ...A }`;
    assert.match(await refused(() => post({ query: cycle }), 'MG_GRAPHQL_INVALID'), /spreads itself/);
  });

  it('refuses more aliases than maxAliases', async () => {
    const query = '{ a: listing(id: "1") { id } b: listing(id: "2") { id } c: listing(id: "3") { id } }';
    assert.match(
      await refused(() => post({ query }), 'MG_GRAPHQL_TOO_MANY_ALIASES'),
      /3 aliases; this route accepts 2/,
    );
  });

  it('counts cost by field weights and list arguments, literal or variable', async () => {
    // search: 10 + first × (id 1 + owner (1 + name 5)) = 10 + 7 × first
    const query = 'query S($n: Int) { search(term: "x", first: $n) { id owner { name } } }';
    const ok = await post({ query, variables: { n: 12 } });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.data.search.length, 12);
    const detail = await refused(() => post({ query, variables: { n: 13 } }), 'MG_GRAPHQL_TOO_COSTLY');
    assert.match(detail, /costs 101; this route accepts 100/);
    await refused(() => post({ query: '{ search(term: "x", first: 100) { id } }' }), 'MG_GRAPHQL_TOO_COSTLY');
  });

  it('refuses introspection unless allowed, and lets __typename through', async () => {
    await refused(() => post({ query: '{ __schema { types { name } } }' }), 'MG_GRAPHQL_INTROSPECTION');
    await refused(
      () => post({ query: '{ listing(id: "1") { __type: id } __type(name: "Listing") { name } }' }),
      'MG_GRAPHQL_INTROSPECTION',
    );
    const typename = await post({ query: '{ listing(id: "1") { __typename id } }' });
    assert.equal(typename.status, 200, typename.text);
    const strict = await post(
      { query: PERSISTED, extensions: { persistedQuery: { version: 1, sha256Hash: sha(PERSISTED) } } },
      '/strict/graphql',
    );
    assert.equal(strict.status, 200, strict.text);
  });

  it('answers a hash-only persisted query from the list, inserting the query it names', async () => {
    const r = await post({ extensions: { persistedQuery: { version: 1, sha256Hash: sha(PERSISTED) } } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { data: { listings: [{ id: '1' }] } });
    assert.equal(upstream.operations.at(-1)!.query, PERSISTED);
    const fromFile = await get({
      extensions: JSON.stringify({ persistedQuery: { version: 1, sha256Hash: sha(FROM_FILE) } }),
    });
    assert.equal(fromFile.status, 200, fromFile.text);
    assert.deepEqual(fromFile.json, { data: { listing: { id: '3', city: 'Lyon' } } });
    assert.equal(upstream.operations.at(-1)!.query, FROM_FILE);
  });

  it('refuses an unknown hash, and any query off the list where only persisted ones are accepted', async () => {
    const unknown = 'f'.repeat(64);
    assert.match(
      await refused(
        () => post({ extensions: { persistedQuery: { version: 1, sha256Hash: unknown } } }),
        'MG_GRAPHQL_NOT_PERSISTED',
      ),
      /no query with hash f+ is on this route's persisted-query list/,
    );
    await refused(() => post({ query: '{ listing(id: "1") { id } }' }, '/strict/graphql'), 'MG_GRAPHQL_NOT_PERSISTED');
    const listed = await post({ query: PERSISTED }, '/strict/graphql');
    assert.equal(listed.status, 200, listed.text);
    await refused(
      () => post({ query: PERSISTED, extensions: { persistedQuery: { version: 1, sha256Hash: unknown } } }),
      'MG_GRAPHQL_INVALID',
    );
  });

  it('refuses what is not a GraphQL request, and bodies over maxBodyBytes', async () => {
    await refused(() => post('{not json'), 'MG_GRAPHQL_INVALID');
    await refused(() => post({ query: '{ listing(id: ' }), 'MG_GRAPHQL_INVALID');
    await refused(() => get({}), 'MG_GRAPHQL_INVALID');
    const passed = upstream.requests;
    const graphqlBody = await post('{ listing(id: "2") { id } }', '/graphql', 'application/graphql');
    assert.equal(graphqlBody.json.code, undefined, graphqlBody.text);
    assert.equal(upstream.requests, passed + 1, 'an application/graphql body was checked and passed on');
    await refused(
      () => post('{ __schema { types { name } } }', '/graphql', 'application/graphql'),
      'MG_GRAPHQL_INTROSPECTION',
    );
    const before = upstream.requests;
    const big = await post({ query: `{ listing(id: "${'x'.repeat(3000)}") { id } }` });
    assert.equal(big.status, 413);
    assert.equal(upstream.requests, before);
  });

  it('checks a batch entry by entry', async () => {
    // graphql-http runs no batches (it answers 400 Missing query): what matters is that it got this one.
    const before = upstream.requests;
    const ok = await post([{ query: '{ listing(id: "1") { id } }' }, { query: '{ listing(id: "2") { id } }' }]);
    assert.equal(ok.json.code, undefined, ok.text);
    assert.equal(upstream.requests, before + 1);
    await refused(
      () => post([{ query: '{ listing(id: "1") { id } }' }, { query: '{ __schema { types { name } } }' }]),
      'MG_GRAPHQL_INTROSPECTION',
    );
  });

  it('counts refusals by route and reason', async () => {
    const res = await request(`${gw.adminUrl}/metrics`);
    const text = await res.body.text();
    assert.match(text, /gateway_graphql_refused_total\{route="graphql",reason="MG_GRAPHQL_TOO_DEEP"\} 3/);
  });
});

describe('graphql-protection config checks', () => {
  const issues = (config: Record<string, unknown>) => {
    const result = validateConfigObject(
      {
        services: [{ name: 'gql', endpoints: [{ url: 'http://127.0.0.1:1' }] }],
        routes: [{ name: 'g', service: 'gql', plugins: [{ name: 'graphql-protection', config }] }],
      },
      'test',
      { catalog: createPluginCatalog() },
    );
    return result.ok ? [] : result.issues.map(formatIssue);
  };

  it('refuses a hash that is not its query’s, files it cannot read, and a schema that does not build', () => {
    assert.match(
      issues({ persistedQueries: { queries: { ['a'.repeat(64)]: '{ x }' } } }).join('\n'),
      /persistedQueries\.queries: a+ is not the sha256 of its query/,
    );
    assert.match(
      issues({ persistedQueries: { file: join(dir, 'nope.json') } }).join('\n'),
      /persistedQueries\.file: cannot read .*nope\.json: no such file/,
    );
    const badSchema = join(dir, 'bad.graphql');
    writeFileSync(badSchema, 'type Query { x: Nope }');
    assert.match(issues({ schema: badSchema }).join('\n'), /config\.schema: .*Nope/);
    assert.deepEqual(issues({ schema: schemaFile, persistedQueries: { file: manifest } }), []);
  });
});
