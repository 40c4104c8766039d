/**
 * REST → gRPC transcoding over real sockets: curl and undici call the gateway, which calls a real
 * @grpc/grpc-js server (test/helpers/valuation-grpc.ts) over h2c. The server echoes the request
 * message it decoded, so each test sees where the path, the query and the body landed.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { request } from 'undici';
import {
  INCLUDE_DIR,
  startValuationServer,
  type TestGrpcServer,
  VALUATION_PROTO,
} from '../../../../test/helpers/valuation-grpc.ts';
import { startGateway, type TestGateway } from '../../../testing/servers.ts';

const run = promisify(execFile);

async function until(done: () => boolean, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(what);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

// biome-ignore lint/suspicious/noExplicitAny: JSON answers, asserted field by field
type Json = Record<string, any>;

describe('transcode: REST/JSON to gRPC', () => {
  let grpc: TestGrpcServer;
  let gw: TestGateway;

  before(async () => {
    grpc = await startValuationServer();
    const transcode = {
      service: 'valuation-grpc',
      protos: [VALUATION_PROTO],
      includeDirs: [INCLUDE_DIR],
      methods: [{ method: 'proptech.v1.Valuation/Lookup', http: { get: '/api/v1/lookup/{property_id}' } }],
      headers: ['x-tenant'],
    };
    gw = await startGateway({
      services: [
        { name: 'valuation-grpc', protocol: 'http2', endpoints: [{ url: `http://127.0.0.1:${grpc.port}` }] },
        { name: 'down', protocol: 'http2', endpoints: [{ url: 'http://127.0.0.1:1' }] },
      ],
      routes: [
        { name: 'slow', match: { path: '/api/v1/slow' }, timeouts: { request: '300ms' }, transcode },
        {
          name: 'down',
          match: { path: '/api/v1/valuations/unreachable' },
          transcode: { ...transcode, service: 'down' },
        },
        { name: 'valuation-rest', match: { path: '/api/v1/*' }, timeouts: { request: '20s' }, transcode },
      ],
    });
  });

  after(async () => {
    await gw?.close();
    await grpc?.close();
  });

  async function call(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; headers: Record<string, unknown>; json: Json; text: string }> {
    const res = await request(`${gw.url()}${path}`, {
      method: method as 'GET',
      headers: { ...(body !== undefined && { 'content-type': 'application/json' }), ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.body.text();
    let json: Json = {};
    try {
      json = JSON.parse(text);
    } catch {}
    return { status: res.statusCode, headers: res.headers, json, text };
  }

  it('unary, body "*": the body is the message, the path variable overrides it; proto3 JSON both ways', async () => {
    const r = await call('POST', '/api/v1/valuations/p-1', {
      propertyId: 'ignored: the path wins',
      areaCm2: '9007199254740993',
      kind: 'HOUSE',
      asOf: '2024-05-06T07:08:09.123Z',
      horizon: '3600.500s',
      tags: ['garden', 'garage'],
      address: { city: 'Paris', street: 'Rue de Rivoli' },
      floor: 3,
      budget: { currency: 'EUR', units: '-12' },
    });
    assert.equal(r.status, 200, r.text);
    assert.match(String(r.headers['content-type']), /^application\/json/);
    assert.deepEqual(r.json.request, {
      propertyId: 'p-1',
      areaCm2: '9007199254740993',
      kind: 'HOUSE',
      asOf: '2024-05-06T07:08:09.123Z',
      horizon: '3600.500s',
      tags: ['garden', 'garage'],
      address: { city: 'Paris', street: 'Rue de Rivoli' },
      floor: 3,
      budget: { currency: 'EUR', units: '-12' },
    });
    // Typed values the server set: int64 as a string, enum by name, Timestamp and Duration as text.
    assert.equal(r.json.price, '9007199254740993');
    assert.equal(r.json.kind, 'APARTMENT');
    assert.equal(r.json.at, '2024-05-06T07:08:09.123Z');
    assert.equal(r.json.took, '1.500s');
  });

  it('curl with a JSON body reaches the unary method', async () => {
    const { stdout } = await run('curl', [
      '-s',
      '-X',
      'POST',
      '-H',
      'content-type: application/json',
      '-d',
      '{"areaCm2":"12","kind":"HOUSE","address":{"city":"Lyon"}}',
      '-w',
      '\n%{http_code}',
      `${gw.url()}/api/v1/valuations/curl-1`,
    ]);
    const [body, status] = stdout.split('\n');
    assert.equal(status, '200', stdout);
    assert.deepEqual(JSON.parse(body!).request, {
      propertyId: 'curl-1',
      areaCm2: '12',
      kind: 'HOUSE',
      address: { city: 'Lyon' },
    });
  });

  it('additional binding, GET: path and query (repeated, nested, JSON or proto names, enum, bool) land in their fields', async () => {
    const r = await call(
      'GET',
      '/api/v1/valuations/p%202?kind=APARTMENT&tags=a&tags=b%26c&address.city=Lyon&area_cm2=42&includeHistory=true&asOf=2020-01-01T00:00:00Z&floor=-1',
    );
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.request, {
      propertyId: 'p 2',
      kind: 'APARTMENT',
      tags: ['a', 'b&c'],
      address: { city: 'Lyon' },
      areaCm2: '42',
      includeHistory: true,
      asOf: '2020-01-01T00:00:00Z',
      floor: -1,
    });
  });

  it('body "field": the body fills that field, the path the others', async () => {
    const r = await call('PUT', '/api/v1/properties/p9/address', { city: 'Berlin', street: 'Unter den Linden' });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.request, { propertyId: 'p9', address: { city: 'Berlin', street: 'Unter den Linden' } });
  });

  it('a multi-segment variable ({name=properties/*/valuations/**}) takes the whole matched path', async () => {
    const r = await call('GET', '/api/v1/properties/p7/valuations/2024/q1');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.request, { name: 'properties/p7/valuations/2024/q1' });
  });

  it('responseBody: the HTTP body is that one field', async () => {
    const r = await call('GET', '/api/v1/valuations/p1/price');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.text, '"9007199254740993"');
  });

  it('a method the proto leaves unmapped is reachable through the route’s methods', async () => {
    const r = await call('GET', '/api/v1/lookup/p5?kind=1');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.request, { propertyId: 'p5', kind: 'HOUSE' });
  });

  it('metadata: only the allow-listed headers (and the request id) reach the server', async () => {
    const r = await call('GET', '/api/v1/valuations/m1', undefined, {
      'x-tenant': 'acme',
      'x-secret': 'no',
      'x-request-id': 'req-123',
    });
    assert.equal(r.status, 200, r.text);
    const md = r.json.metadata as Record<string, string>;
    assert.equal(md['x-tenant'], 'acme');
    assert.equal(md['x-request-id'], 'req-123');
    assert.equal(md['x-secret'], undefined);
    assert.equal(md.connection, undefined);
    assert.equal(md.host, undefined);
    assert.equal(r.headers['x-request-id'], 'req-123');
  });

  it('the route timeout becomes the call’s deadline (grpc-timeout)', async () => {
    const r = await call('GET', '/api/v1/valuations/d1');
    const left = Number(r.json.deadlineMs);
    assert.ok(left > 15_000 && left <= 20_000, `deadline ${left} ms`);
    // X-Request-Timeout shortens it.
    const short = await call('GET', '/api/v1/valuations/d1', undefined, { 'x-request-timeout': '5s' });
    const shorter = Number(short.json.deadlineMs);
    assert.ok(shorter > 1_000 && shorter <= 5_000, `deadline ${shorter} ms`);
  });

  it('deadline exceeded: the route timeout ends a slow call with 504 and DEADLINE_EXCEEDED', async () => {
    const r = await call('GET', '/api/v1/slow');
    assert.equal(r.status, 504, r.text);
    assert.match(String(r.headers['content-type']), /^application\/problem\+json/);
    assert.equal(r.json.grpcStatus, 4);
    assert.equal(r.json.grpcCode, 'DEADLINE_EXCEEDED');
    assert.equal(r.json.requestId, r.headers['x-request-id']);
    const seen = grpc.calls.find((c) => c.method === '/proptech.v1.Valuation/Slow');
    assert.ok(seen, 'the call reached the server');
  });

  const table: [string, number, number][] = [
    ['CANCELLED', 1, 499],
    ['UNKNOWN', 2, 500],
    ['INVALID_ARGUMENT', 3, 400],
    ['DEADLINE_EXCEEDED', 4, 504],
    ['NOT_FOUND', 5, 404],
    ['ALREADY_EXISTS', 6, 409],
    ['PERMISSION_DENIED', 7, 403],
    ['RESOURCE_EXHAUSTED', 8, 429],
    ['FAILED_PRECONDITION', 9, 400],
    ['ABORTED', 10, 409],
    ['OUT_OF_RANGE', 11, 400],
    ['UNIMPLEMENTED', 12, 501],
    ['INTERNAL', 13, 500],
    ['UNAVAILABLE', 14, 503],
    ['DATA_LOSS', 15, 500],
    ['UNAUTHENTICATED', 16, 401],
  ];
  it('every gRPC error status arrives as its HTTP status with problem+json (trailers-only answers)', async () => {
    for (const [name, code, http] of table) {
      const r = await call('POST', `/api/v1/failures/${code}`, { message: `${name}: ünïcode 100% sure` });
      assert.equal(r.status, http, `${name}: ${r.text}`);
      assert.match(String(r.headers['content-type']), /^application\/problem\+json/);
      assert.equal(r.headers['x-meshgate-code'], 'MG_UPSTREAM_GRPC_STATUS');
      assert.equal(r.json.code, 'MG_UPSTREAM_GRPC_STATUS');
      assert.equal(r.json.status, http);
      assert.equal(r.json.grpcStatus, code);
      assert.equal(r.json.grpcCode, name);
      assert.equal(r.json.grpcMessage, `${name}: ünïcode 100% sure`);
      assert.equal(r.json.requestId, r.headers['x-request-id']);
      assert.ok(String(r.json.requestId).length > 0);
    }
  });

  it('server streaming as NDJSON: each message as the server sends it, then the end', async () => {
    const res = await request(`${gw.url()}/api/v1/valuations/s1/history?count=3&hold=true`);
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'application/x-ndjson');
    const lines: Json[] = [];
    let buffered = '';
    for await (const chunk of res.body) {
      buffered += chunk.toString();
      let nl = buffered.indexOf('\n');
      while (nl !== -1) {
        lines.push(JSON.parse(buffered.slice(0, nl)));
        buffered = buffered.slice(nl + 1);
        nl = buffered.indexOf('\n');
      }
      // The first message is here while the server holds the stream: it was not buffered to the end.
      if (lines.length === 1) grpc.release();
    }
    assert.deepEqual(
      lines.map((l) => l.seq ?? 0),
      [0, 1, 2],
    );
    assert.equal(lines[0]!.request.propertyId, 's1');
    assert.equal(buffered, '');
  });

  it('server streaming as SSE (Accept: text/event-stream), with curl', async () => {
    const { stdout } = await run('curl', [
      '-sN',
      '-H',
      'accept: text/event-stream',
      '-w',
      '%{content_type}',
      `${gw.url()}/api/v1/valuations/s2/history?count=2`,
    ]);
    const end = stdout.lastIndexOf('\n\n') + 2;
    assert.match(stdout.slice(end), /^text\/event-stream/, 'the Content-Type, written by curl after the body');
    const events = stdout
      .slice(0, end)
      .split('\n\n')
      .filter((e) => e !== '');
    assert.equal(events.length, 2, stdout);
    assert.ok(events.every((e) => e.startsWith('data: ')));
    assert.deepEqual(JSON.parse(events[1]!.slice(6)), { request: { propertyId: 's2' }, seq: 1 });
  });

  it('an error mid-stream is the last NDJSON line, or the last SSE event (error)', async () => {
    const nd = await call('GET', '/api/v1/valuations/e1/history?count=5&failAfter=2&failCode=8');
    assert.equal(nd.status, 200);
    const lines = nd.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(lines.length, 3);
    assert.deepEqual(lines[2], {
      error: {
        type: 'urn:meshgate:error:MG_UPSTREAM_GRPC_STATUS',
        title: 'The gRPC service answered with an error status',
        status: 429,
        detail: 'proptech.v1.Valuation/History failed with RESOURCE_EXHAUSTED: stopped after 2',
        code: 'MG_UPSTREAM_GRPC_STATUS',
        requestId: nd.headers['x-request-id'],
        grpcStatus: 8,
        grpcCode: 'RESOURCE_EXHAUSTED',
        grpcMessage: 'stopped after 2',
      },
    });
    const { stdout } = await run('curl', [
      '-sN',
      '-H',
      'accept: text/event-stream',
      `${gw.url()}/api/v1/valuations/e2/history?count=5&failAfter=1&failCode=14`,
    ]);
    const events = stdout.split('\n\n').filter((e) => e !== '');
    assert.equal(events.length, 2, stdout);
    assert.ok(events[1]!.startsWith('event: error\ndata: '));
    assert.equal(JSON.parse(events[1]!.split('data: ')[1]!).grpcCode, 'UNAVAILABLE');
  });

  it('a stream that fails before its first message: a problem reply with the mapped status', async () => {
    const r = await call('GET', '/api/v1/valuations/e3/history?count=3&failAfter=0&failCode=5');
    assert.equal(r.status, 404, r.text);
    assert.match(String(r.headers['content-type']), /^application\/problem\+json/);
    assert.equal(r.json.grpcCode, 'NOT_FOUND');
    assert.equal(r.json.grpcMessage, 'stopped after 0');
  });

  it('a long stream arrives whole and in order', async () => {
    const r = await call('GET', '/api/v1/valuations/big/history?count=2000&padding=2000');
    assert.equal(r.status, 200);
    const lines = r.text.trim().split('\n');
    assert.equal(lines.length, 2000);
    assert.equal(JSON.parse(lines[1999]!).seq, 1999);
  });

  it('backpressure: a client that stops reading holds the server back; going away cancels the call', async () => {
    const res = await request(`${gw.url()}/api/v1/valuations/slow-reader/history?count=20000&padding=4000`);
    assert.equal(res.statusCode, 200);
    const progress = () => grpc.streams.find((s) => s.id.startsWith('slow-reader'));
    // The client reads nothing: the gateway stops reading the call, and the server waits to write.
    await until(() => progress()?.waiting === true, 'the server never had to wait for the client');
    const stalled = progress()!;
    assert.equal(stalled.ended, false);
    const sent = stalled.sent;
    assert.ok(sent < 20000, `sent ${sent}`);
    // Reading lets it go on.
    for await (const _chunk of res.body) if (progress()!.sent > sent) break;
    assert.ok(progress()!.sent > sent);
    res.body.destroy();
    await until(() => progress()?.cancelled === true, 'the call was not cancelled');
  });

  it('requests that do not fit: 400 with the reason; unmapped paths 404, other methods 405', async () => {
    const unknown = await call('GET', '/api/v1/valuations/p1?colour=red');
    assert.equal(unknown.status, 400);
    assert.equal(unknown.json.code, 'MG_TRANSCODE_INVALID_REQUEST');
    assert.match(unknown.json.detail, /colour/);
    const badJson = await call('POST', '/api/v1/valuations/p1', '{"areaCm2": ');
    assert.equal(badJson.status, 400);
    assert.match(badJson.json.detail, /not JSON/);
    const badType = await call('POST', '/api/v1/valuations/p1', { areaCm2: 'many' });
    assert.equal(badType.status, 400);
    assert.match(badType.json.detail, /areaCm2|area_cm2/);
    const badEnum = await call('GET', '/api/v1/valuations/p1?kind=CASTLE');
    assert.equal(badEnum.status, 400);
    const badBool = await call('GET', '/api/v1/valuations/p1?includeHistory=maybe');
    assert.equal(badBool.status, 400);
    const notFound = await call('GET', '/api/v1/nothing/here');
    assert.equal(notFound.status, 404);
    assert.equal(notFound.json.code, 'MG_TRANSCODE_NOT_FOUND');
    const wrongMethod = await call('DELETE', '/api/v1/valuations/p1');
    assert.equal(wrongMethod.status, 405);
    assert.equal(wrongMethod.headers.allow, 'GET, POST');
    // Client streaming is not exposed.
    const upload = await call('POST', '/api/v1/uploads', {});
    assert.equal(upload.status, 404);
  });

  it('a service that cannot be reached: 502 problem with the gRPC status a client would have seen', async () => {
    const r = await call('GET', '/api/v1/valuations/unreachable');
    assert.equal(r.status, 502, r.text);
    assert.equal(r.json.code, 'MG_UPSTREAM_CONNECT_FAILURE');
    assert.equal(r.json.grpcCode, 'UNAVAILABLE');
  });

  it('the admin API shows the bindings', async () => {
    const res = await request(`${gw.adminUrl}/routes`);
    const { routes } = (await res.body.json()) as { routes: Json[] };
    const route = routes.find((r) => r.name === 'valuation-rest')!;
    assert.equal(route.action.kind, 'transcode');
    const http = (route.action.bindings as Json[]).map((b) => b.http);
    assert.ok(http.includes('POST /api/v1/valuations/{property_id}'));
    assert.ok(http.includes('GET /api/v1/lookup/{property_id}'));
    assert.deepEqual(route.action.skipped, ['proptech.v1.Valuation/Upload: client-streaming']);
  });
});
