/**
 * The control plane's core, without HTTP: the model in force, the registry's view, every connected
 * proxy, and the push loop between them (the xDS pattern, state of the world):
 *
 *   change (model or registry) → change record → debounce → for each proxy the change may affect:
 *   generate (incremental, shared) → if the version differs from what it was last sent, push
 *   (version, nonce) → ACK or NACK by nonce.
 *
 * A registry change to service A considers only the proxies whose config includes A (and those that
 * take the whole mesh): the others are not even regenerated. Proxies whose config did not change are
 * sent nothing. After a start, nothing is pushed during the warm-up, so instances that were running
 * re-register before anyone is told they are gone.
 */
import { randomBytes } from 'node:crypto';
import type { Config } from '../../api/config.ts';
import {
  type Ack,
  type ChangeRecord,
  type ConfigIssue,
  type DeltaEvent,
  type Instance,
  type IssuedCertificateView,
  type ProxyIdentity,
  type ProxyStatusView,
  type PushEvent,
  STREAM_EVENTS,
  type StreamHello,
  type SyncState,
  type TrustBundleRef,
  type WelcomeEvent,
} from '../../api/mesh.ts';
import { type CancelTimer, type Clock, schedule, systemClock } from '../../core/clock.ts';
import {
  DEFAULT_CHANGE_HISTORY,
  DEFAULT_CONTROL_PLANE_WARMUP_MS,
  DEFAULT_MODEL_HISTORY,
  DEFAULT_PROXY_FORGET_MS,
  DEFAULT_PUSH_DEBOUNCE_MAX_MS,
  DEFAULT_PUSH_DEBOUNCE_MS,
  DEFAULT_STREAM_KEEPALIVE_MS,
  DEFAULT_TELEMETRY_INTERVAL_MS,
} from '../../core/defaults.ts';
import { ControlPlaneMetrics } from '../../observability/control-plane-metrics.ts';
import type { Logger } from '../../observability/logger.ts';
import { configDelta } from '../generate/delta.ts';
import { MeshContext, type ProxyConfig } from '../generate/mesh-context.ts';
import type { MeshModel } from '../model/model.ts';
import type { Registry, RegistryEvent } from '../registry/registry.ts';
import type { RolloutController } from '../rollout/rollout.ts';
import { ChangeLog } from './changes.ts';

/** Where a proxy's events go: one open stream. */
export interface StreamSink {
  send(event: string, data: unknown): void;
  close(): void;
}

interface InFlight {
  nonce: string;
  /** Clock time it was sent. */
  sentAt: number;
  version: string;
  config: Config;
  changes: number[];
  /** Digest of the trust bundle the push carried, or null. */
  bundle: string | null;
  /** Made from a rollout's canary model (its answer is the rollout's to judge). */
  canary: boolean;
}

interface ProxyState {
  identity: ProxyIdentity;
  sink: StreamSink | null;
  stream: string | null;
  connectedAt: number | null;
  disconnectedAt: number | null;
  sentVersion: string | null;
  ackedVersion: string | null;
  /** The config in force at the proxy, when known (it ACKed it, or said at connect it serves it). */
  ackedConfig: Config | null;
  lastAckAt: number | null;
  /** Resident memory (bytes) the proxy reported with its last answer, and when. */
  rss: { bytes: number; at: number } | null;
  lastNack: { version: string; nonce: string; at: number; error: { message: string; issues?: ConfigIssue[] } } | null;
  inflight: InFlight[];
  forget: CancelTimer | null;
  /** The last config generated for it (shared with every proxy of equal inputs). */
  generated: ProxyConfig | null;
  /** Trust bundle digest last pushed on the open stream, and the one the proxy holds. */
  sentBundle: string | null;
  ackedBundle: string | null;
  /** It said in its hello that it applies `delta` events. */
  delta: boolean;
  /**
   * The config the proxy holds as received on this stream (pushed, or the one it said it serves): the
   * base of the next delta. Null when unknown.
   */
  base: { version: string; config: Config } | null;
  certificate: IssuedCertificateView | null;
}

