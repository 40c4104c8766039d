import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from './clock.ts';
import { LONGEST_TIMER_MS, scheduleAt } from './long-timer.ts';

describe('scheduleAt', () => {
  it('fires at a time beyond the longest timer, not before', () => {
    const clock = new ManualClock(0);
    const at = 3 * LONGEST_TIMER_MS + 5;
    let fired = 0;
    scheduleAt(clock, at, () => fired++);
    clock.advance(at - 1);
    assert.equal(fired, 0);
    clock.advance(1);
    assert.equal(fired, 1);
    assert.equal(clock.pending, 0);
  });

  it('fires at once for a time that has passed, and not at all once cancelled', () => {
    const clock = new ManualClock(1_000);
    let fired = 0;
    scheduleAt(clock, 10, () => fired++);
    clock.advance(0);
    assert.equal(fired, 1);
    const cancel = scheduleAt(clock, 2 * LONGEST_TIMER_MS, () => fired++);
    clock.advance(LONGEST_TIMER_MS + 10); // past the first step: the re-armed timer must be the one cancelled
    cancel();
    clock.advance(2 * LONGEST_TIMER_MS);
    assert.equal(fired, 1);
    assert.equal(clock.pending, 0);
  });
});
