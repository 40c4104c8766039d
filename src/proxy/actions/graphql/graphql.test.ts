/**
 * The graphql action over real sockets: REST calls become GraphQL operations run by a real GraphQL
 * server (graphql-js behind graphql-http); variables from the path, query, headers and JSON body,
 * coerced to their declared types; GraphQL errors mapped to statuses; documents checked at config load.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { request } from 'undici';
import { type GraphqlServer, LISTINGS_SDL, startGraphqlServer } from '../../../../test/helpers/graphql-server.ts';
import { formatIssue } from '../../../config/issues.ts';
import { loadConfigText, validateConfigObject } from '../../../config/load.ts';
import { startGateway, startUpstream, type TestGateway, type Upstream } from '../../../testing/servers.ts';

const dir = mkdtempSync(join(tmpdir(), 'meshgate-graphql-'));
const schemaFile = join(dir, 'schema.graphql');
writeFileSync(schemaFile, LISTINGS_SDL);

const API_KEY = 'graphql-consumer-key-0123456789abcdef';
const JWT_SECRET = 'graphql-jwt-secret-0123456789abcdef0123';

const LISTINGS = `query Listings($city: String!, $limit: Int, $maxPrice: Float, $furnished: Boolean, $ids: [ID!], $sort: Sort) {
  listings(city: $city, limit: $limit, maxPrice: $maxPrice, furnished: $furnished, ids: $ids, sort: $sort) { id price }
}`;

describe('graphql action', () => {
  let upstream: GraphqlServer;
  let gw: TestGateway;
  before(async () => {
    upstream = await startGraphqlServer();
    const listingsVariables = {
      city: '$(params.city)',
      limit: '$(query.limit)',
      maxPrice: '$(query.max)',
      furnished: '$(headers.x-furnished)',
      ids: '$(query.ids)',
      sort: '$(query.sort)',
    };
    const consumerListings =
      'query Mine($city: String!, $limit: Int) { listings(city: $city, limit: $limit) { id city } }';
    gw = await startGateway({
      services: [{ name: 'search', endpoints: [{ url: upstream.url }] }],
      consumers: [
        { name: 'Oslo', credentials: [{ type: 'api-key', key: API_KEY }] },
        { name: 'partner', credentials: [{ type: 'jwt', issuer: 'partner', secret: JWT_SECRET }] },
      ],
      routes: [
        {
          name: 'by-consumer',
          match: { path: '/mine/by-key' },
          plugins: [{ name: 'key-auth' }],
          graphql: { service: 'search', query: consumerListings, variables: { city: '$(consumer.name)' } },
        },
        {
          name: 'by-claims',
          match: { path: '/mine/by-token' },
          plugins: [{ name: 'jwt' }],
          graphql: {
            service: 'search',
            query: consumerListings,
            variables: { city: '$(claims.home.city)', limit: '$(claims.n)' },
            schema: schemaFile,
          },
        },
        {
          name: 'listings',
          match: { path: '/api/v1/listings/:city', methods: ['GET'] },
          graphql: { service: 'search', query: LISTINGS, variables: listingsVariables, schema: schemaFile },
        },
        {
          name: 'listings-no-schema',
          match: { path: '/plain/listings/:city', methods: ['GET'] },
          graphql: { service: 'search', query: LISTINGS, variables: listingsVariables },
        },
        {
          name: 'create',
          match: { path: '/api/v1/listings', methods: ['POST'] },
          graphql: {
            service: 'search',
            query: 'mutation Create($input: ListingInput!) { createListing(input: $input) { id city price } }',
            variables: { input: { city: '$(body.city)', price: '$(body.price)', tags: '$(body.tags)' } },
            schema: schemaFile,
          },
        },
        {
          name: 'create-whole',
          match: { path: '/api/v1/listings-json', methods: ['POST'] },
          graphql: {
            service: 'search',
            query: 'mutation Create($input: ListingInput!) { createListing(input: $input) { id city price } }',
            variables: { input: '$(query.input)' },
            schema: schemaFile,
          },
        },
        {
          name: 'one',
          match: { path: '/api/v1/listing/:id' },
          graphql: {
            service: 'search',
            query: 'query A { secret } query One($id: ID!) { listing(id: $id) { id city } }',
            operationName: 'One',
            variables: { id: '$(params.id)' },
          },
        },
        { name: 'secret', match: { path: '/secret' }, graphql: { service: 'search', query: '{ secret }' } },
        { name: 'teapot', match: { path: '/teapot' }, graphql: { service: 'search', query: '{ teapot }' } },
        { name: 'broken', match: { path: '/broken' }, graphql: { service: 'search', query: '{ broken }' } },
        {
          name: 'flaky',
          match: { path: '/flaky' },
          graphql: { service: 'search', query: '{ flaky { id city } }' },
        },
        {
          name: 'wrong-path',
          match: { path: '/wrong-path' },
          graphql: { service: 'search', path: '/elsewhere', query: '{ secret }' },
        },
      ],
    });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  async function call(path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}) {
    const res = await request(`${gw.url()}${path}`, init);
    const text = await res.body.text();
    return { status: res.statusCode, headers: res.headers, text, json: text ? JSON.parse(text) : undefined };
  }

  it('sends the operation with variables from the path and query, typed by the schema', async () => {
    const r = await call('/api/v1/listings/Paris?limit=2&max=150.5&ids=1,2&sort=PRICE_DESC', {
      headers: { 'x-furnished': 'true' },
    });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, {
      data: {
        listings: [
          { id: '1', price: 100 },
          { id: '2', price: 200 },
        ],
      },
    });
    assert.match(String(r.headers['content-type']), /^application\/json/);
    const op = upstream.operations.at(-1)!;
    assert.equal(op.operationName, 'Listings');
    assert.equal(op.query, LISTINGS);
    assert.deepEqual(op.variables, {
      city: 'Paris',
      limit: 2,
      maxPrice: 150.5,
      furnished: true,
      ids: ['1', '2'],
      sort: 'PRICE_DESC',
    });
  });

  it('takes variables from the consumer and from JWT claims (dot paths, a number kept a number)', async () => {
    const byKey = await call('/mine/by-key', { headers: { 'x-api-key': API_KEY } });
    assert.equal(byKey.status, 200, byKey.text);
    assert.equal(byKey.json.data.listings[0].city, 'Oslo');
    assert.deepEqual(upstream.operations.at(-1)!.variables, { city: 'Oslo' });
    const token = await new SignJWT({ sub: 'u-1', home: { city: 'Bergen' }, n: 2 })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('partner')
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(JWT_SECRET));
    const byToken = await call('/mine/by-token', { headers: { authorization: `Bearer ${token}` } });
    assert.equal(byToken.status, 200, byToken.text);
    assert.equal(byToken.json.data.listings.length, 2);
    assert.deepEqual(upstream.operations.at(-1)!.variables, { city: 'Bergen', limit: 2 });
    const before = upstream.requests;
    assert.equal((await call('/mine/by-key')).status, 401);
    assert.equal(upstream.requests, before, 'no consumer, no call');
  });

  it('leaves out a variable whose reference has no value', async () => {
    const r = await call('/api/v1/listings/Nice');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.data.listings.length, 3);
    assert.deepEqual(upstream.operations.at(-1)!.variables, { city: 'Nice' });
  });

  it('coerces by the declared type name without a schema, and refuses what does not fit with 400', async () => {
    const ok = await call('/plain/listings/Lyon?limit=1&ids=[4,5]', { headers: { 'x-furnished': 'false' } });
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(upstream.operations.at(-1)!.variables, {
      city: 'Lyon',
      limit: 1,
      furnished: false,
      ids: ['4', '5'],
    });
    const before = upstream.requests;
    const bad = await call('/plain/listings/Lyon?limit=ten');
    assert.equal(bad.status, 400);
    assert.equal(bad.json.code, 'MG_GRAPHQL_VARIABLE');
    assert.match(bad.json.detail, /\$limit: "ten" is not an Int/);
    assert.match(bad.json.detail, /\$\(query\.limit\)/);
    assert.ok(bad.json.requestId);
    assert.equal(upstream.requests, before, 'nothing reached the GraphQL server');
  });

  it('refuses a value the schema does not accept (an unknown enum value) with 400 naming the variable', async () => {
    const before = upstream.requests;
    const r = await call('/api/v1/listings/Paris?sort=CHEAPEST');
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.code, 'MG_GRAPHQL_VARIABLE');
    assert.match(r.json.detail, /\$sort/);
    assert.equal(upstream.requests, before);
  });

  it('builds an input object from the JSON body, coercing its fields by the schema', async () => {
    const r = await call('/api/v1/listings', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ city: 'Rome', price: '250', tags: ['x', 'y'] }),
    });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { data: { createListing: { id: '9', city: 'Rome', price: 250 } } });
    assert.deepEqual(upstream.operations.at(-1)!.variables, { input: { city: 'Rome', price: 250, tags: ['x', 'y'] } });
  });

  it('reads an input object given as JSON text', async () => {
    const input = encodeURIComponent(JSON.stringify({ city: 'Oslo', price: 80 }));
    const r = await call(`/api/v1/listings-json?input=${input}`, { method: 'POST' });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(upstream.operations.at(-1)!.variables, { input: { city: 'Oslo', price: 80 } });
  });

  it('refuses a body that is not JSON and a required variable with no value', async () => {
    const notJson = await call('/api/v1/listings', { method: 'POST', body: 'city=Rome' });
    assert.equal(notJson.status, 400);
    assert.equal(notJson.json.code, 'MG_BAD_REQUEST');
    const missing = await call('/api/v1/listings', { method: 'POST', body: JSON.stringify({ price: 3 }) });
    assert.equal(missing.status, 400, missing.text);
    assert.equal(missing.json.code, 'MG_GRAPHQL_VARIABLE');
    assert.match(missing.json.detail, /\$input: Field "city" of required type "String!" was not provided/);
  });

  it('runs the configured operation of a document with several', async () => {
    const r = await call('/api/v1/listing/7');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { data: { listing: { id: '7', city: 'Lyon' } } });
    assert.equal(upstream.operations.at(-1)!.operationName, 'One');
  });

  it('maps errors without data to the status their extensions name, keeping the GraphQL body', async () => {
    const notFound = await call('/api/v1/listing/404');
    assert.equal(notFound.status, 404, notFound.text);
    assert.equal(notFound.json.data.listing, null);
    assert.equal(notFound.json.errors[0].message, 'no listing 404');
    const secret = await call('/secret');
    assert.equal(secret.status, 401);
    assert.equal(secret.json.errors[0].extensions.code, 'UNAUTHENTICATED');
    const teapot = await call('/teapot');
    assert.equal(teapot.status, 429, 'extensions.status');
  });

  it('answers 502 when every field failed and no error names a status', async () => {
    const r = await call('/broken');
    assert.equal(r.status, 502);
    assert.equal(r.json.data.broken, null);
    assert.equal(r.json.errors[0].message, 'database down');
  });

  it('answers 200 with data and errors for a partial result', async () => {
    const r = await call('/flaky');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.data.flaky, [{ id: '1', city: 'Paris' }, null]);
    assert.equal(r.json.errors.length, 1);
  });

  it('answers 502 MG_UPSTREAM_PROTOCOL_ERROR when the service does not answer GraphQL', async () => {
    const r = await call('/wrong-path');
    assert.equal(r.status, 502);
    assert.equal(r.json.code, 'MG_UPSTREAM_PROTOCOL_ERROR');
    assert.match(r.json.detail, /search answered 404 without a GraphQL response/);
  });

  it('shows the action in the admin API', async () => {
    const res = await request(`${gw.adminUrl}/routes`);
    const text = await res.body.text();
    assert.equal(res.statusCode, 200, text);
    const routes = (JSON.parse(text) as { routes: { name: string; action: Record<string, unknown> }[] }).routes;
    const route = routes.find((r) => r.name === 'one')!;
    assert.equal(route.action.kind, 'graphql');
    assert.deepEqual(route.action.operation, { type: 'query', name: 'One' });
    assert.deepEqual(route.action.variables, { id: { value: '$(params.id)', type: 'ID!' } });
  });
});

describe('graphql action retries (the service’s policy)', () => {
  let upstream: GraphqlServer;
  let resetting: Upstream;
  let gw: TestGateway;
  const fast = { backoff: { base: '1ms', max: '5ms' }, budget: { minPerSecond: 100 } };
  before(async () => {
    upstream = await startGraphqlServer();
    resetting = await startUpstream((req) => req.socket.destroy(), 'resetting');
    const closed = await startUpstream();
    await closed.close();
    gw = await startGateway({
      services: [
        {
          name: 'search',
          endpoints: [{ url: resetting.url }, { url: upstream.url }],
          loadBalancer: { policy: 'round-robin' },
          retries: { attempts: 1, on: ['reset'], ...fast },
        },
        {
          name: 'search-half-down',
          endpoints: [{ url: closed.url }, { url: upstream.url }],
          loadBalancer: { policy: 'round-robin' },
          retries: { attempts: 1, on: ['connect-failure'], ...fast },
        },
      ],
      routes: [
        {
          name: 'query',
          match: { path: '/query/:city' },
          graphql: { service: 'search', query: LISTINGS, variables: { city: '$(params.city)' } },
        },
        {
          name: 'mutation',
          match: { path: '/mutation/:city' },
          graphql: {
            service: 'search',
            query: 'mutation Create($input: ListingInput!) { createListing(input: $input) { city } }',
            variables: { input: { city: '$(params.city)', price: 1 } },
            schema: schemaFile,
          },
        },
        {
          name: 'mutation-half-down',
          match: { path: '/half-down/:city' },
          graphql: {
            service: 'search-half-down',
            query: 'mutation Create($input: ListingInput!) { createListing(input: $input) { city } }',
            variables: { input: { city: '$(params.city)', price: 1 } },
            schema: schemaFile,
          },
        },
      ],
    });
  });
  after(async () => {
    await gw.close();
    await resetting.close();
    await upstream.close();
  });

  /** The request's log-phase record, once it has one. */
  async function endedFor(requestId: string) {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const ctx = gw.ended.find((c) => c.requestId === requestId);
      if (ctx !== undefined) return ctx;
      if (Date.now() > deadline) throw new Error(`request ${requestId} never ended`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  async function get(path: string) {
    const res = await request(`${gw.url()}${path}`);
    const text = await res.body.text();
    return { status: res.statusCode, json: JSON.parse(text), ctx: await endedFor(String(res.headers['x-request-id'])) };
  }

  it('retries a query (it only reads) on another endpoint, and logs the tries', async () => {
    const stats = gw.proxy.snapshot.services.get('search')!.stats;
    const retriesBefore = stats.retries;
    const resetsBefore = resetting.seen.length;
    let retried = 0;
    for (let i = 0; i < 4; i++) {
      const r = await get(`/query/Paris${i}`);
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.equal(r.json.data.listings.length, 3);
      assert.equal(r.ctx.endpoint!.authority, new URL(upstream.url).host);
      if (r.ctx.tries === 2) {
        retried++;
        assert.equal(r.ctx.tryLog![0]!.endpoint, new URL(resetting.url).host);
        assert.equal(r.ctx.tryLog![0]!.outcome, 'MG_UPSTREAM_RESET');
      } else assert.equal(r.ctx.tries, 1);
    }
    const resets = resetting.seen.length - resetsBefore;
    assert.ok(resets >= 2, 'round robin sent first tries to the resetting endpoint');
    assert.equal(retried, resets);
    assert.equal(stats.retries - retriesBefore, resets);
  });

  it('does not retry a mutation that may have reached the service (a reset)', async () => {
    const stats = gw.proxy.snapshot.services.get('search')!.stats;
    const retriesBefore = stats.retries;
    const resetsBefore = resetting.seen.length;
    let failed = 0;
    for (let i = 0; i < 4; i++) {
      const r = await get(`/mutation/Lyon${i}`);
      assert.equal(r.ctx.tries, 1);
      if (r.status === 200) {
        assert.equal(r.json.data.createListing.city, `Lyon${i}`);
        continue;
      }
      failed++;
      assert.equal(r.status, 502, JSON.stringify(r.json));
      assert.equal(r.json.code, 'MG_UPSTREAM_RESET');
      assert.equal(r.ctx.retryStop, 'non-idempotent');
    }
    assert.equal(resetting.seen.length - resetsBefore, failed);
    assert.ok(failed >= 1, 'round robin sent a mutation to the resetting endpoint');
    assert.equal(stats.retries, retriesBefore);
  });

  it('retries a mutation after a connect failure (nothing was sent)', async () => {
    const stats = gw.proxy.snapshot.services.get('search-half-down')!.stats;
    let retried = 0;
    for (let i = 0; i < 4; i++) {
      const r = await get(`/half-down/Nice${i}`);
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.equal(r.json.data.createListing.city, `Nice${i}`);
      if (r.ctx.tries === 2) retried++;
    }
    assert.ok(retried >= 1, 'round robin sent first tries to the closed port');
    assert.equal(stats.retries, retried);
  });

  it('shows the retry policy and the operation’s idempotency in the admin API', async () => {
    const res = await request(`${gw.adminUrl}/routes`);
    const routes = ((await res.body.json()) as { routes: { name: string; action: Record<string, unknown> }[] }).routes;
    assert.deepEqual(routes.find((r) => r.name === 'query')!.action.retries, {
      attempts: 1,
      on: ['reset'],
      idempotent: true,
    });
    assert.deepEqual(routes.find((r) => r.name === 'mutation')!.action.retries, {
      attempts: 1,
      on: ['reset'],
      idempotent: false,
    });
  });
});

