export * from '../../src/testing/servers.ts';
