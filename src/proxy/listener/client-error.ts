/**
 * Requests the HTTP/1.1 parser refuses (ambiguous framing, malformed syntax, oversized heads, heads or
 * bodies that arrive too slowly) never reach the request path: they are answered here with a problem
 * reply and the connection is closed, because after a framing error nothing later on the connection
 * can be trusted to start where the client says it does.
 */
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { LOCAL_REPLY_CODE_HEADER, REQUEST_ID_HEADER } from '../../core/defaults.ts';
import { type LocalReplyCode, LocalReplyCodes } from '../../core/errors.ts';
import { newestStreamOnSocket, type StreamContext } from '../context.ts';
import { problemOf } from '../local-reply.ts';

const DETAILS: Record<string, [LocalReplyCode, string]> = {
  HPE_HEADER_OVERFLOW: ['MG_HEADERS_TOO_LARGE', 'the request line and headers exceed the listener’s maxHeaderBytes'],
  ERR_HTTP_REQUEST_TIMEOUT: [
    'MG_REQUEST_TIMEOUT',
    'the request was not received within the listener’s headersTimeout or requestTimeout',
  ],
  HPE_INVALID_TRANSFER_ENCODING: [
    'MG_BAD_REQUEST',
    'invalid or ambiguous Transfer-Encoding (chunked must be last and alone; never with Content-Length)',
  ],
  HPE_UNEXPECTED_CONTENT_LENGTH: ['MG_BAD_REQUEST', 'more than one Content-Length, or Content-Length with chunked'],
  HPE_INVALID_CONTENT_LENGTH: ['MG_BAD_REQUEST', 'malformed Content-Length'],
  HPE_INVALID_CHUNK_SIZE: ['MG_BAD_REQUEST', 'malformed chunk size'],
  HPE_INVALID_HEADER_TOKEN: [
    'MG_BAD_REQUEST',
    'invalid header: a bad character in a name or value, or obsolete line folding',
  ],
  HPE_CR_EXPECTED: ['MG_BAD_REQUEST', 'a line ends with a bare LF (CRLF required)'],
  HPE_LF_EXPECTED: ['MG_BAD_REQUEST', 'a bare CR in the request head'],
};

/** The listener's 'clientError' handler. */
export function onClientError(error: NodeJS.ErrnoException, socket: Socket): void {
  const code = error.code ?? '';
  // A reset or a write after the client left: nobody to answer.
  if (code === 'ECONNRESET' || code === 'EPIPE' || !socket.writable) {
    socket.destroy();
    return;
  }
  if ((socket as Socket & { _httpMessage?: unknown })._httpMessage)
    failUnderway(code, socket, newestStreamOnSocket(socket));
  else refuseOnSocket(code, socket);
}

function detailsOf(code: string): [LocalReplyCode, string] {
  return (
    DETAILS[code] ?? ['MG_BAD_REQUEST', code.startsWith('HPE_') ? `malformed request (${code})` : 'malformed request']
  );
}

/**
 * The head was accepted and the request is under way, but its body is malformed or too slow. The
 * upstream dispatch writes in a later microtask, so a body error found in the same read as the head
 * aborts it before a byte leaves; later, the upstream sees an aborted request, never a complete one.
 */
export function failUnderway(code: string, socket: Socket, ctx: StreamContext | null): void {
  if (ctx !== null && !ctx.done) {
    const [replyCode, detail] = detailsOf(code);
    ctx.upstream?.abort();
    ctx.failAndClose(replyCode, detail);
    socket.destroySoon();
  } else socket.destroy();
}

/** No request is under way: the refusal is written on the bare connection, which then closes. */
export function refuseOnSocket(code: string, socket: Socket): void {
  const [replyCode, detail] = detailsOf(code);
  const status = LocalReplyCodes[replyCode].status;
  const requestId = randomUUID();
  const body = JSON.stringify(problemOf({ status, code: replyCode, detail }, requestId));
  socket.end(
    `HTTP/1.1 ${status} ${LocalReplyCodes[replyCode].title}\r\n` +
      'content-type: application/problem+json\r\n' +
      `content-length: ${Buffer.byteLength(body)}\r\n` +
      `${LOCAL_REPLY_CODE_HEADER}: ${replyCode}\r\n` +
      `${REQUEST_ID_HEADER}: ${requestId}\r\n` +
      'cache-control: no-store\r\n' +
      'connection: close\r\n\r\n' +
      body,
  );
  // end() waits for the client to close its half; a client that never does must not keep the socket.
  socket.destroySoon();
}