export interface ControlPlaneOptions {
  /** Its id in logs, stream ids and (with etcd) its key; default: random. */
  id?: string;
  registry: Registry;
  model: MeshModel;
  log: Logger;
  clock?: Clock;
  warmupMs?: number;
  debounceMs?: number;
  debounceMaxMs?: number;
  keepaliveMs?: number;
  changeHistory?: number;
  /** Where change records are kept (default: this process's memory, `changeHistory` of them). */
  changes?: ChangeLog;
  forgetMs?: number;
  /** How often proxies are asked to post telemetry (ms; default DEFAULT_TELEMETRY_INTERVAL_MS; 0: never). */
  telemetryIntervalMs?: number;
}

export type AckResult = { ok: true } | { ok: false; status: number; error: string };

/**
 * A change being rolled out (docs/rollout.md): the canary proxies get configs made from `model`;
 * every other proxy stays on the model in force. Registry changes reach both, each on its model.
 */
interface Canary {
  change: number;
  model: MeshModel;
  context: MeshContext;
  proxies: ReadonlySet<string>;
}

/** What a proxy did with a push (a guarded rollout follows its canaries' answers). */
export type ProxyAnswer =
  | { proxy: string; status: 'applied'; version: string; canary: boolean }
  | {
      proxy: string;
      status: 'rejected';
      version: string;
      /** The push was made from the canary model (not an older push of the model in force). */
      canary: boolean;
      error: { message: string; issues?: ConfigIssue[] };
    }
  | { proxy: string; status: 'disconnected' };

/** The connected proxies a model would change, and the context it was generated in (for `startCanary`). */
export interface CanaryPreview {
  affected: string[];
  context: MeshContext;
}

/** Follows a guarded rollout's telemetry and answers (the rollout controller). */
export interface RolloutHooks {
  answered(answer: ProxyAnswer): void;
  /** Another model was put in force (through another control plane): the canaries were rolled back. */
  superseded(why: string): void;
}

export class ControlPlane {
  readonly id: string;
  readonly startedAt: number;
  readonly registry: Registry;
  readonly changes: ChangeLog;
  readonly keepaliveMs: number;
  readonly telemetryIntervalMs: number;
  readonly metrics: ControlPlaneMetrics;
  private model: MeshModel;
  /** The model indexed, the registry by service, and every config made from them. */
  private context: MeshContext;
  /** A rollout's canary proxies and their model, while it is watched. */
  private canary: Canary | null = null;
  private rolloutHooks: RolloutHooks | null = null;
  /** Set by the model pipeline: guarded rollouts of new models (docs/rollout.md). */
  rollouts: RolloutController | null = null;
  private readonly proxies = new Map<string, ProxyState>();
  /** Which proxies' last config includes each service, and which take the whole mesh. */
  private readonly dependents = new Map<string, Set<ProxyState>>();
  private readonly wholeMesh = new Set<ProxyState>();
  /** Since the last flush: services whose instances changed, or everything (a model, a bundle, the warm-up). */
  private dirtyServices = new Set<string>();
  private dirtyAll = false;
  private readonly log: Logger;
  readonly clock: Clock;
  private readonly debounceMs: number;
  private readonly debounceMaxMs: number;
  private readonly forgetMs: number;
  private warm: boolean;
  private pending: number[] = [];
  private firstPendingAt = 0;
  private lastFlushAt = Number.NEGATIVE_INFINITY;
  private cancelFlush: CancelTimer | null = null;
  private cancelWarmup: CancelTimer | null = null;
  private unwatch: () => void = () => {};
  private nextStream = 1;
  /** Pushed with every config when the control plane issues identities. */
  private trustBundle: TrustBundleRef | null = null;
  /** Recent models by version, each with the version it replaced: a change's diff (the dashboard). */
  private readonly models = new Map<string, { model: MeshModel; previous: string | null }>();

