/** The forwarding suite with the lean client behind node:http's server: `engine: node` on the listeners. */
process.env.MESHGATE_TEST_ENGINE = 'node';
process.env.MESHGATE_TEST_CLIENT = 'lean';
await import('../forwarding.test.ts');
