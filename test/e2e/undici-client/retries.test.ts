/** The retries suite again, with the test gateways' plain HTTP/1.1 services on undici's client (`engine: undici`). */
process.env.MESHGATE_TEST_CLIENT = 'undici';
await import('../retries.test.ts');
