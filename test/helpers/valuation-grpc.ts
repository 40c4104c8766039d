/**
 * The gRPC service the transcode tests call: a real @grpc/grpc-js server for
 * test/fixtures/transcode/valuation.proto (messages encoded by protobufjs from the same file).
 * `Estimate` echoes the request it decoded, the metadata and the deadline it saw; `History` streams;
 * `Fail` answers the status it is asked for; `Slow` never answers.
 */
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';

export const FIXTURES = fileURLToPath(new URL('../fixtures/transcode/', import.meta.url));
export const VALUATION_PROTO = `${FIXTURES}valuation.proto`;
export const INCLUDE_DIR = `${FIXTURES}include`;

export interface TestGrpcServer {
  port: number;
  /** Metadata names the server saw on the last calls (lower case), newest last. */
  calls: { method: string; metadata: Record<string, string> }[];
  /** Each History stream: messages written, whether it waits for the client to drain, how it ended. */
  streams: { id: string; sent: number; waiting: boolean; cancelled: boolean; ended: boolean }[];
  /** Lets a `hold` stream go on. */
  release(): void;
  close(): Promise<void>;
}

type Msg = Record<string, unknown>;

export async function startValuationServer(): Promise<TestGrpcServer> {
  const root = new protobuf.Root();
  root.resolvePath = (origin, target) => {
    if (target.startsWith('google/')) return null as unknown as string; // bundled definitions are enough here
    if (target.startsWith('proptech/common/')) return `${INCLUDE_DIR}/${target}`;
    return protobuf.util.path.resolve(origin, target);
  };
  // The annotations are options only: the server does not need them.
  root.loadSync(VALUATION_PROTO, { keepCase: true });
  root.resolveAll();
  const type = (name: string) => root.lookupType(`proptech.v1.${name}`);
  const codec = (t: protobuf.Type) => ({
    serialize: (value: Msg) => Buffer.from(t.encode(t.fromObject(value)).finish()),
    deserialize: (bytes: Buffer) => t.toObject(t.decode(bytes), { longs: String, enums: String, defaults: false }),
  });
  const method = (name: string, req: string, res: string, responseStream: boolean, requestStream = false) => {
    const a = codec(type(req));
    const b = codec(type(res));
    return {
      path: `/proptech.v1.Valuation/${name}`,
      requestStream,
      responseStream,
      requestSerialize: a.serialize,
      requestDeserialize: a.deserialize,
      responseSerialize: b.serialize,
      responseDeserialize: b.deserialize,
      originalName: name,
    };
  };
  const definition = {
    Estimate: method('Estimate', 'EstimateRequest', 'Estimate', false),
    Lookup: method('Lookup', 'EstimateRequest', 'Estimate', false),
    History: method('History', 'HistoryRequest', 'Estimate', true),
    Fail: method('Fail', 'FailRequest', 'Empty', false),
    Slow: method('Slow', 'HistoryRequest', 'Estimate', false),
    Upload: method('Upload', 'HistoryRequest', 'Estimate', false, true),
  } as unknown as grpc.ServiceDefinition;

  const calls: TestGrpcServer['calls'] = [];
  const streams: TestGrpcServer['streams'] = [];
  let releases: (() => void)[] = [];
  let released = 0;
  const seen = (name: string, md: grpc.Metadata) => {
    const metadata: Record<string, string> = {};
    for (const [k, v] of Object.entries(md.getMap()))
      metadata[k] = Buffer.isBuffer(v) ? v.toString('base64') : String(v);
    calls.push({ method: name, metadata });
    return metadata;
  };
  const deadlineMs = (call: grpc.ServerUnaryCall<Msg, Msg> | grpc.ServerWritableStream<Msg, Msg>) => {
    const d = call.getDeadline();
    const at = d instanceof Date ? d.getTime() : Number(d);
    return Number.isFinite(at) ? String(Math.max(0, Math.round(at - Date.now()))) : '-1';
  };
  const estimate = (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
    cb(null, {
      request: call.request,
      metadata: seen(call.getPath(), call.metadata),
      price: '9007199254740993',
      kind: 'APARTMENT',
      at: { seconds: 1_714_979_289, nanos: 123_000_000 },
      took: { seconds: 1, nanos: 500_000_000 },
      deadline_ms: deadlineMs(call),
    });
  };
  const server = new grpc.Server();
  server.addService(definition, {
    Estimate: estimate,
    Lookup: estimate,
    async History(call: grpc.ServerWritableStream<Msg, Msg>) {
      seen(call.getPath(), call.metadata);
      const r = call.request as {
        count?: number;
        fail_after?: number;
        fail_code?: number;
        hold?: boolean;
        padding?: number;
      };
      const pad = 'x'.repeat(r.padding ?? 0);
      const count = r.count ?? 0;
      const progress = {
        id: String(call.request.property_id),
        sent: 0,
        waiting: false,
        cancelled: false,
        ended: false,
      };
      streams.push(progress);
      call.on('cancelled', () => {
        progress.cancelled = true;
      });
      for (let i = 0; i < count; i++) {
        if (progress.cancelled) return;
        if ((r.fail_code ?? 0) > 0 && i === (r.fail_after ?? 0)) {
          call.emit('error', { code: r.fail_code, details: `stopped after ${i}` });
          return;
        }
        progress.sent++;
        if (!call.write({ seq: i, request: { property_id: `${call.request.property_id}${pad}` } })) {
          progress.waiting = true;
          // Whichever comes first removes the other's listener: a long stream waits many times.
          await new Promise<void>((resolve) => {
            const done = () => {
              call.off('drain', done);
              call.off('cancelled', done);
              resolve();
            };
            call.on('drain', done);
            call.on('cancelled', done);
          });
          progress.waiting = false;
        }
        if (r.hold && i === 0)
          await new Promise<void>((resolve) => (released > 0 ? resolve() : releases.push(resolve)));
      }
      progress.ended = true;
      call.end();
    },
    Fail(call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) {
      const r = call.request as { code?: number; message?: string };
      cb({ code: r.code ?? 0, details: r.message ?? '' });
    },
    Slow(call: grpc.ServerUnaryCall<Msg, Msg>) {
      seen(call.getPath(), call.metadata);
    },
    Upload(_call: unknown, cb: grpc.sendUnaryData<Msg>) {
      cb(null, {});
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  return {
    port,
    calls,
    streams,
    release() {
      released++;
      const pending = releases;
      releases = [];
      for (const r of pending) r();
    },
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}
