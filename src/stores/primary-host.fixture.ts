/** A stand-in primary for primary.test.ts: a forked process that decides rate limits over its IPC channel. */
import { type LimitBatch, RateLimitHost } from './primary.ts';

const host = new RateLimitHost();
let batches = 0;
process.on('message', (m: LimitBatch | { type: 'batches' }) => {
  if (m.type === 'limit') {
    batches++;
    process.send?.(host.answer(m));
  } else process.send?.({ type: 'batches', batches });
});
process.on('disconnect', () => process.exit(0));
