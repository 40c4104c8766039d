// The kit's 40-line node:http + undici floor (peers/undici-minimal.mjs) with knobs, to take apart what
// meshgate costs above it (bench/compare.sh variants `floor-headers`, `floor-pipe`):
//   HEADERS=1       also send what meshgate adds on every request: X-Forwarded-For/-Proto/-Host,
//                   Forwarded, X-Request-ID (a random UUID, echoed on the response);
//   PIPELINING=N    undici's Pool pipelines up to N requests per upstream connection (default 1);
//   CONNECTIONS=N   upstream connections (default 128, as the kit's floor).
// Env: UPSTREAM_URL (origin), PORT (listen port on 127.0.0.1).
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { Pool } from 'undici';

const upstream = process.env.UPSTREAM_URL || 'http://127.0.0.1:18080';
const port = Number(process.env.PORT || 18100);
const addHeaders = process.env.HEADERS === '1';
const pool = new Pool(upstream, {
  connections: Number(process.env.CONNECTIONS || 128),
  pipelining: Number(process.env.PIPELINING || 1),
  keepAliveTimeout: 60_000,
});

const HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'expect',
  'host',
  'proxy-authenticate',
  'proxy-authorization',
]);
const strip = (headers) => {
  const out = {};
  for (const k in headers) if (!HOP.has(k)) out[k] = headers[k];
  return out;
};

const server = http.createServer((req, res) => {
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
  const headers = strip(req.headers);
  let id;
  if (addHeaders) {
    const peer = req.socket.remoteAddress;
    const host = req.headers.host;
    id = randomUUID();
    headers['x-forwarded-for'] = peer;
    headers['x-forwarded-proto'] = 'http';
    headers['x-forwarded-host'] = host;
    headers.forwarded = `for=${peer};host=${host};proto=http`;
    headers.host = host;
    headers['x-request-id'] = id;
  }
  pool.stream(
    { method: req.method, path: req.url, headers, body: hasBody ? req : undefined, opaque: res },
    ({ statusCode, headers, opaque }) => {
      const out = strip(headers);
      if (id !== undefined) out['x-request-id'] = id;
      opaque.writeHead(statusCode, out);
      return opaque;
    },
    (err) => {
      if (!err) return;
      if (!res.headersSent) res.writeHead(502);
      res.end();
    },
  );
});
server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1');
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