  constructor(options: ControlPlaneOptions) {
    this.id = options.id ?? randomBytes(6).toString('hex');
    this.registry = options.registry;
    this.model = options.model;
    this.context = new MeshContext(options.model.config);
    this.log = options.log;
    this.clock = options.clock ?? systemClock;
    this.debounceMs = options.debounceMs ?? DEFAULT_PUSH_DEBOUNCE_MS;
    this.debounceMaxMs = options.debounceMaxMs ?? DEFAULT_PUSH_DEBOUNCE_MAX_MS;
    this.keepaliveMs = options.keepaliveMs ?? DEFAULT_STREAM_KEEPALIVE_MS;
    this.forgetMs = options.forgetMs ?? DEFAULT_PROXY_FORGET_MS;
    this.telemetryIntervalMs = options.telemetryIntervalMs ?? DEFAULT_TELEMETRY_INTERVAL_MS;
    this.remember(options.model, null);
    this.changes = options.changes ?? new ChangeLog(options.changeHistory ?? DEFAULT_CHANGE_HISTORY);
    this.startedAt = this.clock.now();
    this.metrics = new ControlPlaneMetrics({
      connectedProxies: () => {
        const byKind = new Map<string, number>();
        for (const p of this.proxies.values())
          if (p.sink !== null) byKind.set(p.identity.kind, (byKind.get(p.identity.kind) ?? 0) + 1);
        return byKind;
      },
      instancesByService: () => {
        const byService = new Map<string, number>();
        for (const i of this.context.instances()) byService.set(i.service, (byService.get(i.service) ?? 0) + 1);
        return byService;
      },
    });
    const warmupMs = options.warmupMs ?? DEFAULT_CONTROL_PLANE_WARMUP_MS;
    this.warm = warmupMs <= 0;
    if (!this.warm) this.cancelWarmup = schedule(this.clock, () => this.endWarmup(), warmupMs);
  }

  /** Loads the registry's current instances and follows its changes. */
  async start(): Promise<void> {
    this.unwatch = this.registry.watch((e) => this.onRegistryEvent(e));
    for (const instance of await this.registry.list())
      if (this.context.instance(instance.id) === undefined) this.context.apply({ type: 'registered', instance });
  }

  get isWarm(): boolean {
    return this.warm;
  }

  get currentModel(): MeshModel {
    return this.model;
  }

  /** Every instance, ordered by service then id. */
  instanceList(): readonly Instance[] {
    return this.context.instances();
  }

  /** One instance by id. */
  instance(id: string): Instance | undefined {
    return this.context.instance(id);
  }

  /**
   * Replaces the model. Returns the change id, or null when the model is the same version. `id`: the
   * change's id when a shared store gives it (the etcd revision that made the change).
   */
  setModel(model: MeshModel, cause: string, id?: number): number | null {
    if (this.canary !== null) {
      if (model.version === this.canary.model.version) return this.promoteCanary();
      const why = `superseded by model ${model.version.slice(0, 16)} (${cause})`;
      this.rollbackCanary(why);
      this.rolloutHooks?.superseded(why);
    }
    if (model.version === this.model.version) return null;
    this.remember(model, this.model.version);
    this.model = model;
    this.context.setModel(model.config);
    this.dirtyAll = true;
    return this.change('config', `${cause} (model ${model.version})`, id);
  }

  /**
   * Sets the trust bundle pushed with every config (the CA's, at start and after each rotation). A new
   * bundle is a change: every connected proxy is sent it, with its config, at the next flush.
   */
  setTrustBundle(bundle: TrustBundleRef | null, cause = 'trust bundle changed'): number | null {
    if ((bundle?.digest ?? null) === (this.trustBundle?.digest ?? null)) return null;
    const first = this.trustBundle === null;
    this.trustBundle = bundle === null ? null : { pem: bundle.pem, digest: bundle.digest };
    this.dirtyAll = true;
    return first ? null : this.change('config', `${cause} (bundle ${bundle?.digest.slice(0, 16) ?? 'none'})`);
  }

