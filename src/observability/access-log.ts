/**
 * The access log: one JSON object per request, per line, to stdout or a file (pino's SonicBoom writer:
 * buffered, asynchronous, never blocking the request path). Field names are API (docs/observability.md).
 */
import { pino } from 'pino';
import { ACCESS_LOG_FIELD_NAMES } from '../api/values.ts';
import { ACCESS_LOG_FLUSH_INTERVAL_MS } from '../core/defaults.ts';

export interface AccessLogEntry {
  time: string;
  requestId: string;
  traceId: string | undefined;
  clientAddress: string;
  method: string;
  host: string;
  path: string;
  route: string | undefined;
  service: string | undefined;
  endpoint: string | undefined;
  consumer: string | undefined;
  status: number;
  code: string | null;
  bytesIn: number;
  bytesOut: number;
  durationMs: number;
  upstreamMs: number | undefined;
  proxyMs: number;
  tries: number;
  /** Each try's endpoint and outcome, when the request was retried. */
  tryLog: { endpoint: string; outcome: string }[] | undefined;
  /** The subset of the destination, when it names one. */
  subset: string | undefined;
  /** Why the request got no upstream answer (`circuit-open:maxRequests`…). */
  refusal: string | undefined;
  /** Why a retriable failure was not retried. */
  retryStop: string | undefined;
  faultDelayMs: number | undefined;
  /** True when the request was chosen for the route's mirror. */
  mirrored: true | undefined;
  userAgent: string | undefined;
  /** The caller's verified SPIFFE ID (mutual TLS), when it has one. */
  principal: string | undefined;
  /** What authorization policies decided (docs/authorization.md), when any had a say. */
  authz: readonly { policy: string; action: string; result: string }[] | undefined;
  /** The API and version of the route (`routes[].version`), when it has one. */
  api: string | undefined;
  apiVersion: string | undefined;
}

export const ACCESS_LOG_FIELDS: readonly (keyof AccessLogEntry)[] = ACCESS_LOG_FIELD_NAMES;

export interface AccessLogSettings {
  /** `stdout`, or a file path (appended to). */
  output: string;
  /** Share of requests logged, 0..1. */
  sampleRatio: number;
  /** Fields to write; all by default. */
  fields?: readonly (keyof AccessLogEntry)[];
}

export class AccessLog {
  private readonly out: ReturnType<typeof pino.destination>;
  private readonly sampleRatio: number;
  private readonly fields: readonly (keyof AccessLogEntry)[];

  constructor(settings: AccessLogSettings) {
    this.out = pino.destination({
      dest: settings.output === 'stdout' ? 1 : settings.output,
      sync: false,
      append: true,
      mkdir: true,
      minLength: 4096,
      // Lines wait in the buffer for at most this long, so a quiet proxy's log is still current
      // (Envoy flushes access log files every second too).
      periodicFlush: ACCESS_LOG_FLUSH_INTERVAL_MS,
    });
    this.sampleRatio = settings.sampleRatio;
    this.fields = settings.fields ?? ACCESS_LOG_FIELDS;
  }

  get sampled(): boolean {
    return this.sampleRatio >= 1 || Math.random() < this.sampleRatio;
  }

  write(entry: AccessLogEntry): void {
    let line: string;
    if (this.fields === ACCESS_LOG_FIELDS) line = JSON.stringify(entry);
    else {
      const picked: Partial<Record<keyof AccessLogEntry, unknown>> = {};
      for (const f of this.fields) picked[f] = entry[f];
      line = JSON.stringify(picked);
    }
    this.out.write(`${line}\n`);
  }

  /** Writes out what is buffered (on shutdown). */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.out.flush?.();
      this.out.end();
      this.out.once('close', () => resolve());
      setTimeout(resolve, 1000).unref();
    });
  }
}
