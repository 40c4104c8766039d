/** The forwarding suite with both lean engines: the lean server on the listeners, the lean client to the services. */
process.env.MESHGATE_TEST_ENGINE = 'lean';
process.env.MESHGATE_TEST_CLIENT = 'lean';
await import('../forwarding.test.ts');
