/**
 * The load balancer conformance suite (house rule 9): every balancer runs the same checks, plus the
 * consistent-hashing acceptance for the hashing ones (≥ 95% of the keys of the endpoints that stay
 * keep their endpoint when 1 of 10 leaves).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LbPolicy } from '../../../api/config.ts';
import { hash32 } from '../hash.ts';
import { BALANCERS, HASHING_POLICIES } from './index.ts';
import type { Balanced } from './types.ts';

interface Fake extends Balanced {
  url: string;
  weight: number;
  active: number;
}

const fakes = (n: number, weight: (i: number) => number = () => 1): Fake[] =>
  Array.from({ length: n }, (_, i) => ({ url: `http://10.0.0.${i + 1}:8080`, weight: weight(i), active: 0 }));

/** A seeded generator (mulberry32), so the random balancers are deterministic here. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Counts picks per endpoint over `n` picks with varied keys. */
function distribution(pick: (hash: number) => Fake | null, n: number): Map<Fake, number> {
  const counts = new Map<Fake, number>();
  for (let i = 0; i < n; i++) {
    const e = pick(hash32(`key-${i}`));
    assert.ok(e !== null);
    counts.set(e, (counts.get(e) ?? 0) + 1);
  }
  return counts;
}

const POLICIES = Object.keys(BALANCERS) as LbPolicy[];

