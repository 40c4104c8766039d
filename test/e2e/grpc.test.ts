/**
 * gRPC through the gateway: a @grpc/grpc-js client calls a grpc-js server over h2c, once directly and
 * once through the gateway (HTTP/2 in, HTTP/2 out), and must see exactly the same thing: messages,
 * statuses with their messages, response metadata and trailers. Errors the gateway produces itself
 * are gRPC statuses.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { startGateway, type TestGateway } from '../helpers/servers.ts';

const identity = (b: Buffer) => b;
const method = (name: string, requestStream: boolean, responseStream: boolean) => ({
  path: `/test.Echo/${name}`,
  requestStream,
  responseStream,
  requestSerialize: identity,
  requestDeserialize: identity,
  responseSerialize: identity,
  responseDeserialize: identity,
  originalName: name,
});
const EchoService = {
  Unary: method('Unary', false, false),
  ServerStream: method('ServerStream', false, true),
  ClientStream: method('ClientStream', true, false),
  Fail: method('Fail', false, false),
  FailLate: method('FailLate', false, true),
} as unknown as grpc.ServiceDefinition;

function echoMetadata(call: { metadata: grpc.Metadata }): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set('x-echo', String(call.metadata.get('x-token')[0] ?? 'none'));
  md.set('x-bin-bin', Buffer.from([0, 1, 2, 255]));
  return md;
}

async function startGrpcServer(): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server();
  server.addService(EchoService, {
    Unary(call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) {
      call.sendMetadata(echoMetadata(call));
      const trailer = new grpc.Metadata();
      trailer.set('x-trailer', 'done');
      cb(null, Buffer.concat([Buffer.from('echo:'), call.request]), trailer);
    },
    ServerStream(call: grpc.ServerWritableStream<Buffer, Buffer>) {
      const n = Number(call.request.toString());
      for (let i = 0; i < n; i++) call.write(Buffer.from(`item-${i}`));
      call.end();
    },
    ClientStream(call: grpc.ServerReadableStream<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) {
      let total = 0;
      let count = 0;
      call.on('data', (b: Buffer) => {
        total += b.length;
        count++;
      });
      call.on('end', () => cb(null, Buffer.from(`${count} messages, ${total} bytes`)));
    },
    Fail(_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) {
      const md = new grpc.Metadata();
      md.set('x-reason', 'quota');
      cb({ code: grpc.status.FAILED_PRECONDITION, details: 'the widget is not ready — ünïcode', metadata: md });
    },
    FailLate(call: grpc.ServerWritableStream<Buffer, Buffer>) {
      call.write(Buffer.from('one'));
      call.emit('error', { code: grpc.status.RESOURCE_EXHAUSTED, details: 'no more' });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  return { server, port };
}

interface Outcome {
  value?: string;
  values?: string[];
  code: number;
  details: string;
  metadata: Record<string, unknown>;
  trailers?: Record<string, unknown>;
}

const metadataOf = (md: grpc.Metadata | undefined) => {
  const out = { ...(md?.getMap() ?? {}) } as Record<string, unknown>;
  // Transport details that legitimately differ by hop.
  for (const k of ['date', 'x-request-id', 'content-type', 'grpc-accept-encoding', 'grpc-encoding', 'x-meshgate-code'])
    delete out[k];
  for (const k in out) if (Buffer.isBuffer(out[k])) out[k] = (out[k] as Buffer).toString('hex');
  return out;
};

function unary(client: grpc.Client, name: string, body: string, token = 't1'): Promise<Outcome> {
  const md = new grpc.Metadata();
  md.set('x-token', token);
  return new Promise((resolve) => {
    let metadata: Record<string, unknown> = {};
    let value: string | undefined;
    const call = client.makeUnaryRequest(`/test.Echo/${name}`, identity, identity, Buffer.from(body), md, (e, v) => {
      value = v?.toString();
      void e;
    });
    call.on('metadata', (m) => (metadata = metadataOf(m)));
    call.on('status', (s) =>
      resolve({ value, code: s.code, details: s.details, metadata, trailers: metadataOf(s.metadata) }),
    );
  });
}

function serverStream(client: grpc.Client, name: string, body: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const values: string[] = [];
    const call = client.makeServerStreamRequest(`/test.Echo/${name}`, identity, identity, Buffer.from(body));
    call.on('data', (b: Buffer) => values.push(b.toString()));
    call.on('error', () => {});
    call.on('status', (s) => resolve({ values, code: s.code, details: s.details, metadata: metadataOf(s.metadata) }));
  });
}

function clientStream(client: grpc.Client, messages: number): Promise<Outcome> {
  return new Promise((resolve) => {
    let value: string | undefined;
    const call = client.makeClientStreamRequest(`/test.Echo/ClientStream`, identity, identity, (_e, v) => {
      value = v?.toString();
    });
    call.on('status', (s) => resolve({ value, code: s.code, details: s.details, metadata: metadataOf(s.metadata) }));
    for (let i = 0; i < messages; i++) call.write(Buffer.alloc(1000 + i, i % 251));
    call.end();
  });
}

describe('gRPC through the gateway', () => {
  let upstream: { server: grpc.Server; port: number };
  let gw: TestGateway;
  let direct: grpc.Client;
  let via: grpc.Client;

  before(async () => {
    upstream = await startGrpcServer();
    gw = await startGateway({
      listeners: [{ name: 'h2c', http2: true }],
      services: [
        { name: 'echo', protocol: 'http2', endpoints: [{ url: `http://127.0.0.1:${upstream.port}` }] },
        { name: 'nowhere', protocol: 'http2', endpoints: [{ url: 'http://127.0.0.1:1' }] },
        { name: 'silent', protocol: 'http2', endpoints: [] },
      ],
      routes: [
        { name: 'echo', match: { grpc: { service: 'test.Echo' } }, service: 'echo' },
        { name: 'down', match: { grpc: { service: 'test.Down' } }, service: 'nowhere' },
        { name: 'empty', match: { grpc: { service: 'test.Empty', method: 'Call' } }, service: 'silent' },
      ],
    });
    direct = new grpc.Client(`127.0.0.1:${upstream.port}`, grpc.credentials.createInsecure());
    via = new grpc.Client(new URL(gw.url()).host, grpc.credentials.createInsecure());
  });

  after(async () => {
    direct.close();
    via.close();
    await gw.close();
    upstream.server.forceShutdown();
  });

  it('unary: the same message, response metadata (binary too) and trailers', async () => {
    const a = await unary(direct, 'Unary', 'hello');
    const b = await unary(via, 'Unary', 'hello');
    assert.equal(a.value, 'echo:hello');
    assert.equal(a.code, grpc.status.OK);
    assert.equal(a.metadata['x-echo'], 't1');
    assert.equal(a.trailers?.['x-trailer'], 'done');
    assert.deepEqual(b, a);
  });

  it('server streaming: every message in order, then OK', async () => {
    const a = await serverStream(direct, 'ServerStream', '500');
    const b = await serverStream(via, 'ServerStream', '500');
    assert.equal(a.values?.length, 500);
    assert.deepEqual(b, a);
  });

  it('client streaming: every message reaches the server', async () => {
    const a = await clientStream(direct, 300);
    const b = await clientStream(via, 300);
    assert.equal(a.value, `300 messages, ${300 * 1000 + (299 * 300) / 2} bytes`);
    assert.deepEqual(b, a);
  });

  it('a server error (trailers-only): the same status, message and metadata', async () => {
    const a = await unary(direct, 'Fail', 'x');
    const b = await unary(via, 'Fail', 'x');
    assert.equal(a.code, grpc.status.FAILED_PRECONDITION);
    assert.equal(a.details, 'the widget is not ready — ünïcode');
    assert.deepEqual(b, a);
  });

  it('an error after messages: the messages, then the status', async () => {
    const a = await serverStream(direct, 'FailLate', '');
    const b = await serverStream(via, 'FailLate', '');
    assert.equal(a.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.deepEqual(b, a);
  });

  it('many concurrent calls share the upstream connection', async () => {
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => unary(via, 'Unary', `n${i}`)));
    for (const [i, r] of results.entries()) assert.equal(r.value, `echo:n${i}`);
    // More calls than the connection's streams: some waited as pending requests, and all is settled now.
    const breaker = gw.proxy.snapshot.services.get('echo')!.breaker;
    assert.equal(breaker.connections, 1, 'one HTTP/2 connection carried them all');
    assert.equal(breaker.pending, 0);
    assert.equal(breaker.requests, 0);
  });

  it('gateway errors are gRPC statuses: no route → UNIMPLEMENTED', async () => {
    const r = await unary(via, 'Nope', 'x');
    const other = await new Promise<grpc.StatusObject>((resolve) => {
      const call = via.makeUnaryRequest('/test.Other/Call', identity, identity, Buffer.from('x'), () => {});
      call.on('status', resolve);
    });
    assert.equal(other.code, grpc.status.UNIMPLEMENTED);
    assert.match(other.details, /MG_ROUTE_NOT_FOUND/);
    // A method the upstream does not know is the upstream's UNIMPLEMENTED, passed through.
    assert.equal(r.code, grpc.status.UNIMPLEMENTED);
  });

  it('gateway errors are gRPC statuses: connect failure and no endpoint → UNAVAILABLE', async () => {
    for (const path of ['/test.Down/Call', '/test.Empty/Call']) {
      const s = await new Promise<grpc.StatusObject>((resolve) => {
        const call = via.makeUnaryRequest(path, identity, identity, Buffer.from('x'), () => {});
        call.on('status', resolve);
      });
      assert.equal(s.code, grpc.status.UNAVAILABLE, path);
      assert.match(s.details, /MG_(UPSTREAM_CONNECT_FAILURE|NO_HEALTHY_UPSTREAM)/);
      assert.equal(s.metadata.get('x-meshgate-code').length, 1);
    }
  });

  it('a cancelled call is cancelled upstream too', async () => {
    let cancelled!: () => void;
    const sawCancel = new Promise<void>((r) => (cancelled = r));
    const server = new grpc.Server();
    server.addService({ Hang: method('Hang', false, true) } as unknown as grpc.ServiceDefinition, {
      Hang(call: grpc.ServerWritableStream<Buffer, Buffer>) {
        call.write(Buffer.from('started'));
        call.on('cancelled', () => cancelled());
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    const g = await startGateway({
      listeners: [{ name: 'h2c', http2: true }],
      services: [{ name: 'hang', protocol: 'http2', endpoints: [{ url: `http://127.0.0.1:${port}` }] }],
      routes: [{ name: 'hang', match: { grpc: { service: 'test.Echo', method: 'Hang' } }, service: 'hang' }],
    });
    const client = new grpc.Client(new URL(g.url()).host, grpc.credentials.createInsecure());
    try {
      const call = client.makeServerStreamRequest('/test.Echo/Hang', identity, identity, Buffer.from(''));
      call.on('error', () => {});
      await new Promise((r) => call.once('data', r));
      call.cancel();
      await Promise.race([
        sawCancel,
        new Promise((_, reject) => setTimeout(() => reject(new Error('upstream call not cancelled')), 3000)),
      ]);
    } finally {
      client.close();
      await g.close();
      server.forceShutdown();
    }
  });
});

describe('gRPC: an upstream that never answers', () => {
  it('yields DEADLINE_EXCEEDED (MG_UPSTREAM_TIMEOUT) within the route timeout', async () => {
    const server = new grpc.Server();
    server.addService({ Silent: method('Silent', false, true) } as unknown as grpc.ServiceDefinition, {
      Silent() {},
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    const g = await startGateway({
      listeners: [{ name: 'h2c', http2: true }],
      services: [{ name: 'silent', protocol: 'http2', endpoints: [{ url: `http://127.0.0.1:${port}` }] }],
      routes: [
        {
          name: 'silent',
          match: { grpc: { service: 'test.Echo' } },
          service: 'silent',
          timeouts: { request: '300ms' },
        },
      ],
    });
    const client = new grpc.Client(new URL(g.url()).host, grpc.credentials.createInsecure());
    try {
      const started = performance.now();
      const s = await new Promise<grpc.StatusObject>((resolve) => {
        const call = client.makeServerStreamRequest('/test.Echo/Silent', identity, identity, Buffer.from(''));
        call.on('error', () => {});
        call.on('status', resolve);
      });
      const took = performance.now() - started;
      assert.equal(s.code, grpc.status.DEADLINE_EXCEEDED);
      assert.match(s.details, /MG_UPSTREAM_TIMEOUT/);
      assert.ok(took >= 250 && took < 2000, `took ${took} ms`);
    } finally {
      client.close();
      await g.close();
      server.forceShutdown();
    }
  });
});
