/**
 * Weighted round robin: a precomputed schedule where each endpoint appears `weight` times (weights
 * divided by their greatest common divisor), interleaved so heavy endpoints do not get runs.
 */
import type { Balanced, BalancerOptions, LoadBalancer } from './types.ts';

export class RoundRobinBalancer<E extends Balanced> implements LoadBalancer<E> {
  private schedule: E[] = [];
  private cursor = 0;
  private readonly random: () => number;

  constructor(endpoints: readonly E[], options: BalancerOptions = {}) {
    this.random = options.random ?? Math.random;
    this.update(endpoints);
    // Start at a random place so many proxies do not all hit the first endpoint together.
    this.cursor = Math.floor(this.random() * this.schedule.length);
  }

  update(endpoints: readonly E[]): void {
    this.schedule = interleave(endpoints);
    if (this.cursor >= this.schedule.length) this.cursor = 0;
  }

  pick(_hash: number): E | null {
    const schedule = this.schedule;
    if (schedule.length === 0) return null;
    const endpoint = schedule[this.cursor]!;
    this.cursor = this.cursor + 1 === schedule.length ? 0 : this.cursor + 1;
    return endpoint;
  }
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

function interleave<E extends Balanced>(endpoints: readonly E[]): E[] {
  const divisor = endpoints.reduce((g, e) => gcd(g, e.weight), 0) || 1;
  const out: E[] = [];
  const rounds = Math.max(0, ...endpoints.map((e) => e.weight / divisor));
  for (let round = 0; round < rounds; round++) for (const e of endpoints) if (e.weight / divisor > round) out.push(e);
  return out;
}
