/**
 * Prometheus metrics of the control plane (`GET /metrics` on its API). Names are API: declared here
 * and in docs/metrics.md. One Registry per control plane (house rule 7).
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** Seconds; a push is answered in milliseconds on a LAN, a change reaches every proxy in well under 1 s. */
const PUSH_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** What the gauges read at scrape time. */
export interface ControlPlaneGauges {
  /** Connected proxies by kind (gateway, sidecar). */
  connectedProxies(): Map<string, number>;
  /** Registered instances by service. */
  instancesByService(): Map<string, number>;
}

export class ControlPlaneMetrics {
  readonly registry: Registry;
  readonly changes: Counter<'kind'>;
  readonly pushes: Counter<string>;
  readonly pushAnswered: Histogram<'result'>;
  readonly nacks: Counter<string>;
  readonly propagation: Histogram<string>;
  readonly rollouts: Counter<'outcome' | 'by'>;

  constructor(gauges: ControlPlaneGauges, registry = new Registry()) {
    this.registry = registry;
    collectDefaultMetrics({ register: registry });
    const registers = [registry];
    this.changes = new Counter({
      name: 'control_plane_changes_total',
      help: 'Changes to what proxies should hold, by kind: config (a new model), registry (an instance joined, left or changed health), startup.',
      labelNames: ['kind'],
      registers,
    });
    this.pushes = new Counter({
      name: 'control_plane_pushes_total',
      help: 'Configs pushed to proxies (each proxy whose config changed gets one per flush).',
      registers,
    });
    this.pushAnswered = new Histogram({
      name: 'control_plane_push_duration_seconds',
      help: 'Time from a push being sent to the proxy answering it, by result (ack, nack), seconds.',
      labelNames: ['result'],
      buckets: PUSH_BUCKETS,
      registers,
    });
    this.nacks = new Counter({
      name: 'control_plane_nacks_total',
      help: 'Pushes a proxy rejected (NACK): it kept the config it had.',
      registers,
    });
    this.propagation = new Histogram({
      name: 'control_plane_change_propagation_seconds',
      help: 'Time from a change being recorded to a proxy applying it (ACK), one observation per proxy and change, seconds.',
      buckets: PUSH_BUCKETS,
      registers,
    });
    this.rollouts = new Counter({
      name: 'control_plane_rollouts_total',
      help: 'Guarded rollouts that ended, by outcome (promoted, rolled-back) and by what decided it (watch, threshold, nack, operator, no-answer, canaries-gone, no-proxies, superseded).',
      labelNames: ['outcome', 'by'],
      registers,
    });
    new Gauge({
      name: 'control_plane_connected_proxies',
      help: 'Proxies with an open push stream, by kind.',
      labelNames: ['kind'],
      registers,
      collect() {
        this.reset();
        for (const [kind, n] of gauges.connectedProxies()) this.set({ kind }, n);
      },
    });
    new Gauge({
      name: 'control_plane_instances',
      help: 'Service instances in the registry, by service.',
      labelNames: ['service'],
      registers,
      collect() {
        this.reset();
        for (const [service, n] of gauges.instancesByService()) this.set({ service }, n);
      },
    });
  }
}
