/**
 * A client-facing HTTP/1.1 listener (node:http). The request callback is created once; it reads the
 * listener's settings through a reference that `ProxyServer.apply` swaps together with the snapshot.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { DEFAULT_CLIENT_KEEPALIVE_MS } from '../../core/defaults.ts';
import { closeWhenIdle, type ListenerRuntime, onClientSocketClose, type StreamHost } from '../context.ts';
import { handleRequest } from '../stream.ts';

export class HttpListener {
  runtime: ListenerRuntime;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private draining = false;

  constructor(host: StreamHost, runtime: ListenerRuntime) {
    this.runtime = runtime;
    this.server = createServer(
      { keepAliveTimeout: DEFAULT_CLIENT_KEEPALIVE_MS, requireHostHeader: true },
      (req, res) => {
        // While draining, a request arriving on a kept-alive connection is served, then the connection closes.
        if (this.draining) res.shouldKeepAlive = false;
        handleRequest(host, this.runtime, req, res);
      },
    );
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', onClientSocketClose);
      socket.once('close', () => this.sockets.delete(socket));
    });
  }

  get name(): string {
    return this.runtime.config.name;
  }

  /** The bound port (differs from the configured one when that is 0). */
  get port(): number {
    return (this.server.address() as AddressInfo | null)?.port ?? 0;
  }

  listen(): Promise<void> {
    const { port, address } = this.runtime.config;
    return new Promise((resolve, reject) => {
      const onError = (e: Error) => reject(e);
      this.server.once('error', onError);
      this.server.listen(port, address, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
  }

  /**
   * Stops accepting, lets in-flight requests finish (idle keep-alive connections close now, busy ones
   * after their response), and cuts whatever is left at the deadline.
   */
  close(deadlineMs: number): Promise<void> {
    this.draining = true;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.server.closeAllConnections();
        for (const socket of this.sockets) socket.destroy();
      }, deadlineMs);
      timer.unref();
      this.server.close(() => {
        clearTimeout(timer);
        resolve();
      });
      for (const socket of this.sockets) closeWhenIdle(socket);
    });
  }
}
