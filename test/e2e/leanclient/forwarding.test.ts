/** The forwarding suite again, with the test gateways' plain HTTP/1.1 services on the lean upstream client. */
process.env.MESHGATE_TEST_CLIENT = 'lean';
await import('../forwarding.test.ts');
