/**
 * The sidecar's side of discovery: it registers its instance only once the app answers its readiness
 * check, heartbeats within the TTL (reporting the app's health, so an app that stops answering leaves
 * the endpoints at the next check), registers again when the control plane no longer knows it (it
 * restarted), and deregisters first on shutdown.
 */
import type { Agent } from 'node:http';
import type { HealthState, InstanceRegistration } from '../../api/mesh.ts';
import {
  APP_STARTUP_CHECK_INTERVAL_MS,
  DEFAULT_APP_CHECK_INTERVAL_MS,
  DEFAULT_APP_CHECK_TIMEOUT_MS,
  DEFAULT_CONTROL_REQUEST_TIMEOUT_MS,
  HEARTBEATS_PER_TTL,
} from '../../core/defaults.ts';
import { http } from '../../core/node-http.ts';
import type { Logger } from '../../observability/logger.ts';
import { bearer, controlAgent, errorOf, requestJson } from './http.ts';

export interface InstanceAgentOptions {
  /** Base URL of the control plane. */
  url: string;
  /** What to register; `ttlMs` also sets the heartbeat interval (a third of it). */
  registration: InstanceRegistration & { ttlMs: number };
  /** The app's readiness check: `GET {app}{readyPath}`, 200–399 is ready. */
  app: string;
  readyPath: string;
  log: Logger;
  checkIntervalMs?: number;
  checkTimeoutMs?: number;
  requestTimeoutMs?: number;
  /** Join token sent as `Authorization: Bearer` (docs/security.md). */
  token?: string;
}

export interface InstanceAgentStatus {
  id: string;
  registered: boolean;
  health: HealthState | null;
  lastHeartbeatAt: string | null;
  registrations: number;
  lastError: string | null;
}

export class InstanceAgent {
  private readonly options: InstanceAgentOptions;
  private readonly agent: Agent;
  private readonly log: Logger;
  private readonly instanceUrl: string;
  private stopped = false;
  private health: HealthState | null = null;
  private registered = false;
  private checkTimer: NodeJS.Timeout | undefined;
  private beatTimer: NodeJS.Timeout | undefined;
  private sending: Promise<void> = Promise.resolve();
  private failing = false;
  private readonly state: InstanceAgentStatus;
  private resolveReady!: () => void;
  /** Resolves once the app has passed its first readiness check. */
  readonly appReady: Promise<void>;

  constructor(options: InstanceAgentOptions) {
    this.options = options;
    this.log = options.log;
    this.agent = controlAgent();
    this.instanceUrl = new URL(`/instances/${encodeURIComponent(options.registration.id)}`, options.url).href;
    this.appReady = new Promise((resolve) => (this.resolveReady = resolve));
    this.state = {
      id: options.registration.id,
      registered: false,
      health: null,
      lastHeartbeatAt: null,
      registrations: 0,
      lastError: null,
    };
  }

  start(): void {
    void this.check();
    const beatMs = Math.max(100, Math.floor(this.options.registration.ttlMs / HEARTBEATS_PER_TTL));
    const beat = () => {
      if (this.stopped) return;
      if (this.health !== null) this.send();
      this.beatTimer = setTimeout(beat, beatMs);
      this.beatTimer.unref();
    };
    this.beatTimer = setTimeout(beat, beatMs);
    this.beatTimer.unref();
  }

  status(): InstanceAgentStatus {
    return { ...this.state, registered: this.registered, health: this.health };
  }

  /** Registers again now (after the control plane came back), instead of at the next heartbeat. */
  reregister(): void {
    if (this.health === null || this.stopped) return;
    this.registered = false;
    this.send();
  }

