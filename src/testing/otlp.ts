/**
 * An OTLP/HTTP trace receiver for tests and the demo: accepts `POST /v1/traces` in the JSON encoding
 * (what the proxies send, as OpenTelemetry's OTLP/HTTP exporters do) and keeps the spans, flattened,
 * in arrival order. Protobuf bodies are refused with 415 so a wrongly configured exporter fails loudly.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { flattenExport, type OtlpExport, type ReceivedSpan } from '../observability/otlp-json.ts';

export type { AttributeValue, ReceivedSpan } from '../observability/otlp-json.ts';
export { flattenExport };

export interface OtlpReceiver {
  /** Where exporters send: `http://127.0.0.1:PORT/v1/traces`. */
  url: string;
  spans: ReceivedSpan[];
  /** Content types of the export requests received. */
  contentTypes: string[];
  /** Resolves with the spans once `done(spans)` holds; rejects after `timeoutMs`. */
  waitFor(done: (spans: ReceivedSpan[]) => boolean, timeoutMs?: number): Promise<ReceivedSpan[]>;
  close(): Promise<void>;
}

/** Largest export body accepted. */
const MAX_EXPORT_BYTES = 16 * 1024 * 1024;

export async function startOtlpReceiver(port = 0): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const contentTypes: string[] = [];
  const waiters = new Set<() => void>();
  const server: Server = createServer((req, res) => {
    if (req.method !== 'POST' || req.url !== '/v1/traces') {
      res.writeHead(404).end();
      return;
    }
    const type = req.headers['content-type'] ?? '';
    contentTypes.push(type);
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_EXPORT_BYTES) req.destroy();
      else chunks.push(c);
    });
    req.on('end', () => {
      if (!type.startsWith('application/json')) {
        res.writeHead(415, { 'content-type': 'application/json' }).end('{"error":"send OTLP/HTTP JSON"}');
        return;
      }
      try {
        spans.push(...flattenExport(JSON.parse(Buffer.concat(chunks).toString('utf8')) as OtlpExport));
      } catch {
        res.writeHead(400).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      for (const wake of waiters) wake();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${bound}/v1/traces`,
    spans,
    contentTypes,
    waitFor(done, timeoutMs = 10_000) {
      if (done(spans)) return Promise.resolve(spans);
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!done(spans)) return;
          cleanup();
          resolve(spans);
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`spans not received within ${timeoutMs} ms (have ${spans.length})`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
      });
    },
    close() {
      return new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}