  private remember(model: MeshModel, previous: string | null) {
    this.models.delete(model.version);
    this.models.set(model.version, { model, previous });
    // Maps iterate in insertion order: the first key is the oldest.
    while (this.models.size > DEFAULT_MODEL_HISTORY) this.models.delete(this.models.keys().next().value!);
  }

  /** A recent model by its version, with the version it replaced (null: the first, or forgotten). */
  modelOf(version: string): { model: MeshModel; previous: MeshModel | null } | undefined {
    const entry = this.models.get(version);
    if (entry === undefined) return undefined;
    return {
      model: entry.model,
      previous: entry.previous === null ? null : (this.models.get(entry.previous)?.model ?? null),
    };
  }

  /** Whether `stream` is the open stream of proxy `id` (reports from an older one are ignored). */
  isOpenStream(id: string, stream: string): boolean {
    const state = this.proxies.get(id);
    return state !== undefined && state.sink !== null && state.stream === stream;
  }

  /**
   * Sends an event to every connected proxy, with the data `dataFor` makes for it (undefined: that
   * proxy gets nothing); returns the ids of those sent to.
   */
  sendEach(event: string, dataFor: (identity: ProxyIdentity) => unknown): string[] {
    const sent: string[] = [];
    for (const state of this.proxies.values()) {
      if (state.sink === null) continue;
      const data = dataFor(state.identity);
      if (data === undefined) continue;
      state.sink.send(event, data);
      sent.push(state.identity.id);
    }
    return sent;
  }

  /**
   * What `config` (a validated candidate model) would make of each proxy's config, with the registry
   * as it is now; used by the shadow config, never pushed as config.
   */
  candidateContext(config: Config): MeshContext {
    return new MeshContext(config, this.context.instances());
  }

  /** The identity a connected proxy said it has, or undefined when it has no open stream. */
  connectedIdentity(id: string): ProxyIdentity | undefined {
    const state = this.proxies.get(id);
    return state?.sink ? state.identity : undefined;
  }

  /** The identity of a proxy that is or was recently connected. */
  knownIdentity(id: string): ProxyIdentity | undefined {
    return this.proxies.get(id)?.identity;
  }

  /** Records the certificate just issued to a proxy, for `proxy-status` and `proxy-config secrets`. */
  recordCertificate(id: string, certificate: IssuedCertificateView): void {
    const state = this.proxies.get(id);
    if (state) state.certificate = certificate;
  }

  /**
   * The proxy's config for the current model and registry (made once per change of what it depends
   * on, and shared by proxies of equal inputs); keeps the index of who depends on what up to date.
   */
  private generate(state: ProxyState): ProxyConfig {
    const generated = this.contextOf(state).generate(state.identity);
    const before = state.generated;
    if (before === null || before.dependsOn !== generated.dependsOn) {
      this.unindex(state);
      if (generated.dependsOn === null) this.wholeMesh.add(state);
      else
        for (const service of generated.dependsOn) {
          let set = this.dependents.get(service);
          if (set === undefined) this.dependents.set(service, (set = new Set()));
          set.add(state);
        }
    }
    state.generated = generated;
    return generated;
  }

  private contextOf(state: ProxyState): MeshContext {
    return this.canary?.proxies.has(state.identity.id) ? this.canary.context : this.context;
  }

  private unindex(state: ProxyState) {
    const before = state.generated;
    if (before === null) return;
    if (before.dependsOn === null) this.wholeMesh.delete(state);
    else
      for (const service of before.dependsOn) {
        const set = this.dependents.get(service);
        set?.delete(state);
        if (set?.size === 0) this.dependents.delete(service);
      }
  }

  private onRegistryEvent(event: RegistryEvent) {
    const i = event.instance;
    for (const service of this.context.apply(event)) this.dirtyServices.add(service);
    // Discovery never waits for a rollout: the canaries' configs follow the registry as well.
    if (this.canary) for (const service of this.canary.context.apply(event)) this.dirtyServices.add(service);
    const health = event.type === 'updated' ? `, ${i.health}` : '';
    this.change(
      'registry',
      `${i.service} instance ${i.id} (${i.address}:${i.port}${health}) ${event.type}`,
      event.revision,
    );
  }