  /** Stops checking and heartbeating, and removes the instance from the registry. */
  async deregister(): Promise<boolean> {
    this.stop();
    await this.sending;
    if (this.health === null) return false;
    try {
      const res = await requestJson(
        this.agent,
        this.instanceUrl,
        'DELETE',
        undefined,
        this.timeout(),
        bearer(this.options.token),
      );
      this.log.info({ instance: this.options.registration.id, status: res.status }, 'instance deregistered');
      return res.status === 200;
    } catch (e) {
      // The TTL removes it anyway.
      this.log.warn({ err: (e as Error).message }, 'could not deregister; the registry drops the instance at its TTL');
      return false;
    }
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.checkTimer);
    clearTimeout(this.beatTimer);
  }

  close(): void {
    this.stop();
    this.agent.destroy();
  }

  private timeout() {
    return this.options.requestTimeoutMs ?? DEFAULT_CONTROL_REQUEST_TIMEOUT_MS;
  }

  private async check() {
    if (this.stopped) return;
    const ready = await probe(
      this.options.app + this.options.readyPath,
      this.options.checkTimeoutMs ?? DEFAULT_APP_CHECK_TIMEOUT_MS,
    );
    if (this.stopped) return;
    const health: HealthState = ready.ok ? 'healthy' : 'unhealthy';
    if (this.health === null) {
      if (ready.ok) {
        this.log.info({ app: this.options.app }, 'app is ready');
        this.health = health;
        this.resolveReady();
        this.send();
      } else if (!this.failing) {
        this.failing = true;
        this.log.info(
          { app: this.options.app, path: this.options.readyPath, reason: ready.reason },
          'waiting for the app',
        );
      }
    } else if (health !== this.health) {
      this.log.warn({ app: this.options.app, health, reason: ready.reason }, 'app health changed');
      this.health = health;
      this.send();
    }
    // Until the app is first ready, check often so it is registered soon after.
    const every = this.options.checkIntervalMs ?? DEFAULT_APP_CHECK_INTERVAL_MS;
    this.checkTimer = setTimeout(
      () => void this.check(),
      this.health === null ? Math.min(every, APP_STARTUP_CHECK_INTERVAL_MS) : every,
    );
    this.checkTimer.unref();
  }

  /** Registers or heartbeats, one request at a time. */
  private send() {
    this.sending = this.sending.then(() => (this.stopped ? undefined : this.sendNow()));
  }

  private async sendNow() {
    const health = this.health!;
    try {
      if (this.registered) {
        const res = await requestJson(
          this.agent,
          `${this.instanceUrl}/heartbeat`,
          'PUT',
          { health },
          this.timeout(),
          bearer(this.options.token),
        );
        if (res.status === 200) return this.ok();
        if (res.status !== 404) throw new Error(errorOf(res));
        this.log.info(
          { instance: this.options.registration.id },
          'the control plane lost this instance; registering again',
        );
        this.registered = false;
      }
      const { id: _id, ...registration } = this.options.registration;
      const res = await requestJson(
        this.agent,
        this.instanceUrl,
        'PUT',
        { ...registration, health },
        this.timeout(),
        bearer(this.options.token),
      );
      if (res.status !== 200) throw new Error(errorOf(res));
      this.registered = true;
      this.state.registrations++;
      this.log.info({ instance: this.options.registration.id, health, port: registration.port }, 'instance registered');
      this.ok();
    } catch (e) {
      const message = (e as Error).message;
      if (this.state.lastError === null)
        this.log.warn({ err: message }, 'cannot reach the control plane registry; retrying at each heartbeat');
      this.state.lastError = message;
    }
  }

  private ok() {
    this.state.lastHeartbeatAt = new Date().toISOString();
    if (this.state.lastError !== null) this.log.info('control plane registry reachable again');
    this.state.lastError = null;
  }
}

/** One readiness check: any answer 200–399 within the timeout. */
function probe(url: string, timeoutMs: number): Promise<{ ok: boolean; reason: string }> {
  return new Promise((resolve) => {
    const req = http.request(url, { method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      resolve({ ok: status >= 200 && status < 400, reason: `status ${status}` });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (e) => resolve({ ok: false, reason: e.message }));
    req.end();
  });
}
