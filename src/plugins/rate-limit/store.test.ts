import { runStoreConformance } from './store.conformance.ts';
import { MemoryStore } from './store.ts';

runStoreConformance('memory', () => new MemoryStore());