  private change(kind: ChangeRecord['kind'], cause: string, givenId?: number, modelVersion?: string): number {
    const now = this.clock.now();
    const id = this.changes.create(kind, cause, modelVersion ?? this.model.version, now, givenId);
    this.metrics.changes.inc({ kind });
    this.log.info({ change: id, cause }, 'change');
    if (this.pending.length === 0) this.firstPendingAt = now;
    this.pending.push(id);
    if (this.warm) this.scheduleFlush(now);
    return id;
  }

  /**
   * Debounce with a leading edge: a change after a quiet spell is pushed at once (on the next turn of
   * the event loop, so changes made together still go out together); changes that follow within
   * `debounceMs` wait for a pause, but never longer than `debounceMaxMs` after the first of them.
   */
  private scheduleFlush(now: number) {
    this.cancelFlush?.();
    const quiet = now - this.lastFlushAt >= this.debounceMs;
    const delay = quiet ? 0 : Math.min(this.debounceMs, Math.max(0, this.firstPendingAt + this.debounceMaxMs - now));
    this.cancelFlush = schedule(this.clock, () => this.flush(), delay);
  }

  private endWarmup() {
    this.warm = true;
    this.cancelWarmup = null;
    this.dirtyAll = true;
    const connected = [...this.proxies.values()].filter((p) => p.sink !== null).length;
    const instances = this.context.instances().length;
    this.log.info({ instances, proxies: connected }, 'warm-up over; pushing');
    this.change('startup', `warm-up over with ${instances} instances and ${connected} proxies connected`);
    this.flush();
  }

  /**
   * Pushes to every connected proxy whose config changed; records which changes each push carries.
   * Only proxies that depend on what changed are looked at: the rest cannot have a new config.
   */
  flush(): void {
    this.cancelFlush?.();
    this.cancelFlush = null;
    this.lastFlushAt = this.clock.now();
    const ids = this.pending;
    this.pending = [];
    let candidates: Iterable<ProxyState>;
    if (this.dirtyAll) candidates = this.proxies.values();
    else {
      const set = new Set(this.wholeMesh);
      for (const service of this.dirtyServices) for (const state of this.dependents.get(service) ?? []) set.add(state);
      candidates = set;
    }
    this.dirtyAll = false;
    this.dirtyServices = new Set();
    let connected = 0;
    for (const state of this.proxies.values()) if (state.sink !== null) connected++;
    for (const state of candidates) if (state.sink !== null) this.pushIfChanged(state, ids);
    for (const id of ids) this.changes.flushed(id, connected);
  }

  private pushIfChanged(state: ProxyState, changes: number[]): boolean {
    const generated = this.generate(state);
    const current = state.sentVersion ?? state.ackedVersion;
    const bundle = this.trustBundle?.digest ?? null;
    const bundleCurrent = bundle === null || bundle === (state.sentBundle ?? state.ackedBundle);
    if (generated.version === current && bundleCurrent) {
      // It said at connect that it serves this version (e.g. after a restart of this control plane).
      if (state.ackedVersion === generated.version) state.ackedConfig ??= generated.config;
      if (current !== null) state.base ??= { version: current, config: generated.config };
      return false;
    }
    const nonce = randomBytes(8).toString('hex');
    const at = this.clock.now();
    const base = state.delta ? state.base : null;
    const delta = base === null ? null : configDelta(base.config, generated.config);
    state.sentVersion = generated.version;
    state.sentBundle = bundle;
    state.base = { version: generated.version, config: generated.config };
    state.inflight.push({
      nonce,
      sentAt: at,
      version: generated.version,
      config: generated.config,
      changes,
      bundle,
      canary: this.canary?.proxies.has(state.identity.id) ?? false,
    });
    this.metrics.pushes.inc();
    for (const id of changes) this.changes.pushed(id, state.identity.id, generated.version, nonce, at);
    const trustBundle = this.trustBundle ? { trustBundle: this.trustBundle } : {};
    if (base !== null && delta !== null) {
      const event: DeltaEvent = {
        version: generated.version,
        nonce,
        changes,
        base: base.version,
        ...delta,
        ...trustBundle,
      };
      state.sink!.send(STREAM_EVENTS.delta, event);
    } else {
      const event: PushEvent = { version: generated.version, nonce, changes, config: generated.config, ...trustBundle };
      state.sink!.send(STREAM_EVENTS.push, event);
    }
    return true;
  }

