/** The mutual TLS suite with MESHGATE_TEST_CLIENT=lean: services whose connections are TLS keep undici and work as before. */
process.env.MESHGATE_TEST_CLIENT = 'lean';
await import('../mtls.test.ts');
