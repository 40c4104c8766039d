/**
 * A shadow config proposed to the control plane (docs/shadow.md): a candidate model, validated as
 * `PUT /config` would validate it, from which the control plane generates each connected proxy's
 * candidate config (with the registry as it is) and sends it as that proxy's shadow, beside the live
 * config it keeps serving. Reports are the proxies' own, asked for and summed here, with a line per
 * proxy, since one request is evaluated at every proxy it crosses (a gateway, then a sidecar).
 *
 * Only the proxies connected to this control plane take part: one that connects later, or to
 * another control plane sharing the store, has no shadow.
 */
import { randomUUID } from 'node:crypto';
import type { AdminReply } from '../../admin/server.ts';
import { SHADOW_SOURCE } from '../../admin/shadow-endpoints.ts';
import type { ShadowAnswer, ShadowEvent } from '../../api/mesh.ts';
import { mergeShadowReports, type ShadowProxyReport, type ShadowReport } from '../../api/shadow.ts';
import { STREAM_EVENTS } from '../../api/values.ts';
import type { RawConfig } from '../../config/pipeline.ts';
import { DEFAULT_SHADOW_EXAMPLES, SHADOW_SET_TIMEOUT_MS } from '../../core/defaults.ts';
import type { ControlPlane } from '../server/control-plane.ts';
import type { ModelPipeline } from '../server/model-pipeline.ts';
import type { Answers, ProxyQuestions } from '../server/questions.ts';

const NONE_SET: AdminReply = { status: 404, body: { error: 'no proxy has a shadow config; PUT /shadow sets one' } };

interface Current {
  id: string;
  /** The candidate model's hash (each proxy's shadow has its own config's). */
  hash: string;
}

export class MeshShadow {
  private readonly cp: ControlPlane;
  private readonly pipeline: ModelPipeline;
  private readonly questions: ProxyQuestions;
  private current: Current | null = null;

  constructor(cp: ControlPlane, pipeline: ModelPipeline, questions: ProxyQuestions) {
    this.cp = cp;
    this.pipeline = pipeline;
    this.questions = questions;
  }

  /**
   * Validates the candidate model, then sets each connected proxy's candidate config as its shadow
   * (replacing one set before). All or none: when a proxy refuses, every proxy's shadow is cleared.
   */
  async set(text: string, file: string, samplePercent: number): Promise<AdminReply> {
    const raw: RawConfig = { kind: 'texts', texts: [{ file, text }], source: SHADOW_SOURCE, env: null };
    const checked = await this.pipeline.check(raw);
    if (!checked.ok)
      return {
        status: 400,
        body: { error: 'the shadow config is not valid; nothing changed', issues: checked.issues },
      };
    const { loaded } = checked.value;
    const context = this.cp.candidateContext(loaded.config);
    const id = randomUUID();
    const asked = await this.questions.ask(
      STREAM_EVENTS.shadow,
      (question, identity) =>
        ({
          id: question,
          op: 'set',
          shadow: { id, config: context.generate(identity).config, samplePercent },
        }) satisfies ShadowEvent,
      SHADOW_SET_TIMEOUT_MS,
    );
    if (asked.asked === 0) return { status: 503, body: { error: 'no proxy is connected to this control plane' } };
    const refusals = asked.answers.filter((a) => typeof a.shadow?.error === 'string');
    if (refusals.length > 0) {
      await this.clear();
      return {
        status: 422,
        body: {
          error: `${refusals.length} of ${asked.asked} proxies could not set the shadow config; no proxy keeps it`,
          refusals: refusals.map((a) => ({ proxy: a.proxy, error: a.shadow!.error })),
        },
      };
    }
    this.current = { id, hash: loaded.hash };
    const missing = asked.asked - asked.answered;
    return {
      status: 200,
      body: {
        status: 'set',
        hash: loaded.hash,
        samplePercent,
        processes: asked.answers.reduce((n, a) => n + (a.shadow?.report?.processes ?? 0), 0),
        proxies: asked.answered,
        ...(missing > 0 ? { unanswered: missing } : {}),
      },
    };
  }

  /** The proxies' reports so far, summed, with a line each. */
  async report(): Promise<AdminReply> {
    const report = this.summed(await this.questions.ask(STREAM_EVENTS.shadow, (id) => ({ id, op: 'report' })));
    return report === null ? NONE_SET : { status: 200, body: report };
  }

  /** Clears every proxy's shadow; their last reports, summed. */
  async clear(): Promise<AdminReply> {
    const report = this.summed(await this.questions.ask(STREAM_EVENTS.shadow, (id) => ({ id, op: 'clear' })));
    this.current = null;
    return report === null ? NONE_SET : { status: 200, body: { status: 'cleared', report } };
  }

  private summed({ answers }: Answers): ShadowReport | null {
    const reports = answers
      .map((a) => ({ proxy: a.proxy, report: (a.shadow as ShadowAnswer | undefined)?.report ?? null }))
      .filter((r): r is { proxy: string; report: ShadowReport } => r.report !== null)
      .sort((a, b) => (a.proxy < b.proxy ? -1 : 1));
    const merged = mergeShadowReports(
      reports.map((r) => r.report),
      DEFAULT_SHADOW_EXAMPLES,
    );
    if (merged === null) return null;
    if (this.current !== null) merged.hash = this.current.hash;
    merged.proxies = reports.map(({ proxy, report }): ShadowProxyReport => {
      const identity = this.cp.knownIdentity(proxy);
      return {
        proxy,
        kind: identity?.kind ?? 'unknown',
        service: identity?.service ?? null,
        processes: report.processes,
        totals: report.totals,
        differences: report.differences,
      };
    });
    return merged;
  }
}
