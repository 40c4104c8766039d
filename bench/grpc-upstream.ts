/**
 * The transcode benchmark's upstream: a @grpc/grpc-js server for bench/protos/items.proto answering
 * GetItem with the kit's JSON upstream body as a message (so transcoded, the answers are equal). Listens on 127.0.0.1:PORT
 * (argument or GRPC_UPSTREAM_PORT) and prints `listening PORT` when ready.
 *
 *   node bench/grpc-upstream.ts 18391
 */
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';

const port = Number(process.argv[2] ?? process.env.GRPC_UPSTREAM_PORT ?? 0);
const root = new protobuf.Root();
// The annotations are options: the server needs only the message types.
root.resolvePath = (origin, target) =>
  target.startsWith('google/') ? (null as unknown as string) : protobuf.util.path.resolve(origin, target);
root.loadSync(new URL('protos/items.proto', import.meta.url).pathname, { keepCase: true });
root.resolveAll();
const Request = root.lookupType('bench.GetItemRequest');
const Item = root.lookupType('bench.Item');

/** The kit upstream's body as an Item; the same for every id but the id. */
const item = (id: number) =>
  Buffer.from(
    Item.encode(
      Item.fromObject({ status: 'ok', service: 'upstream', message: 'fixed benchmark response', items: [1, 2, 3], id }),
    ).finish(),
  );

const server = new grpc.Server();
server.addService(
  {
    GetItem: {
      path: '/bench.Items/GetItem',
      requestStream: false,
      responseStream: false,
      requestSerialize: (b: Buffer) => b,
      requestDeserialize: (b: Buffer) => Request.decode(b) as unknown as { id: number },
      responseSerialize: (b: Buffer) => b,
      responseDeserialize: (b: Buffer) => b,
      originalName: 'GetItem',
    },
  } as unknown as grpc.ServiceDefinition,
  {
    GetItem(call: grpc.ServerUnaryCall<{ id: number }, Buffer>, cb: grpc.sendUnaryData<Buffer>) {
      cb(null, item(call.request.id));
    },
  },
);
server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (e, bound) => {
  if (e) {
    console.error(e.message);
    process.exit(1);
  }
  console.log(`listening ${bound}`);
});
process.on('SIGTERM', () => server.forceShutdown());
