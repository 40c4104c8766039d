/**
 * Guarded rollouts (docs/rollout.md): a new model goes to a share of the proxies it affects first
 * (the canaries), while every other proxy keeps the model in force; the canaries' answers and their
 * own telemetry are watched for a window; then the model is promoted (committed to the model store,
 * so it goes to every proxy as the same change) or rolled back (the canaries get the model in force
 * again, as a new change). One rollout runs at a time, and no other model change is accepted while
 * it runs: they are refused with MG_ROLLOUT_IN_PROGRESS, never queued behind it.
 *
 * What is decided, when, and why is written into the change's record (`rollout`), so `GET
 * /changes/{id}` and `meshgate status` show it.
 */
import type { RolloutDecision, RolloutOptions, RolloutSignals, RolloutView, TelemetryReport } from '../../api/mesh.ts';
import { type CancelTimer, type Clock, schedule, systemClock } from '../../core/clock.ts';
import { DEFAULT_ROLLOUT_ANSWER_TIMEOUT_MS } from '../../core/defaults.ts';
import type { Logger } from '../../observability/logger.ts';
import type { MeshModel } from '../model/model.ts';
import type { ModelStore } from '../model/store.ts';
import type { ControlPlane, ProxyAnswer } from '../server/control-plane.ts';
import {
  difference,
  judge,
  type RolloutPolicy,
  rolloutPolicy,
  selectCanaries,
  signalsOf,
  type Totals,
  totalsOf,
} from './policy.ts';

/** A rollout (or a model change during one) that cannot be accepted; `code` and `status` are the API's. */
export class RolloutRefused extends Error {
  override readonly name = 'RolloutRefused';
  readonly code: 'MG_ROLLOUT_IN_PROGRESS' | 'MG_ROLLOUT_REFUSED';
  readonly status: number;

  constructor(code: RolloutRefused['code'], status: number, message: string) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

interface CanaryProxy {
  state: 'pending' | 'applied' | 'gone';
  /** Its counters at its first report after it applied the change. */
  start: Totals | null;
  last: Totals | null;
}

interface Active {
  change: number;
  model: MeshModel;
  previous: MeshModel;
  policy: RolloutPolicy;
  canaries: Map<string, CanaryProxy>;
  baseline: Map<string, { start: Totals | null; last: Totals | null }>;
  view: RolloutView;
  /** A decision is being carried out: answers and reports no longer count. */
  deciding: boolean;
  cancelWatch: CancelTimer | null;
  cancelAnswer: CancelTimer | null;
}

export interface RolloutControllerOptions {
  cp: ControlPlane;
  store: ModelStore;
  log: Logger;
  clock?: Clock;
  /** Called when a rollout ends without its model (the config pipeline's model in force is `previous` again). */
  rolledBack: (previous: MeshModel) => void;
  answerTimeoutMs?: number;
}

const iso = (t: number) => new Date(t).toISOString();

export class RolloutController {
  private readonly cp: ControlPlane;
  private readonly store: ModelStore;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly rolledBack: (previous: MeshModel) => void;
  private readonly answerTimeoutMs: number;
  private active: Active | null = null;
  /** The change of the last rollout that ended. */
  private lastChange: number | null = null;

  constructor(options: RolloutControllerOptions) {
    this.cp = options.cp;
    this.store = options.store;
    this.log = options.log;
    this.clock = options.clock ?? systemClock;
    this.rolledBack = options.rolledBack;
    this.answerTimeoutMs = options.answerTimeoutMs ?? DEFAULT_ROLLOUT_ANSWER_TIMEOUT_MS;
    this.cp.setRolloutHooks({
      answered: (answer) => this.answered(answer),
      superseded: (why) => this.superseded(why),
    });
  }

  /** The rollout being watched, with its change id; null when none. */
  current(): { change: number; rollout: RolloutView } | null {
    return this.active && { change: this.active.change, rollout: this.active.view };
  }

  get last(): number | null {
    return this.lastChange;
  }

  /** Refuses a plain model change while a rollout runs (it would have two models to change). */
  refuseWhileActive(): void {
    if (this.active !== null)
      throw new RolloutRefused(
        'MG_ROLLOUT_IN_PROGRESS',
        409,
        `change ${this.active.change} is being rolled out (canaries ${this.active.view.canaries.join(', ')}); ` +
          `wait for it to be promoted or rolled back (meshgate status ${this.active.change}), or end it with ` +
          `POST /rollouts/current/promote or /abort`,
      );
  }

