/** Runs the registry conformance suite against each implementation. */

import { MemoryRegistry } from '../../src/control-plane/registry/memory.ts';
import { ManualClock } from '../../src/core/clock.ts';
import { registryConformance } from './registry.ts';

registryConformance('memory', async () => {
  const clock = new ManualClock();
  const registry = new MemoryRegistry({ clock });
  return {
    registry,
    advance: async (ms) => clock.advance(ms),
    close: async () => {
      await registry.close();
    },
  };
});