describe('graphql action config checks', () => {
  const base = (graphql: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
    services: [{ name: 'search', endpoints: [{ url: 'http://127.0.0.1:1' }] }],
    routes: [{ name: 'r', match: { path: '/x/:id' }, graphql: { service: 'search', ...graphql }, ...extra }],
  });
  const issues = (config: unknown) => {
    const result = validateConfigObject(config, 'test');
    return result.ok ? [] : result.issues.map(formatIssue);
  };

  it('reports a GraphQL syntax error at its field in the file, with its place in the document', async () => {
    const text = `services:
  - name: search
    endpoints: [{ url: http://127.0.0.1:1 }]
routes:
  - name: r
    match: { path: /x }
    graphql:
      service: search
      query: |
        query {
          listings(city: "x" { id }
        }
`;
    const result = await loadConfigText(text, join(dir, 'gw.yaml'), {});
    assert.equal(result.ok, false);
    const messages = result.ok ? [] : result.issues.map(formatIssue);
    assert.equal(messages.length, 1, messages.join('\n'));
    assert.match(
      messages[0]!,
      /gw\.yaml:9:\d+: routes\[0\]\.graphql\.query: GraphQL syntax error at line 2, column 22 of the query/,
    );
  });

  it('reports an unknown field against the schema file with its line and column', () => {
    const found = issues(base({ schema: schemaFile, query: 'query Q {\n  listings(city: "x") { id rent }\n}' }));
    assert.equal(found.length, 1, found.join('\n'));
    assert.match(
      found[0]!,
      /graphql\.query: invalid against the schema at line 2, column 28 of the query: Cannot query field "rent" on type "Listing"/,
    );
  });

  it('reports operations, variables and files it cannot use', () => {
    assert.match(
      issues(base({ query: 'query A { secret } query B { teapot }' })).join('\n'),
      /graphql\.operationName: the query has 2 operations/,
    );
    assert.match(
      issues(base({ query: 'query A { secret }', operationName: 'AA' })).join('\n'),
      /graphql\.operationName: the query has no operation named AA \(did you mean "A"\?\)/,
    );
    assert.match(
      issues(base({ query: 'query A($id: ID!) { listing(id: $id) { id } }', variables: { idd: '$(params.id)' } })).join(
        '\n',
      ),
      /graphql\.variables\.idd: the operation declares no variable \$idd/,
    );
    assert.match(
      issues(base({ query: 'query A($id: ID!) { listing(id: $id) { id } }' })).join('\n'),
      /graphql\.variables: the operation needs \$id \(ID!\)/,
    );
    assert.match(
      issues(base({ query: 'query A($id: ID) { listing(id: $id) { id } }', variables: { id: '$(path.id)' } })).join(
        '\n',
      ),
      /unknown template root "path"/,
    );
    assert.match(
      issues(base({ query: '{ secret }', schema: join(dir, 'missing.graphql') })).join('\n'),
      /graphql\.schema: cannot read .*missing\.graphql: no such file/,
    );
    assert.match(issues(base({ query: 'subscription { secret }' })).join('\n'), /a subscription cannot be answered/);
    assert.match(
      issues(base({ service: 'serch', query: '{ secret }' })).join('\n'),
      /graphql\.service: unknown service "serch" \(did you mean "search"\?\)/,
    );
    assert.match(
      issues(base({ query: '{ secret }' }, { service: 'search' })).join('\n'),
      /a route has one action, but this one has service and graphql/,
    );
    assert.match(
      issues(base({ query: '{ secret }' }, { retries: { attempts: 2 } })).join('\n'),
      /retries applies to forwarding routes; this one answers with graphql/,
    );
    assert.deepEqual(issues(base({ query: '{ secret }', schema: schemaFile })), []);
  });
});
