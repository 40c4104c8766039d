/**
 * A proxy's subscription to its control plane: one long-lived stream (`POST /stream`, server-sent
 * events) carrying whole configs. It is a push source of the proxy's config pipeline: each config is
 * submitted (validated with the same validator as a config file, prepared in every worker, committed),
 * then ACKed, or NACKed with the reason, in which case the proxy keeps what it had. Pushes are state
 * of the world: while one applies, only the newest waiting one runs (the pipeline supersedes the rest).
 *
 * Static stability: the proxy never depends on the control plane to keep serving. When the stream
 * breaks, goes silent, or carries garbage, the config in force stays; the proxy reconnects with
 * exponential backoff and full jitter and tells the control plane the version it serves, so it is
 * sent something only if that is out of date.
 */

import type { Agent, ClientRequest } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Config } from '../../api/config.ts';
import type { ExplainedTrail } from '../../api/explain.ts';
import type {
  DeltaEvent,
  LookupEvent,
  ProxyIdentity,
  PushEvent,
  RequestRecord,
  ShadowAnswer,
  ShadowEvent,
  StreamHello,
  TrustBundleRef,
  WelcomeEvent,
} from '../../api/mesh.ts';
import { MAX_LOOKUP_RECORDS, STREAM_EVENTS } from '../../api/values.ts';
import { hashConfig } from '../../config/load.ts';
import type { ChangeRequest, Outcome } from '../../config/pipeline.ts';
import {
  DEFAULT_CONTROL_REQUEST_TIMEOUT_MS,
  DEFAULT_RECONNECT_BASE_MS,
  DEFAULT_RECONNECT_MAX_MS,
  DEFAULT_STREAM_IDLE_TIMEOUT_MS,
} from '../../core/defaults.ts';
import { http } from '../../core/node-http.ts';
import type { Logger } from '../../observability/logger.ts';
import type { TelemetrySample } from '../telemetry-sample.ts';
import { applyDelta } from './delta.ts';
import { bearer, controlAgent, errorOf, requestJson } from './http.ts';

export interface SubscriptionOptions {
  /** Base URL of the control plane, e.g. `http://127.0.0.1:15010`. */
  url: string;
  identity: ProxyIdentity;
  /** The proxy's config pipeline, which validates and applies what is pushed. */
  pipeline: { submit(change: ChangeRequest): Promise<Outcome<unknown>> };
  log: Logger;
  reconnectBaseMs?: number;
  reconnectMaxMs?: number;
  /** Silence after which the stream is considered dead (default: 3 keep-alives, as the control plane says). */
  idleTimeoutMs?: number;
  requestTimeoutMs?: number;
  /** Uniform in [0, 1): injectable so tests can pin the jitter. */
  random?: () => number;
  /** Called after every reconnect's welcome (e.g. the sidecar re-registers at once). */
  onConnected?: () => void;
  /** Join token sent as `Authorization: Bearer` on the stream and the answers. */
  token?: string;
  /** Every welcome (it says whether the control plane issues identities, and which one this proxy gets). */
  onWelcome?: (welcome: WelcomeEvent) => void;
  /** A pushed trust bundle, once its push is applied. */
  onTrustBundle?: (bundle: TrustBundleRef) => void;
  /** The body of the telemetry report, posted when the control plane's welcome asks for one. */
  telemetry?: () => Promise<TelemetrySample>;
  /** The proxy's records of these requests (ids or trace ids), for a `lookup` event. */
  lookup?: (match: string[]) => Promise<RequestRecord[]>;
  /** The proxy's decision trails of these requests, for a `lookup` event that asks for them (`explain`). */
  explain?: (match: string[]) => Promise<ExplainedTrail[]>;
  /** Sets, reads or clears the shadow config the control plane generated for this proxy (a `shadow` event). */
  shadow?: (event: ShadowEvent) => Promise<ShadowAnswer>;
  /**
   * Ask for `delta` events (default true): after the first config on a stream, a change arrives as
   * what differs, which this proxy rebuilds into the whole config and checks against its version.
   */
  delta?: boolean;
}

