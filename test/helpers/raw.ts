export * from '../../src/testing/raw.ts';
