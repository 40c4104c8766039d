/**
 * A request lookup's spans from a tracing backend: a real HTTP server on 127.0.0.1 answers one trace in
 * each shape the common backends use (OTLP JSON's `resourceSpans`, Tempo's older `batches`, Jaeger v2's
 * `result.resourceSpans`), a trace it does not have (404), and a failure.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { TraceQuery } from './trace-query.ts';

const TRACE = '0af7651916cd43dd8448eb211c80319c';
const resourceSpans = (trace: string) => [
  {
    resource: { attributes: [{ key: 'service.name', value: { stringValue: 'gateway' } }] },
    scopeSpans: [
      {
        spans: [
          {
            traceId: trace,
            spanId: 'b7ad6b7169203331',
            name: 'GET',
            kind: 2,
            startTimeUnixNano: '1765000000000000000',
            endTimeUnixNano: '1765000000012500000',
            attributes: [
              { key: 'meshgate.route', value: { stringValue: 'property-api' } },
              { key: 'http.response.status_code', value: { intValue: '200' } },
            ],
          },
        ],
      },
    ],
  },
  {
    resource: { attributes: [{ key: 'service.name', value: { stringValue: 'property-service' } }] },
    scopeSpans: [
      {
        spans: [
          {
            traceId: trace,
            spanId: 'c7ad6b7169203332',
            parentSpanId: 'b7ad6b7169203331',
            name: 'inbound',
            kind: 2,
            startTimeUnixNano: '1765000000002000000',
            endTimeUnixNano: '1765000000010000000',
            status: { code: 2 },
          },
        ],
      },
    ],
  },
];

describe('TraceQuery', () => {
  let base: string;
  const asked: string[] = [];
  const server = createServer((req, res) => {
    asked.push(req.url!);
    const [, shape, id] = req.url!.split('/');
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (id !== TRACE) return send(404, { error: 'no such trace' });
    if (shape === 'otlp') return send(200, { resourceSpans: resourceSpans(id) });
    if (shape === 'tempo') return send(200, { batches: resourceSpans(id) });
    if (shape === 'jaeger') return send(200, { result: { resourceSpans: resourceSpans(id) } });
    send(500, { error: 'broken' });
  });

  before(async () => {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => server.close());

  it('reads one trace in each backend shape, oldest span first, with service, route, status and error', async () => {
    for (const shape of ['otlp', 'tempo', 'jaeger']) {
      const { spans, error } = await new TraceQuery(`${base}/${shape}/{traceId}`).spans([TRACE]);
      assert.equal(error, null);
      assert.deepEqual(
        spans.map((s) => [s.service, s.name, s.parentSpanId, s.status, s.error, s.start, s.durationMs]),
        [
          ['gateway', 'property-api', '', 200, false, 1765000000000, 12.5],
          ['property-service', 'inbound', 'b7ad6b7169203331', null, true, 1765000000002, 8],
        ],
        shape,
      );
    }
  });

  it('a trace the backend does not have adds no span; a failing backend is named in the error', async () => {
    const missing = await new TraceQuery(`${base}/otlp/{traceId}`).spans(['1'.repeat(32)]);
    assert.deepEqual(missing, { spans: [], error: null });
    const failing = await new TraceQuery(`${base}/broken/{traceId}`).spans([TRACE]);
    assert.deepEqual(failing.spans, []);
    assert.match(failing.error!, /\/broken\/0af7651916cd43dd8448eb211c80319c: status 500$/);
  });

  it('puts only hex trace ids in the URL, and refuses a template it cannot use', async () => {
    const before = asked.length;
    assert.deepEqual(await new TraceQuery(`${base}/otlp/{traceId}`).spans(['../admin', 'x'.repeat(32)]), {
      spans: [],
      error: null,
    });
    assert.equal(asked.length, before, 'nothing was asked');
    assert.throws(() => new TraceQuery(`${base}/otlp/`), /has no \{traceId\}/);
    assert.throws(() => new TraceQuery('ftp://x/{traceId}'), /not an http or https URL/);
    assert.throws(() => new TraceQuery('not a url {traceId}'), /is not a URL/);
  });
});
