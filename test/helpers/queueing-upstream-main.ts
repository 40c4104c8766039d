/**
 * An upstream whose latency grows with its concurrency, run as its own process so that its work does
 * not share an event loop with the gateway under test: it serves at most SLOTS requests at once, each
 * for SERVICE_MS ± JITTER_PERCENT (uniform; real service times vary, and equal ones would free every
 * slot in lockstep), and queues the rest in arrival order (a server with a semaphore). Prints
 * `{"port":N}` once listening. `GET /stats` answers `{ active, queued, served, maxQueued }`. Without
 * MESHGATE_QUEUEING_UPSTREAM it does nothing.
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

if (process.env.MESHGATE_QUEUEING_UPSTREAM !== undefined) serve();

function serve() {
  const slots = Number(process.env.SLOTS ?? 16);
  const serviceMs = Number(process.env.SERVICE_MS ?? 50);
  const jitter = Number(process.env.JITTER_PERCENT ?? 0) / 100;
  const serviceTime = () => serviceMs * (1 - jitter + 2 * jitter * Math.random());
  const queue: ServerResponse[] = [];
  let active = 0;
  let served = 0;
  let maxQueued = 0;

  const finish = (res: ServerResponse) => {
    res.end('ok');
    served++;
    const next = queue.shift();
    if (next === undefined) active--;
    else setTimeout(finish, serviceTime(), next);
  };

  const server = createServer((req, res) => {
    if (req.url === '/stats') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ active, queued: queue.length, served, maxQueued }));
      return;
    }
    res.setHeader('content-type', 'text/plain');
    if (active < slots) {
      active++;
      setTimeout(finish, serviceTime(), res);
    } else {
      queue.push(res);
      if (queue.length > maxQueued) maxQueued = queue.length;
    }
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
  });
}
