/** The large-bodies suite again, with the test gateways' plain HTTP/1.1 listeners on the lean engine. */
process.env.MESHGATE_TEST_ENGINE = 'lean';
await import('../large-bodies.test.ts');