  /**
   * A proxy opened a stream. A second stream with the same proxy id replaces the first. `welcomeExtra`
   * joins the welcome event (the identity the proxy may get).
   */
  connect(
    hello: StreamHello,
    sink: StreamSink,
    welcomeExtra: Pick<WelcomeEvent, 'identity'> = {},
  ): { stream: string; close: () => void } {
    const id = hello.proxy.id;
    let state = this.proxies.get(id);
    if (state?.sink) {
      this.log.warn({ proxy: id, stream: state.stream }, 'proxy connected again; closing its older stream');
      const old = state.sink;
      this.disconnect(state, state.stream!);
      old.close();
    }
    const stream = `${this.id}-${this.nextStream++}`;
    const now = this.clock.now();
    state ??= {
      identity: hello.proxy,
      sink: null,
      stream: null,
      connectedAt: null,
      disconnectedAt: null,
      sentVersion: null,
      ackedVersion: null,
      ackedConfig: null,
      lastAckAt: null,
      rss: null,
      lastNack: null,
      inflight: [],
      forget: null,
      generated: null,
      sentBundle: null,
      ackedBundle: null,
      certificate: null,
      delta: false,
      base: null,
    };
    state.forget?.();
    state.forget = null;
    // Its identity may differ from the last stream's: it depends on what its new config includes.
    this.unindex(state);
    Object.assign(state, {
      identity: hello.proxy,
      generated: null,
      sink,
      stream,
      connectedAt: now,
      disconnectedAt: null,
      sentVersion: null,
      sentBundle: null,
      ackedBundle: hello.trustBundleDigest ?? null,
      delta: hello.delta === true,
      base: null,
      inflight: [],
    });
    if (state.ackedVersion !== hello.version) {
      state.ackedVersion = hello.version;
      state.ackedConfig = null;
    }
    this.proxies.set(id, state);
    const welcome: WelcomeEvent = {
      stream,
      controlPlane: { id: this.id, startedAt: new Date(this.startedAt).toISOString() },
      keepaliveMs: this.keepaliveMs,
      ...(this.telemetryIntervalMs > 0 ? { telemetry: { intervalMs: this.telemetryIntervalMs } } : {}),
      ...welcomeExtra,
    };
    sink.send(STREAM_EVENTS.welcome, welcome);
    this.log.info({ proxy: id, kind: hello.proxy.kind, stream, version: hello.version }, 'proxy connected');
    if (this.warm) {
      // Resynchronise: a proxy that already serves what it should is sent nothing.
      const generated = this.generate(state);
      const bundleCurrent = this.trustBundle === null || this.trustBundle.digest === state.ackedBundle;
      // Equal versions are equal configs: what it serves is the base of a first delta.
      if (generated.version === hello.version) state.base = { version: hello.version, config: generated.config };
      if (generated.version === hello.version && bundleCurrent) state.ackedConfig = generated.config;
      else this.pushIfChanged(state, []);
    }
    const current = state;
    return { stream, close: () => this.disconnect(current, stream) };
  }