for (const policy of POLICIES) {
  const create = (endpoints: Fake[]) => BALANCERS[policy](endpoints, { random: seeded(7) });
  const hashing = HASHING_POLICIES.has(policy);

  describe(`load balancer conformance: ${policy}`, () => {
    it('returns null for an empty set, and after an update to an empty set', () => {
      assert.equal(create([]).pick(1), null);
      const lb = create(fakes(3));
      lb.update([]);
      assert.equal(lb.pick(12345), null);
    });

    it('always returns the only endpoint of a set of one, whatever the key', () => {
      const [only] = fakes(1);
      const lb = create([only!]);
      for (const hash of [0, 1, 0x7fffffff, 0xffffffff, 123456789]) assert.equal(lb.pick(hash), only);
    });

    it('handles the extreme keys 0 and 2^32-1', () => {
      const lb = create(fakes(5));
      assert.ok(lb.pick(0) !== null);
      assert.ok(lb.pick(0xffffffff) !== null);
    });

    it('reaches every endpoint over many requests', () => {
      const endpoints = fakes(8);
      const lb = create(endpoints);
      const seen = distribution((h) => lb.pick(h), 4000);
      assert.equal(seen.size, 8, `${policy} reached ${seen.size} of 8 endpoints`);
    });

    it('spreads equal endpoints evenly', () => {
      const endpoints = fakes(4);
      const lb = create(endpoints);
      const n = 20_000;
      const seen = distribution((h) => lb.pick(h), n);
      for (const e of endpoints) {
        const share = (seen.get(e) ?? 0) / n;
        // Hashing balancers place keys by hash: a looser bound than the exact schedules and draws.
        const tolerance = hashing ? 0.08 : 0.03;
        assert.ok(Math.abs(share - 0.25) < tolerance, `${e.url} got ${(share * 100).toFixed(1)}%`);
      }
    });

    it('follows the weights', () => {
      const endpoints = fakes(3, (i) => i + 1); // 1 : 2 : 3
      const lb = create(endpoints);
      const n = 30_000;
      const seen = distribution((h) => lb.pick(h), n);
      endpoints.forEach((e, i) => {
        const expected = (i + 1) / 6;
        const share = (seen.get(e) ?? 0) / n;
        const tolerance = hashing ? 0.06 : 0.02;
        assert.ok(Math.abs(share - expected) < tolerance, `${e.url} got ${share.toFixed(3)}, expected ${expected}`);
      });
    });

    it('never returns an endpoint outside the current set, and returns it again once restored', () => {
      const endpoints = fakes(5);
      const lb = create(endpoints);
      const removed = endpoints[2]!;
      lb.update(endpoints.filter((e) => e !== removed));
      const seen = distribution((h) => lb.pick(h), 5000);
      assert.equal(seen.has(removed), false);
      assert.equal(seen.size, 4);
      lb.update(endpoints);
      assert.ok(distribution((h) => lb.pick(h), 5000).has(removed));
    });

    if (hashing) {
      it('maps equal keys to the same endpoint', () => {
        const lb = create(fakes(10));
        for (let i = 0; i < 500; i++) {
          const h = hash32(`user-${i}`);
          assert.equal(lb.pick(h), lb.pick(h));
        }
      });

      it('keeps ≥ 95% of the other endpoints’ keys in place when 1 of 10 endpoints leaves, and when it returns', () => {
        const endpoints = fakes(10);
        const lb = create(endpoints);
        const keys = Array.from({ length: 20_000 }, (_, i) => hash32(`session-${i}`));
        const before = keys.map((k) => lb.pick(k));
        const leaving = endpoints[3]!;
        lb.update(endpoints.filter((e) => e !== leaving));
        const after = keys.map((k) => lb.pick(k));
        let others = 0;
        let stayed = 0;
        for (let i = 0; i < keys.length; i++) {
          assert.notEqual(after[i], leaving);
          if (before[i] === leaving) continue;
          others++;
          if (after[i] === before[i]) stayed++;
        }
        const kept = stayed / others;
        assert.ok(kept >= 0.95, `${policy} kept ${(kept * 100).toFixed(2)}% of keys`);
        // The keys that moved were (almost all) the leaving endpoint's.
        const moved = keys.length - stayed;
        const leavingKeys = before.filter((e) => e === leaving).length;
        assert.ok(moved - leavingKeys <= others * 0.05);
        // It returns: its keys come back.
        lb.update(endpoints);
        const again = keys.map((k) => lb.pick(k));
        const back = again.filter((e, i) => e === before[i]).length / keys.length;
        assert.ok(back >= 0.95, `after return ${(back * 100).toFixed(2)}% of keys on their first endpoint`);
      });

      it('keeps ≥ 95% of the other endpoints’ keys when a config change removes 1 of 10 (a new balancer)', () => {
        const endpoints = fakes(10);
        const before = create(endpoints);
        const after = create(endpoints.filter((_, i) => i !== 6));
        let others = 0;
        let stayed = 0;
        for (let i = 0; i < 20_000; i++) {
          const k = hash32(`cfg-${i}`);
          const was = before.pick(k);
          if (was === endpoints[6]) continue;
          others++;
          if (after.pick(k) === was) stayed++;
        }
        assert.ok(stayed / others >= 0.95, `${policy} kept ${((stayed / others) * 100).toFixed(2)}%`);
      });

      it('moves few keys when an endpoint joins', () => {
        const endpoints = fakes(11);
        const lb = create(endpoints.slice(0, 10));
        const keys = Array.from({ length: 20_000 }, (_, i) => hash32(`k-${i}`));
        const before = keys.map((k) => lb.pick(k));
        lb.update(endpoints);
        const after = keys.map((k) => lb.pick(k));
        // A newcomer takes about 1/11 of the keys; the rest should stay.
        const stayed = after.filter((e, i) => e === before[i] || e === endpoints[10]).length / keys.length;
        assert.ok(stayed >= 0.95, `${(stayed * 100).toFixed(2)}% stayed or went to the newcomer`);
      });
    }
  });
}

describe('least-request', () => {
  it('prefers the endpoint with fewer requests in flight', () => {
    const endpoints = fakes(2);
    const lb = BALANCERS['least-request'](endpoints, { random: seeded(3) });
    endpoints[0]!.active = 10;
    const seen = distribution((h) => lb.pick(h), 1000);
    // Each pick draws two; whenever both endpoints are drawn the idle one wins.
    assert.ok((seen.get(endpoints[1]!) ?? 0) > 700, `idle endpoint got ${seen.get(endpoints[1]!)}`);
  });
});

describe('round-robin', () => {
  it('cycles through equal endpoints in order', () => {
    const endpoints = fakes(3);
    const lb = BALANCERS['round-robin'](endpoints, { random: () => 0 });
    assert.deepEqual(
      Array.from({ length: 6 }, () => lb.pick(0)!.url),
      [...endpoints, ...endpoints].map((e) => e.url),
    );
  });

  it('interleaves weights reduced by their common divisor', () => {
    const endpoints = fakes(2, (i) => (i === 0 ? 200 : 100));
    const lb = BALANCERS['round-robin'](endpoints, { random: () => 0 });
    assert.deepEqual(
      Array.from({ length: 3 }, () => lb.pick(0)),
      [endpoints[0], endpoints[1], endpoints[0]],
    );
  });
});