  /**
   * Starts rolling `model` out; resolves with its change id once the canaries were sent it (not when
   * it is decided). Throws RolloutRefused when it cannot start.
   */
  async start(model: MeshModel, cause: string, options: RolloutOptions): Promise<number | null> {
    this.refuseWhileActive();
    const policy = rolloutPolicy(options);
    if (typeof policy === 'string') throw new RolloutRefused('MG_ROLLOUT_REFUSED', 400, policy);
    if (!this.cp.isWarm)
      throw new RolloutRefused(
        'MG_ROLLOUT_REFUSED',
        409,
        'the control plane is warming up (proxies are not pushed anything yet): roll out once it is ready',
      );
    if (this.cp.telemetryIntervalMs <= 0)
      throw new RolloutRefused(
        'MG_ROLLOUT_REFUSED',
        409,
        'proxies send no telemetry (control-plane --telemetry-interval 0), so canaries could not be watched: apply the change with PUT /config, or turn telemetry on',
      );
    const previous = this.cp.currentModel;
    const preview = this.cp.previewCanary(model);
    const now = this.clock.now();
    const view: RolloutView = {
      state: 'canary',
      canaryProxies: policy.shareText,
      watchMs: policy.watchMs,
      thresholds: { errorRate: policy.errorRate, p99Ms: policy.p99Ms, minRequests: policy.minRequests },
      previousVersion: previous.version,
      canaries: [],
      baseline: [],
      startedAt: iso(now),
      watchStartedAt: null,
      watchEndsAt: null,
      decision: null,
      signals: null,
      rollbackChange: null,
    };
    if (preview.affected.length === 0) {
      // Nothing to try it on: it goes to all at once, as a plain change, and its record says why.
      const change = await this.store.commit(model, `${cause} (rolled out: no connected proxy's config changes)`);
      this.cp.metrics.rollouts.inc({ outcome: 'promoted', by: 'no-proxies' });
      if (change !== null)
        this.cp.changes.rollout(change, {
          ...view,
          state: 'promoted',
          decision: {
            outcome: 'promoted',
            by: 'no-proxies',
            reason: "no connected proxy's config changes, so there is no canary to watch: applied to all at once",
            at: iso(this.clock.now()),
          },
        });
      return change;
    }
    const canaries = selectCanaries(preview.affected, policy.share, model.version);
    const chosen = new Set(canaries);
    view.canaries = canaries;
    view.baseline = preview.affected.filter((id) => !chosen.has(id));
    const active: Active = {
      change: 0,
      model,
      previous,
      policy,
      canaries: new Map(canaries.map((id) => [id, { state: 'pending', start: null, last: null }])),
      baseline: new Map(view.baseline.map((id) => [id, { start: null, last: null }])),
      view,
      deciding: false,
      cancelWatch: null,
      cancelAnswer: null,
    };
    this.active = active;
    active.change = this.cp.startCanary(model, preview, canaries, cause);
    this.log.info(
      { change: active.change, canaries, baseline: view.baseline.length, watchMs: policy.watchMs },
      'rollout started',
    );
    if (this.answerTimeoutMs > 0)
      active.cancelAnswer = schedule(
        this.clock,
        () => {
          const late = [...active.canaries].filter(([, c]) => c.state === 'pending').map(([id]) => id);
          this.rollback(active, {
            by: 'no-answer',
            reason: `canary prox${late.length === 1 ? 'y' : 'ies'} ${late.join(', ')} did not answer within ${this.answerTimeoutMs}ms`,
            ...(late.length === 1 ? { proxy: late[0]! } : {}),
          });
        },
        this.answerTimeoutMs,
      );
    this.publish(active);
    return active.change;
  }

  /** A proxy's telemetry report (its stream checked by the caller). */
  observe(proxy: string, report: TelemetryReport): void {
    const active = this.active;
    if (active === null || active.deciding) return;
    const canary = active.canaries.get(proxy);
    if (canary !== undefined) {
      // Traffic counts from its first report after it applied the change.
      if (canary.state !== 'applied') return;
      const totals = totalsOf(report);
      canary.start ??= totals;
      canary.last = totals;
      this.evaluate(active, false);
      return;
    }
    const base = active.baseline.get(proxy);
    if (base !== undefined) {
      const totals = totalsOf(report);
      base.start ??= totals;
      base.last = totals;
    }
  }

  /** Promotes the rollout being watched now (an operator's call). */
  promoteNow(): { change: number } | null {
    const active = this.active;
    if (active === null || active.deciding) return null;
    void this.promote(active, { by: 'operator', reason: 'promoted by an operator (POST /rollouts/current/promote)' });
    return { change: active.change };
  }

  /** Rolls the rollout being watched back now (an operator's call). */
  abort(): { change: number; rollbackChange: number | null } | null {
    const active = this.active;
    if (active === null || active.deciding) return null;
    const rollbackChange = this.rollback(active, {
      by: 'operator',
      reason: 'aborted by an operator (POST /rollouts/current/abort)',
    });
    return { change: active.change, rollbackChange };
  }

  /** Stops timers (the control plane is closing); a rollout being watched stays undecided. */
  close(): void {
    this.active?.cancelWatch?.();
    this.active?.cancelAnswer?.();
    this.cp.setRolloutHooks(null);
  }