  private disconnect(state: ProxyState, stream: string) {
    if (state.stream !== stream || state.sink === null) return;
    const now = this.clock.now();
    for (const f of state.inflight)
      this.changes.answered(f.changes, state.identity.id, { status: 'disconnected', at: now });
    state.inflight = [];
    state.sink = null;
    state.sentVersion = null;
    state.sentBundle = null;
    state.base = null;
    state.disconnectedAt = now;
    this.log.info({ proxy: state.identity.id, stream }, 'proxy disconnected');
    this.rolloutHooks?.answered({ proxy: state.identity.id, status: 'disconnected' });
    state.forget = schedule(
      this.clock,
      () => {
        if (state.sink !== null) return;
        this.proxies.delete(state.identity.id);
        this.unindex(state);
        // Configs are kept per distinct input: drop this one's unless a proxy left still has its inputs.
        const key = this.context.keyOf(state.identity);
        for (const other of this.proxies.values()) if (this.context.keyOf(other.identity) === key) return;
        this.context.drop(state.identity);
        this.canary?.context.drop(state.identity);
      },
      this.forgetMs,
    );
  }

  /** An ACK or NACK. It settles the push it names and every older push still open (state of the world). */
  acknowledge(ack: Ack): AckResult {
    const state = this.proxies.get(ack.proxy);
    if (!state || state.stream !== ack.stream)
      return { ok: false, status: 409, error: `stream ${ack.stream} of proxy ${ack.proxy} is not open` };
    const index = state.inflight.findIndex((f) => f.nonce === ack.nonce);
    if (index === -1) return { ok: false, status: 409, error: `nonce ${ack.nonce} is not awaiting an answer` };
    const settled = state.inflight.splice(0, index + 1);
    const push = settled[settled.length - 1]!;
    const now = this.clock.now();
    const changes = settled.flatMap((f) => f.changes);
    this.metrics.pushAnswered.observe({ result: ack.status }, (now - push.sentAt) / 1000);
    if (ack.rssBytes !== undefined) state.rss = { bytes: ack.rssBytes, at: now };
    if (ack.status === 'ack') {
      state.ackedVersion = push.version;
      state.ackedConfig = push.config;
      state.ackedBundle = push.bundle ?? state.ackedBundle;
      state.lastAckAt = now;
      for (const ms of this.changes.answered(changes, ack.proxy, { status: 'applied', at: now }))
        this.metrics.propagation.observe(ms / 1000);
      this.rolloutHooks?.answered({ proxy: ack.proxy, status: 'applied', version: push.version, canary: push.canary });
    } else {
      this.metrics.nacks.inc();
      const error = ack.error ?? { message: 'rejected without a reason' };
      state.lastNack = { version: push.version, nonce: push.nonce, at: now, error };
      // The proxy keeps what it had; another push of the same version would be rejected again.
      this.changes.answered(changes, ack.proxy, { status: 'rejected', at: now, error });
      this.log.warn({ proxy: ack.proxy, version: push.version, error: error.message }, 'proxy rejected its config');
      this.rolloutHooks?.answered({
        proxy: ack.proxy,
        status: 'rejected',
        version: push.version,
        canary: push.canary,
        error,
      });
    }
    return { ok: true };
  }

  // ── Guarded rollouts (docs/rollout.md): the canary model beside the model in force ──

  /** Sets who follows the proxies' answers during rollouts. */
  setRolloutHooks(hooks: RolloutHooks | null): void {
    this.rolloutHooks = hooks;
  }

  /** The model the canaries are on, while a rollout is watched. */
  get canaryModel(): MeshModel | null {
    return this.canary?.model ?? null;
  }

  /** The version proxy `id` should hold now (the canary model's for a canary), or null when unknown. */
  expectedVersion(id: string): string | null {
    const state = this.proxies.get(id);
    return state === undefined ? null : this.generate(state).version;
  }

  /** The connected proxies whose config `model` would change, sorted by id. */
  previewCanary(model: MeshModel): CanaryPreview {
    const context = this.candidateContext(model.config);
    const affected: string[] = [];
    for (const state of this.proxies.values())
      if (state.sink !== null && context.generate(state.identity).version !== this.generate(state).version)
        affected.push(state.identity.id);
    return { affected: affected.sort(), context };
  }

