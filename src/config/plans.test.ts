/** `plans` and `consumers[].plan` as the config loader reports them: located, with hints. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatIssue } from './issues.ts';
import { loadConfigText } from './load.ts';

async function issues(lines: string[]): Promise<string[]> {
  const result = await loadConfigText(`${lines.join('\n')}\n`, 'gw.yaml', {});
  return result.ok ? [] : result.issues.map(formatIssue);
}

describe('plans in the config', () => {
  it('accepts plans with quotas and rate limits, and consumers on them', async () => {
    const result = await loadConfigText(
      [
        'plans:',
        '  - { name: free, quotas: { day: 1000, month: 20000 }, rateLimits: [{ requests: 10, window: 1s }] }',
        '  - { name: unlimited }',
        'consumers:',
        '  - { name: app, plan: free }',
        '  - { name: partner, plan: unlimited }',
        '  - { name: internal }',
      ].join('\n'),
      'gw.yaml',
      {},
    );
    assert.ok(result.ok, result.ok ? '' : result.issues.map(formatIssue).join('\n'));
  });

  it('an unknown plan is an error at the consumer, with a did-you-mean hint', async () => {
    assert.deepEqual(
      await issues([
        'plans:',
        '  - { name: free, quotas: { day: 1000 } }',
        '  - { name: pro, quotas: { day: 100000 } }',
        'consumers:',
        '  - name: app',
        '    plan: fre',
      ]),
      ['gw.yaml:6:11: consumers[0].plan: unknown plan "fre" (did you mean "free"?)'],
    );
    assert.deepEqual(await issues(['consumers:', '  - { name: app, plan: gold }']), [
      'gw.yaml:2:24: consumers[0].plan: unknown plan "gold" (define it under plans)',
    ]);
  });

  it('duplicate plan names, a 0 or repeated window, and store: redis without redis are errors', async () => {
    assert.deepEqual(
      await issues([
        'plans:',
        '  - { name: free, quotas: { day: 10 } }',
        '  - name: free',
        '    rateLimits: [{ requests: 1, window: 0s }, { requests: 5, window: 1m }, { requests: 50, window: 60s }]',
        '    store: redis',
      ]),
      [
        'gw.yaml:3:11: plans[1].name: duplicate plan name "free" (first at plans[0])',
        'gw.yaml:4:41: plans[1].rateLimits[0].window: a window cannot be 0 (e.g. 1s or 1m)',
        'gw.yaml:4:100: plans[1].rateLimits[2].window: this window is already limited (at plans[1].rateLimits[1]) (give each window one limit)',
        'gw.yaml:5:12: plans[1].store: store: redis needs the top-level redis block (add redis: { url: redis://127.0.0.1:6379 })',
      ],
    );
  });

  it('the schema refuses an empty quotas block and a quota of 0', async () => {
    const found = await issues(['plans:', '  - { name: a, quotas: {} }', '  - { name: b, quotas: { day: 0 } }']);
    assert.equal(found.length, 2, found.join('\n'));
    assert.match(found[0]!, /^gw\.yaml:2:\d+: plans\[0\]\.quotas/);
    assert.match(found[1]!, /^gw\.yaml:3:\d+: plans\[1\]\.quotas\.day/);
  });
});
