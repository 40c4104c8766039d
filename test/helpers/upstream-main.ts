/**
 * A small upstream server run as its own process, so tests can kill it by PID like a crashed
 * instance. Env: MESHGATE_TEST_UPSTREAM (its name, answered in `x-upstream` and the body), PORT (0:
 * any). Prints `{"port":N}` once listening; answers every request with its name. Without the name it
 * does nothing: `node --test` runs every file under test/, this one included.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const name = process.env.MESHGATE_TEST_UPSTREAM;
if (name !== undefined) serve(name);

function serve(name: string) {
  const server = createServer((_req, res) => {
    res.setHeader('x-upstream', name);
    res.setHeader('content-type', 'text/plain');
    res.end(name);
  });
  server.keepAliveTimeout = 60_000;
  server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
  });
}