export interface SubscriptionStatus {
  controlPlane: string;
  connected: boolean;
  stream: string | null;
  controlPlaneId: string | null;
  connectedSince: string | null;
  /** The version in force (last applied or confirmed). */
  version: string | null;
  lastPush: { version: string; nonce: string; at: string } | null;
  lastAckAt: string | null;
  lastNack: { version: string; nonce: string; at: string; error: string } | null;
  /** Streams opened since start, and failures to open or keep one. */
  connects: number;
  failures: number;
  lastError: string | null;
  /** Events that could not be read (not JSON, missing fields); they change nothing. */
  garbage: number;
}

export class ControlPlaneSubscription {
  private readonly options: SubscriptionOptions;
  private readonly agent: Agent;
  private readonly log: Logger;
  private closed = false;
  private current: ClientRequest | null = null;
  private stream: string | null = null;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private reportTimer: NodeJS.Timeout | undefined;
  private idleTimeoutMs: number;
  private version: string | null = null;
  /** Digest of the trust bundle last applied with a push. */
  private bundleDigest: string | null = null;
  /** The config in force (its version is `version`): the first base of deltas on a new stream. */
  private applied: Config | null = null;
  /** The config last received on the open stream, whether applied or not: the base of the next delta. */
  private received: { version: string; config: Config } | null = null;
  /** Ends the open stream, so that the proxy reconnects and says what it serves. */
  private abort: ((reason: string) => void) | null = null;
  private resolveFirst!: () => void;
  /** Resolves once a first config is in force. */
  readonly firstConfig: Promise<void>;
  private readonly state: SubscriptionStatus;

  constructor(options: SubscriptionOptions) {
    this.options = options;
    this.log = options.log;
    this.agent = controlAgent();
    this.idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_STREAM_IDLE_TIMEOUT_MS;
    this.firstConfig = new Promise((resolve) => (this.resolveFirst = resolve));
    this.state = {
      controlPlane: options.url,
      connected: false,
      stream: null,
      controlPlaneId: null,
      connectedSince: null,
      version: null,
      lastPush: null,
      lastAckAt: null,
      lastNack: null,
      connects: 0,
      failures: 0,
      lastError: null,
      garbage: 0,
    };
  }

  start(): void {
    this.connect();
  }

  status(): SubscriptionStatus {
    return { ...this.state, version: this.version };
  }

