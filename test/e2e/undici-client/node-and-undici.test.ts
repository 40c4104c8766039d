/** The forwarding suite on node:http's server and undici's client, both named (`engine: node`, `engine: undici`). */
process.env.MESHGATE_TEST_ENGINE = 'node';
process.env.MESHGATE_TEST_CLIENT = 'undici';
await import('../forwarding.test.ts');
