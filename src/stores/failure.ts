/**
 * What a plugin does when its shared store cannot answer (`failOpen`), made visible: every request so
 * decided is counted in `<role>_store_unavailable_total{plugin, route, outcome}`, and the first one of
 * an outage, and the first success after it, are logged (one line each, not one per request).
 */
import type { LocalReply, PluginCounter, PluginDeps } from '../core/plugin.ts';

export const STORE_UNAVAILABLE_METRIC = 'store_unavailable_total';
const HELP =
  'Requests a plugin decided by its failOpen policy because its shared store (Redis) could not answer, by plugin, route and outcome (passed, refused).';

const REFUSED: LocalReply = Object.freeze({
  status: 503,
  code: 'MG_STORE_UNAVAILABLE',
  detail: 'a shared store this route needs is unavailable; try again shortly',
});

export class FailurePolicy {
  readonly failOpen: boolean;
  private readonly plugin: string;
  private readonly counter: PluginCounter;
  private readonly warn: PluginDeps['warn'];
  private failing = false;

  constructor(plugin: string, failOpen: boolean, deps: Pick<PluginDeps, 'counter' | 'warn'>) {
    this.plugin = plugin;
    this.failOpen = failOpen;
    this.counter = deps.counter(STORE_UNAVAILABLE_METRIC, HELP, ['plugin', 'route', 'outcome']);
    this.warn = deps.warn;
  }

  /** The store answered: if it had failed before, say that it counts again. */
  ok(route: string): void {
    if (!this.failing) return;
    this.failing = false;
    this.warn(`${this.plugin} store available again`, { plugin: this.plugin, route });
  }

  /** The store failed for this request: the reply to send (refused), or undefined (passed). */
  failed(route: string, error: unknown): LocalReply | undefined {
    this.counter.inc({ plugin: this.plugin, route, outcome: this.failOpen ? 'passed' : 'refused' });
    if (!this.failing) {
      this.failing = true;
      this.warn(
        `${this.plugin} store unavailable: ${this.failOpen ? 'requests pass (failOpen)' : 'requests are refused with 503 (failOpen: false)'}`,
        { plugin: this.plugin, route, err: (error as Error)?.message ?? String(error) },
      );
    }
    return this.failOpen ? undefined : REFUSED;
  }
}