  /**
   * Pushes `model` to the `proxies` given (the canaries) and to no other: every other proxy keeps the
   * model in force. Returns the change's id. The change is pushed at once, alone: a push never
   * carries it together with another change, so its record names the canaries only.
   */
  startCanary(model: MeshModel, preview: CanaryPreview, proxies: readonly string[], cause: string): number {
    if (this.canary !== null) throw new Error(`change ${this.canary.change} is being rolled out`);
    if (this.pending.length > 0) this.flush();
    this.remember(model, this.model.version);
    this.canary = { change: 0, model, context: preview.context, proxies: new Set(proxies) };
    this.dirtyAll = true;
    const id = this.change('config', `${cause} (model ${model.version}, to canaries first)`, undefined, model.version);
    this.canary.change = id;
    this.flush();
    return id;
  }

  /** The canary model becomes the model in force and goes to every proxy, as the same change. */
  private promoteCanary(): number {
    const canary = this.canary!;
    if (this.pending.length > 0) this.flush();
    this.model = canary.model;
    this.context = canary.context;
    this.canary = null;
    this.dirtyAll = true;
    if (this.pending.length === 0) this.firstPendingAt = this.clock.now();
    this.pending.push(canary.change);
    this.flush();
    return canary.change;
  }

  /**
   * Ends a rollout without its model: the canaries get the model in force again, as a new change
   * (returned) whose cause says why.
   */
  rollbackCanary(why: string): number | null {
    const canary = this.canary;
    if (canary === null) return null;
    if (this.pending.length > 0) this.flush();
    this.canary = null;
    this.dirtyAll = true;
    const id = this.change('config', `rollback of change ${canary.change}: ${why}`);
    this.flush();
    return id;
  }

  proxyIds(): string[] {
    return [...this.proxies.keys()].sort();
  }

  proxyStatus(id: string): (ProxyStatusView & { config: Config | null; expectedConfig: Config | null }) | undefined {
    const state = this.proxies.get(id);
    if (!state) return undefined;
    const expected = this.generate(state);
    return {
      ...this.view(state, expected.version),
      config: state.ackedConfig,
      expectedConfig: expected.version === state.ackedVersion ? null : expected.config,
    };
  }

  proxyStatuses(): ProxyStatusView[] {
    return this.proxyIds().map((id) => {
      const state = this.proxies.get(id)!;
      return this.view(state, this.generate(state).version);
    });
  }

  private view(state: ProxyState, expectedVersion: string): ProxyStatusView {
    const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
    let syncState: SyncState;
    if (state.sink === null) syncState = 'DISCONNECTED';
    else if (state.ackedVersion === expectedVersion && state.inflight.length === 0) syncState = 'SYNCED';
    else if (state.inflight.length > 0) syncState = 'PENDING';
    else if (state.lastNack && state.lastNack.version === state.sentVersion) syncState = 'NACKED';
    else syncState = 'NOT_SENT';
    return {
      id: state.identity.id,
      kind: state.identity.kind,
      service: state.identity.service ?? null,
      identity: state.identity,
      connected: state.sink !== null,
      state: syncState,
      expectedVersion,
      sentVersion: state.sentVersion,
      ackedVersion: state.ackedVersion,
      lastAckAt: iso(state.lastAckAt),
      lastNack: state.lastNack && { ...state.lastNack, at: new Date(state.lastNack.at).toISOString() },
      connectedAt: iso(state.connectedAt),
      disconnectedAt: iso(state.disconnectedAt),
      stream: state.stream,
      ackedTrustBundle: state.ackedBundle,
      certificate: state.certificate,
      rssBytes: state.rss?.bytes ?? null,
      rssAt: iso(state.rss?.at ?? null),
    };
  }

  /** Closes every stream (proxies reconnect with backoff) and stops timers. */
  close(): void {
    this.rollouts?.close();
    this.cancelFlush?.();
    this.cancelWarmup?.();
    this.unwatch();
    for (const state of this.proxies.values()) {
      const sink = state.sink;
      if (sink) {
        this.disconnect(state, state.stream!);
        sink.close();
      }
      state.forget?.();
    }
  }
}