  /** Stops reconnecting and closes the stream; the config in force stays. */
  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.idleTimer);
    clearInterval(this.reportTimer);
    this.current?.destroy();
    this.agent.destroy();
  }

  private connect() {
    if (this.closed) return;
    const hello: StreamHello = {
      proxy: this.options.identity,
      version: this.version,
      ...(this.bundleDigest === null ? {} : { trustBundleDigest: this.bundleDigest }),
      ...(this.options.delta === false ? {} : { delta: true }),
    };
    this.received =
      this.version !== null && this.applied !== null ? { version: this.version, config: this.applied } : null;
    const payload = JSON.stringify(hello);
    const req = http.request(new URL('/stream', this.options.url), {
      method: 'POST',
      agent: this.agent,
      headers: {
        ...bearer(this.options.token),
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(payload),
        accept: 'text/event-stream',
      },
    });
    this.current = req;
    let failed = false;
    const fail = (reason: string) => {
      if (failed) return;
      failed = true;
      clearTimeout(this.idleTimer);
      if (this.current === req) this.current = null;
      req.destroy();
      this.onStreamEnd(reason);
    };
    this.abort = fail;
    this.armIdle(() => fail(`no answer within ${this.idleTimeoutMs} ms`));
    req.on('error', (e) => fail(e.message));
    req.on('response', (res) => {
      if (res.statusCode !== 200) {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          let reason = `status ${res.statusCode}`;
          try {
            reason = errorOf({ status: res.statusCode ?? 0, body: JSON.parse(text) });
          } catch {}
          fail(`the control plane refused the stream: ${reason}`);
        });
        return;
      }
      let buffered = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        this.armIdle(() => fail(`the stream was silent for ${this.idleTimeoutMs} ms`));
        buffered += chunk;
        let end = buffered.indexOf('\n\n');
        while (end !== -1) {
          const block = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          this.onBlock(block);
          end = buffered.indexOf('\n\n');
        }
      });
      res.on('end', () => fail('the control plane closed the stream'));
      res.on('error', (e) => fail(e.message));
    });
    req.end(payload);
  }

  private armIdle(onIdle: () => void) {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(onIdle, this.idleTimeoutMs);
    this.idleTimer.unref();
  }

  private onStreamEnd(reason: string) {
    const wasConnected = this.state.connected;
    clearInterval(this.reportTimer);
    this.stream = null;
    this.state.connected = false;
    this.state.stream = null;
    this.state.failures++;
    this.state.lastError = reason;
    if (this.closed) return;
    const ceiling = Math.min(
      this.options.reconnectMaxMs ?? DEFAULT_RECONNECT_MAX_MS,
      (this.options.reconnectBaseMs ?? DEFAULT_RECONNECT_BASE_MS) * 2 ** this.attempt,
    );
    // Full jitter: proxies that lost the same control plane do not all come back in the same instant.
    const delay = Math.round((this.options.random ?? Math.random)() * ceiling);
    this.attempt = Math.min(this.attempt + 1, 30);
    const fields = { reason, retryInMs: delay, version: this.version };
    // The first failure is news; repeats while it stays down are not.
    if (wasConnected || this.attempt === 1)
      this.log.warn(fields, 'control plane stream lost; serving the config in force');
    else this.log.debug(fields, 'control plane still unreachable');
    this.retryTimer = setTimeout(() => this.connect(), delay);
    this.retryTimer.unref();
  }

  private onBlock(block: string) {
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) continue; // keep-alive comment
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    if (data.length === 0) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(data.join('\n'));
    } catch {
      this.garbage(`event "${event}" is not JSON`);
      return;
    }
    if (event === STREAM_EVENTS.welcome) this.onWelcome(parsed as WelcomeEvent);
    else if (event === STREAM_EVENTS.push) this.onPush(parsed as PushEvent);
    else if (event === STREAM_EVENTS.lookup) void this.onLookup(parsed as LookupEvent);
    else if (event === STREAM_EVENTS.delta) this.onDelta(parsed as DeltaEvent);
    else if (event === STREAM_EVENTS.shadow) void this.onShadow(parsed as ShadowEvent);
    // Unknown events are ignored: a newer control plane may send more than this proxy knows.
  }

  private garbage(why: string) {
    this.state.garbage++;
    this.log.warn({ why }, 'ignored an unreadable event from the control plane; the config in force stays');
  }

  private onWelcome(welcome: WelcomeEvent) {
    if (typeof welcome?.stream !== 'string') return this.garbage('welcome without a stream id');
    this.stream = welcome.stream;
    this.attempt = 0;
    if (this.options.idleTimeoutMs === undefined && typeof welcome.keepaliveMs === 'number' && welcome.keepaliveMs > 0)
      this.idleTimeoutMs = welcome.keepaliveMs * 3;
    Object.assign(this.state, {
      connected: true,
      stream: welcome.stream,
      controlPlaneId: welcome.controlPlane?.id ?? null,
      connectedSince: new Date().toISOString(),
      connects: this.state.connects + 1,
    });
    this.log.info(
      { controlPlane: this.options.url, stream: welcome.stream, version: this.version },
      'control plane connected',
    );
    this.options.onWelcome?.(welcome);
    this.options.onConnected?.();
    clearInterval(this.reportTimer);
    const every = welcome.telemetry?.intervalMs;
    if (this.options.telemetry && typeof every === 'number' && every > 0) {
      const stream = welcome.stream;
      this.reportTimer = setInterval(() => void this.report(stream), every);
      this.reportTimer.unref();
    }
  }

  /** One telemetry report; a failed one is only logged (the next carries the same counters, and more). */
  private async report(stream: string) {
    try {
      const sample = await this.options.telemetry!();
      if (this.stream !== stream) return;
      const res = await this.post('/telemetry', { proxy: this.options.identity.id, stream, ...sample });
      if (res.status !== 200) this.log.debug({ status: res.status, error: errorOf(res) }, 'telemetry not recorded');
    } catch (e) {
      this.log.debug({ err: (e as Error).message }, 'could not send the telemetry report');
    }
  }

  private async onLookup(event: LookupEvent) {
    const stream = this.stream;
    if (!this.options.lookup || stream === null) return;
    if (typeof event?.id !== 'string' || !Array.isArray(event.match)) return this.garbage('lookup without id or match');
    try {
      const match = event.match.filter((m) => typeof m === 'string').slice(0, 16);
      if (event.explain === true) {
        const trails = this.options.explain === undefined ? [] : await this.options.explain(match);
        await this.post('/lookups', { proxy: this.options.identity.id, stream, id: event.id, records: [], trails });
        return;
      }
      const records = (await this.options.lookup(match)).slice(-MAX_LOOKUP_RECORDS);
      await this.post('/lookups', { proxy: this.options.identity.id, stream, id: event.id, records });
    } catch (e) {
      this.log.debug({ err: (e as Error).message }, 'could not answer a request lookup');
    }
  }

  private async onShadow(event: ShadowEvent) {
    const stream = this.stream;
    if (!this.options.shadow || stream === null) return;
    if (typeof event?.id !== 'string' || !['set', 'report', 'clear'].includes(event.op))
      return this.garbage('shadow without id or op');
    if (event.op === 'set' && (typeof event.shadow?.id !== 'string' || typeof event.shadow.config !== 'object'))
      return this.garbage('shadow set without its config');
    let shadow: ShadowAnswer;
    try {
      shadow = await this.options.shadow(event);
    } catch (e) {
      shadow = { error: (e as Error)?.message ?? String(e) };
    }
    try {
      await this.post('/lookups', { proxy: this.options.identity.id, stream, id: event.id, records: [], shadow });
    } catch (e) {
      this.log.debug({ err: (e as Error).message }, 'could not answer about the shadow config');
    }
  }

  private post(path: string, body: unknown) {
    return requestJson(
      this.agent,
      new URL(path, this.options.url).href,
      'POST',
      body,
      this.options.requestTimeoutMs ?? DEFAULT_CONTROL_REQUEST_TIMEOUT_MS,
      bearer(this.options.token),
    );
  }

  private onPush(push: PushEvent) {
    if (typeof push?.nonce !== 'string' || typeof push.version !== 'string' || this.stream === null)
      return this.garbage('push without nonce or version');
    this.state.lastPush = { version: push.version, nonce: push.nonce, at: new Date().toISOString() };
    this.received = { version: push.version, config: push.config };
    void this.handle(push, this.stream);
  }

  /**
   * A change as what differs from the config last received. One that cannot be rebuilt exactly (a base
   * this proxy does not hold, another version than announced) is not applied: the proxy reconnects,
   * and its hello says what it serves, so the control plane sends what it lacks whole.
   */
  private onDelta(delta: DeltaEvent) {
    if (
      typeof delta?.nonce !== 'string' ||
      typeof delta.version !== 'string' ||
      typeof delta.base !== 'string' ||
      this.stream === null
    )
      return this.garbage('delta without nonce, version or base');
    const received = this.received;
    const resync = (why: string) => {
      this.log.warn({ why, version: delta.version }, 'cannot rebuild a delta; reconnecting for the whole config');
      this.abort?.(why);
    };
    if (received === null || received.version !== delta.base)
      return resync(`delta on ${delta.base}, but this proxy holds ${received?.version ?? 'nothing'}`);
    const rebuilt = applyDelta(received.config, delta);
    if ('error' in rebuilt) return resync(rebuilt.error);
    if (hashConfig(rebuilt.config) !== delta.version)
      return resync(`the rebuilt config is not version ${delta.version}`);
    this.state.lastPush = { version: delta.version, nonce: delta.nonce, at: new Date().toISOString() };
    this.received = { version: delta.version, config: rebuilt.config };
    const { base: _base, services: _services, set: _set, unset: _unset, ...push } = delta;
    void this.handle({ ...push, config: rebuilt.config }, this.stream);
  }

  private async handle(push: PushEvent, stream: string) {
    const started = performance.now();
    const outcome = await this.options.pipeline.submit({
      trigger: 'push',
      key: 'control-plane',
      fields: { version: push.version, changes: push.changes },
      read: async () => ({ kind: 'object', data: push.config, source: `control-plane ${this.options.url}` }),
    });
    switch (outcome.status) {
      case 'superseded':
        // A newer push replaced it before its turn; that one is answered.
        return;
      case 'rejected': {
        const n = outcome.issues.length;
        return this.answer(push, stream, {
          status: 'nack',
          error: { message: `invalid config: ${n} problem${n === 1 ? '' : 's'}`, issues: outcome.issues },
        });
      }
      case 'failed':
        return this.answer(push, stream, { status: 'nack', error: { message: outcome.error.message } });
    }
    this.version = push.version;
    this.applied = push.config;
    if (push.trustBundle !== undefined && typeof push.trustBundle.digest === 'string') {
      this.bundleDigest = push.trustBundle.digest;
      this.options.onTrustBundle?.(push.trustBundle);
    }
    this.resolveFirst();
    return this.answer(push, stream, { status: 'ack', applyMs: performance.now() - started });
  }

  private async answer(
    push: PushEvent,
    stream: string,
    outcome: { status: 'ack'; applyMs: number } | { status: 'nack'; error: { message: string; issues?: unknown[] } },
  ) {
    const now = new Date().toISOString();
    if (outcome.status === 'ack') this.state.lastAckAt = now;
    else this.state.lastNack = { version: push.version, nonce: push.nonce, at: now, error: outcome.error.message };
    const ack = {
      proxy: this.options.identity.id,
      stream,
      nonce: push.nonce,
      version: push.version,
      ...outcome,
      ...(outcome.status === 'nack' ? { kept: this.version } : {}),
      // What this proxy costs, for the control plane's status (the process holding the stream).
      rssBytes: process.memoryUsage.rss(),
    };
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await requestJson(
          this.agent,
          new URL('/ack', this.options.url).href,
          'POST',
          ack,
          this.options.requestTimeoutMs ?? DEFAULT_CONTROL_REQUEST_TIMEOUT_MS,
          bearer(this.options.token),
        );
        // 409: the stream or push is gone (a reconnect); the next hello carries the version instead.
        if (res.status !== 200) this.log.debug({ status: res.status, error: errorOf(res) }, 'answer not recorded');
        return;
      } catch (e) {
        // A kept-alive connection the control plane closed as it was reused: the answer never left, and
        // an unanswered push leaves its change pending. Once more, on a new connection. (A repeat of an
        // answer that did arrive is refused with 409, changing nothing.)
        const code = (e as NodeJS.ErrnoException).code;
        if (attempt === 1 && (code === 'ECONNRESET' || code === 'EPIPE')) continue;
        this.log.debug({ err: (e as Error).message }, 'could not send the answer; the next hello carries the version');
        return;
      }
    }
  }
}
