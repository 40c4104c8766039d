/**
 * Small JSON requests from a proxy to its control plane (registration, heartbeats, ACKs), on node:http
 * with one keep-alive agent: the proxy keeps undici's full client (and its memory) out of the process.
 */
import type { Agent } from 'node:http';
import { http } from '../../core/node-http.ts';

export interface JsonResponse {
  status: number;
  body: unknown;
}

export function controlAgent(): Agent {
  return new http.Agent({ keepAlive: true, maxSockets: 4 });
}

/** Sends `body` as JSON; resolves with the status and parsed body, rejects on network errors and timeout. */
export function requestJson(
  agent: Agent,
  url: string,
  method: string,
  body: unknown,
  timeoutMs: number,
  headers: Record<string, string> = {},
): Promise<JsonResponse> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? '' : JSON.stringify(body);
    const req = http.request(
      url,
      {
        method,
        agent,
        headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
        timeout: timeoutMs,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          let parsed: unknown = text;
          try {
            parsed = text ? JSON.parse(text) : null;
          } catch {}
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from ${new URL(url).host} within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** `Authorization: Bearer TOKEN`, or nothing without a token. The token itself is never logged. */
export function bearer(token: string | undefined): Record<string, string> {
  return token === undefined ? {} : { authorization: `Bearer ${token}` };
}

/** `error` field of a JSON error body, or the status. */
export function errorOf(response: JsonResponse): string {
  const body = response.body as { error?: unknown } | null;
  return typeof body?.error === 'string' ? body.error : `status ${response.status}`;
}
