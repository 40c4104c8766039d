/**
 * A tiny GraphQL upstream for the `graphql` and `graphql-protect` bench variants (bench/compare.sh):
 * GraphQL over HTTP (POST JSON, or GET `?query=&variables=`) answering `item(id)` with a fixed
 * object. It reads the id from `variables.id` or the query's `id: "…"` argument instead of running
 * graphql-js: the bench measures the gateway's work, and an executing server would be the bottleneck.
 *
 *   node bench/graphql-upstream.ts PORT
 */
import { createServer } from 'node:http';

const port = Number(process.argv[2] ?? 18197);

function answer(query: unknown, variables: unknown): string | null {
  if (typeof query !== 'string') return null;
  const fromVariables = (variables as { id?: unknown } | null)?.id;
  const id = fromVariables ?? /\bid:\s*"?([\w-]+)/.exec(query)?.[1];
  if (id === undefined) return JSON.stringify({ errors: [{ message: 'item needs an id' }] });
  return JSON.stringify({ data: { item: { id: String(id), status: 'ok', items: [1, 2, 3] } } });
}

function send(res: import('node:http').ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

createServer((req, res) => {
  if (req.method === 'GET') {
    const url = new URL(req.url ?? '/', 'http://x');
    const variables = url.searchParams.get('variables');
    const body = answer(url.searchParams.get('query'), variables ? JSON.parse(variables) : null);
    send(res, body === null ? 400 : 200, body ?? '{"errors":[{"message":"no query"}]}');
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    let request: { query?: unknown; variables?: unknown };
    try {
      request = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      send(res, 400, '{"errors":[{"message":"body is not JSON"}]}');
      return;
    }
    const body = answer(request.query, request.variables);
    send(res, body === null ? 400 : 200, body ?? '{"errors":[{"message":"no query"}]}');
  });
}).listen(port, '127.0.0.1');