  private answered(answer: ProxyAnswer) {
    const active = this.active;
    if (active === null || active.deciding) return;
    const canary = active.canaries.get(answer.proxy);
    // The other proxies are on the previous model: what they do with it says nothing of this change.
    if (canary === undefined) return;
    // An answer to a push sent before the canary model (still the model in force) says nothing of it.
    if (answer.status !== 'disconnected' && !answer.canary) return;
    if (answer.status === 'rejected') {
      this.rollback(active, {
        by: 'nack',
        reason: `canary proxy ${answer.proxy} rejected the change: ${answer.error.message}`,
        proxy: answer.proxy,
        error: answer.error,
      });
      return;
    }
    if (answer.status === 'disconnected') {
      canary.state = 'gone';
      canary.start = null;
      canary.last = null;
      if ([...active.canaries.values()].every((c) => c.state === 'gone')) {
        this.rollback(active, {
          by: 'canaries-gone',
          reason: 'every canary proxy disconnected before the change could be judged',
        });
        return;
      }
    } else if (answer.version === this.cp.expectedVersion(answer.proxy)) canary.state = 'applied';
    this.maybeStartWatch(active);
  }

  private superseded(why: string) {
    const active = this.active;
    if (active === null || active.deciding) return;
    this.finish(active, 'rolled-back', { by: 'superseded', reason: why }, null);
  }

  /** The watch begins once every canary has applied the change (or gone). */
  private maybeStartWatch(active: Active) {
    if (active.view.watchStartedAt !== null) return;
    const states = [...active.canaries.values()].map((c) => c.state);
    if (states.includes('pending') || !states.includes('applied')) return;
    active.cancelAnswer?.();
    active.cancelAnswer = null;
    const now = this.clock.now();
    active.view.watchStartedAt = iso(now);
    active.view.watchEndsAt = iso(now + active.policy.watchMs);
    this.publish(active);
    if (active.policy.watchMs <= 0) this.evaluate(active, true);
    else active.cancelWatch = schedule(this.clock, () => this.evaluate(active, true), active.policy.watchMs);
  }

  private measure(active: Active): { canary: RolloutSignals; baseline: RolloutSignals } {
    const group = (proxies: Iterable<{ start: Totals | null; last: Totals | null }>) => {
      const diffs: Totals[] = [];
      for (const p of proxies)
        if (p.start !== null && p.last !== null && p.last !== p.start) diffs.push(difference(p.start, p.last));
      return signalsOf(diffs);
    };
    return { canary: group(active.canaries.values()), baseline: group(active.baseline.values()) };
  }

  private evaluate(active: Active, final: boolean) {
    if (this.active !== active || active.deciding) return;
    const signals = this.measure(active);
    active.view.signals = signals;
    const verdict = judge(signals.canary, signals.baseline, active.policy, final);
    if (verdict.action === 'rollback')
      this.rollback(active, {
        by: 'threshold',
        reason: verdict.reason,
        metric: verdict.metric,
        value: verdict.value,
        threshold: verdict.threshold,
      });
    else if (verdict.action === 'promote') void this.promote(active, { by: 'watch', reason: verdict.reason });
    else this.publish(active);
  }

  private async promote(active: Active, decision: Omit<RolloutDecision, 'outcome' | 'at'>) {
    active.deciding = true;
    active.cancelWatch?.();
    active.cancelAnswer?.();
    try {
      // Through the store, as any model: with etcd, every control plane puts it in force.
      await this.store.commit(active.model, `rollout of change ${active.change} promoted`);
    } catch (e) {
      active.deciding = false;
      this.rollback(active, {
        by: 'superseded',
        reason: `the model could not be committed to the model store: ${(e as Error).message}`,
      });
      return;
    }
    this.finish(active, 'promoted', decision, null);
  }

  private rollback(active: Active, decision: Omit<RolloutDecision, 'outcome' | 'at'>): number | null {
    if (this.active !== active || active.deciding) return null;
    active.deciding = true;
    const rollbackChange = this.cp.rollbackCanary(decision.reason);
    this.rolledBack(active.previous);
    this.finish(active, 'rolled-back', decision, rollbackChange);
    return rollbackChange;
  }

  private finish(
    active: Active,
    outcome: RolloutDecision['outcome'],
    decision: Omit<RolloutDecision, 'outcome' | 'at'>,
    rollbackChange: number | null,
  ) {
    active.cancelWatch?.();
    active.cancelAnswer?.();
    active.view.state = outcome;
    active.view.decision = { outcome, ...decision, at: iso(this.clock.now()) };
    active.view.rollbackChange = rollbackChange;
    active.view.signals ??= this.measure(active);
    this.publish(active);
    if (this.active === active) this.active = null;
    this.lastChange = active.change;
    this.cp.metrics.rollouts.inc({ outcome, by: decision.by });
    const log = outcome === 'promoted' ? this.log.info.bind(this.log) : this.log.warn.bind(this.log);
    log({ change: active.change, by: decision.by, rollbackChange, reason: decision.reason }, `rollout ${outcome}`);
  }

  private publish(active: Active) {
    // A copy: the record must not change under a reader between updates.
    this.cp.changes.rollout(active.change, structuredClone(active.view));
  }
}
