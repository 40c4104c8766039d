/** The data plane's timing tests start their manual clock near zero. */
import { ManualClock as CoreManualClock } from '../../src/core/clock.ts';

export class ManualClock extends CoreManualClock {
  constructor(start = 1_000_000) {
    super(start);
  }
}
