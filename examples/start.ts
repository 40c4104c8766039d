/**
 * `npm start`: small upstream services on 127.0.0.1 and the gateway in front of them, with sample
 * requests to paste. Ctrl-C stops everything.
 */
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { fileURLToPath } from 'node:url';

function service(name: string, version: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    const body = JSON.stringify({
      service: name,
      version,
      method: req.method,
      path: req.url,
      requestId: req.headers['x-request-id'],
    });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

const servers = await Promise.all([
  service('property-service', 'v1', 8081),
  service('property-service', 'v2', 8082),
  service('search-service', 'v1', 8083),
]);
const root = fileURLToPath(new URL('..', import.meta.url));
const gateway = spawn(process.execPath, ['dist/cli/main.js', 'gateway', '--config', 'examples/gateway.yaml'], {
  cwd: root,
  stdio: ['ignore', 'inherit', 'inherit'],
});

setTimeout(() => {
  console.log(`
meshgate is running.
  gateway   http://127.0.0.1:8080
  admin     http://127.0.0.1:9901  (/ready, /config, /routes, /services)

Try:
  curl -s http://127.0.0.1:8080/api/v1/properties/42
  curl -s -H 'canary: true' http://127.0.0.1:8080/api/v1/properties/42
  curl -s http://127.0.0.1:8080/api/v1/search/homes
  curl -s http://127.0.0.1:8080/nope
  curl -s http://127.0.0.1:9901/routes

Ctrl-C stops everything.`);
}, 1000).unref();

const stop = () => {
  gateway.kill('SIGTERM');
  for (const s of servers) s.close();
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
gateway.on('exit', (code) => {
  for (const s of servers) s.close();
  process.exitCode = code ?? 0;
});
