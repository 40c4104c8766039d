/** Raw HTTP over a socket, for requests a well-behaved client library refuses to send. */
import { connect } from 'node:net';

export interface RawResponse {
  /** Everything the server sent before closing or going quiet. */
  text: string;
  status: number;
  headers: Record<string, string>;
  body: string;
  /** True when the server closed the connection. */
  closed: boolean;
}

/** Sends `request` as is and reads until the server closes or is quiet for `quietMs`. */
export function rawRequest(port: number, request: string | Buffer, quietMs = 300): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    let closed = false;
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(parseRaw(Buffer.concat(chunks).toString('latin1'), closed));
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(done, quietMs);
    };
    socket.on('connect', () => {
      socket.write(request);
      arm();
    });
    socket.on('data', (c) => {
      chunks.push(c);
      arm();
    });
    socket.on('end', () => {
      closed = true;
      done();
    });
    socket.on('error', (e) => {
      if (chunks.length > 0) {
        closed = true;
        done();
      } else reject(e);
    });
  });
}

export function parseRaw(text: string, closed: boolean): RawResponse {
  const end = text.indexOf('\r\n\r\n');
  const head = end === -1 ? text : text.slice(0, end);
  const lines = head.split('\r\n');
  const status = Number(lines[0]?.split(' ')[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
  }
  return { text, status, headers, body: end === -1 ? '' : text.slice(end + 4), closed };
}
