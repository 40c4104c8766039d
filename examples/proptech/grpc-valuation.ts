/**
 * The valuation service's gRPC side: a @grpc/grpc-js server for protos/valuation.proto, its messages
 * coded by protobufjs from the same file. The gateway reaches it over h2c and answers REST calls with
 * it (the `valuations-rest` route's `transcode`): clients never speak gRPC.
 */
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';

const PROTO = fileURLToPath(new URL('protos/valuation.proto', import.meta.url));
const CURRENCIES = new Set(['USD', 'EUR', 'GBP']);
const RATE: Record<string, number> = { USD: 1, EUR: 0.92, GBP: 0.79 };

type Msg = Record<string, unknown>;

/** The same stable number per property as the HTTP valuation app (apps.ts). */
function seed(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}

function valuation(propertyId: string, currency: string, monthsAgo: number): Msg {
  const n = seed(propertyId);
  const usd = 250_000 + (n % 750) * 1000 - monthsAgo * (1000 + (n % 7) * 250);
  const at = new Date();
  at.setUTCMonth(at.getUTCMonth() - monthsAgo, 1);
  at.setUTCHours(0, 0, 0, 0);
  return {
    property_id: propertyId,
    estimate: String(Math.round(usd * RATE[currency]!)),
    currency,
    confidence: (70 + (n % 25)) / 100,
    valued_at: { seconds: String(Math.floor(at.getTime() / 1000)), nanos: 0 },
  };
}

export async function startGrpcValuation(port: number, host: string): Promise<grpc.Server> {
  const root = new protobuf.Root();
  // The google/api annotations are options: the server does not need their definitions.
  root.resolvePath = (origin, target) =>
    target.startsWith('google/api/') ? (null as unknown as string) : protobuf.util.path.resolve(origin, target);
  root.loadSync(PROTO, { keepCase: true });
  root.resolveAll();
  const codec = (name: string) => {
    const t = root.lookupType(`proptech.valuation.v1.${name}`);
    return {
      serialize: (value: Msg) => Buffer.from(t.encode(t.fromObject(value)).finish()),
      deserialize: (bytes: Buffer) => t.toObject(t.decode(bytes), { longs: String, defaults: true }),
    };
  };
  const method = (name: string, request: string, responseStream: boolean) => {
    const req = codec(request);
    const res = codec('Valuation');
    return {
      path: `/proptech.valuation.v1.Valuations/${name}`,
      requestStream: false,
      responseStream,
      requestSerialize: req.serialize,
      requestDeserialize: req.deserialize,
      responseSerialize: res.serialize,
      responseDeserialize: res.deserialize,
      originalName: name,
    };
  };
  const definition = {
    GetValuation: method('GetValuation', 'GetValuationRequest', false),
    ValuationHistory: method('ValuationHistory', 'ValuationHistoryRequest', true),
  } as unknown as grpc.ServiceDefinition;

  const invalid = (details: string) => ({ code: grpc.status.INVALID_ARGUMENT, details });
  const server = new grpc.Server();
  server.addService(definition, {
    GetValuation(call: grpc.ServerUnaryCall<Msg, Msg>, done: grpc.sendUnaryData<Msg>) {
      const id = String(call.request.property_id ?? '');
      const currency = String(call.request.currency || 'USD').toUpperCase();
      if (!/^[\w-]{1,64}$/.test(id)) return done(invalid('property_id: letters, digits, "_" or "-"'));
      if (!CURRENCIES.has(currency)) return done(invalid(`currency: one of ${[...CURRENCIES].join(', ')}`));
      // A property the registry does not know: the gateway answers 404 for this status.
      if (id === '0') return done({ code: grpc.status.NOT_FOUND, details: `no property ${id}` });
      done(null, valuation(id, currency, 0));
    },
    ValuationHistory(call: grpc.ServerWritableStream<Msg, Msg>) {
      const id = String(call.request.property_id ?? '');
      const months = Number(call.request.months) || 6;
      if (!/^[\w-]{1,64}$/.test(id) || months < 1 || months > 24) {
        call.emit('error', invalid('property_id as for GetValuation; months from 1 to 24'));
        return;
      }
      for (let m = months - 1; m >= 0; m--) call.write(valuation(id, 'USD', m));
      call.end();
    },
  });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())),
  );
  return server;
}
