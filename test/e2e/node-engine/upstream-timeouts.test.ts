/** The upstream-timeouts suite again, with the test gateways' plain HTTP/1.1 listeners on node:http's server (`engine: node`). */
process.env.MESHGATE_TEST_ENGINE = 'node';
await import('../upstream-timeouts.test.ts');
