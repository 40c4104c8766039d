/**
 * The default metrics meshgate registers without prom-client's index (prom.ts) are prom-client's own:
 * the same series, help, types and order, and the CPU counters count what the process spent.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as promClient from 'prom-client';
import { collectDefaultMetrics, Registry } from './prom.ts';

describe('default metrics without the prom-client index', () => {
  it('registers what collectDefaultMetrics registers, in the same order, with the same help and types', async () => {
    const theirs = new promClient.Registry();
    promClient.collectDefaultMetrics({ register: theirs });
    const ours = new Registry();
    collectDefaultMetrics(ours);
    const shape = async (r: promClient.Registry) =>
      (await r.getMetricsAsJSON()).map((m) => ({ name: m.name, help: m.help, type: m.type }));
    assert.deepEqual(await shape(ours), await shape(theirs));
    const text = await ours.metrics();
    const lines = (r: string) => r.split('\n').filter((l) => l.startsWith('# '));
    assert.deepEqual(lines(text), lines(await theirs.metrics()));
  });

  it('the CPU counters add up: user + system = total, and grow with work', async () => {
    const registry = new Registry();
    collectDefaultMetrics(registry);
    const read = async () => {
      const json = await registry.getMetricsAsJSON();
      const value = (name: string) => json.find((m) => m.name === name)!.values[0]!.value;
      return {
        user: value('process_cpu_user_seconds_total'),
        system: value('process_cpu_system_seconds_total'),
        total: value('process_cpu_seconds_total'),
      };
    };
    const first = await read();
    const until = performance.now() + 50;
    let spin = 0;
    while (performance.now() < until) spin++;
    assert.ok(spin > 0);
    const second = await read();
    assert.ok(second.user > first.user, `${second.user} > ${first.user}`);
    assert.ok(Math.abs(second.total - (second.user + second.system)) < 1e-6);
  });
});
