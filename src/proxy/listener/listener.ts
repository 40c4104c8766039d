/**
 * A client-facing listener: one bound TCP socket, and behind it the protocol servers its settings ask
 * for. The bound server only accepts; each connection goes to
 *   - plain HTTP/1.1 (node:http) — the default, and the path tuned for speed: nothing runs per request here;
 *   - TLS (node:http2 secure server with HTTP/1.1 fallback, or node:https without HTTP/2), SNI-chosen certificates;
 *   - prior-knowledge h2c (node:http2), told apart from HTTP/1.1 by the connection preface when `http2` is on;
 *   - mutual TLS with the proxy's workload identity (`mtls`: STRICT), or that and plaintext on one port
 *     (PERMISSIVE), told apart by the first byte: a TLS record of type handshake is 0x16, which no HTTP/1.1
 *     method or h2c preface starts with.
 * Keeping the bound socket apart from the protocol servers lets a reload change TLS or HTTP/2 settings
 * without rebinding: new connections get the new servers, open ones finish on the old.
 */
import type { Server as HttpServer, IncomingMessage } from 'node:http';
import {
  createServer as createH2cServer,
  createSecureServer,
  type Http2SecureServer,
  type Http2Server,
  type Http2Session,
  type ServerHttp2Session,
} from 'node:http2';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { type AddressInfo, createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { DEFAULT_TLS_CIPHERS, TLS_HANDSHAKE_TIMEOUT_WITHOUT_HEADERS_TIMEOUT_MS } from '../../core/defaults.ts';
import { http } from '../../core/node-http.ts';
import { closeWhenIdle, type ListenerRuntime, onClientSocketClose, type StreamHost } from '../context.ts';
import type { MeshTls } from '../identity/mesh-tls.ts';
import { handleRequest } from '../stream.ts';
import { handleUpgrade } from '../websocket.ts';
import { onClientError } from './client-error.ts';
import type { LeanServer } from './lean/server.ts';
import { notePeer } from './peer.ts';
import { contextFor } from './tls.ts';

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
/** The first byte of a TLS record carrying a handshake (a ClientHello opens every TLS connection). */
const TLS_HANDSHAKE_RECORD = 0x16;

function destroySelf(this: Socket) {
  this.destroy();
}

type H1Server = HttpServer | HttpsServer | Http2SecureServer;

/** The workload identity's certificate, key and bundle, with the listener TLS defaults. */
function meshContextOptions(mesh: MeshTls) {
  return {
    ...mesh.identity.secureContextOptions(),
    minVersion: 'TLSv1.2' as const,
    ciphers: DEFAULT_TLS_CIPHERS,
    honorCipherOrder: true,
  };
}

/** Only WebSocket upgrades leave the request path; `Upgrade: h2c` and others are served as plain requests. */
function isWebSocketUpgrade(req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade;
  return upgrade !== undefined && upgrade.toLowerCase() === 'websocket';
}

/** How often the HTTP/1.1 servers check head and request deadlines: fine enough for the shortest one set. */
function checkingIntervalMs(runtime: ListenerRuntime): number {
  const { headersTimeoutMs, requestTimeoutMs } = runtime.config.limits;
  const shortest = Math.min(headersTimeoutMs || Infinity, requestTimeoutMs || Infinity);
  return Math.max(25, Math.min(1000, Math.floor(shortest / 4)));
}

export class Listener {
  private current: ListenerRuntime;
  private readonly host: StreamHost;
  private readonly outer: NetServer;
  /** Protocol servers by kind (`h1`, `h2c`, `tls-h2`, `tls-h1`); created when first needed. */
  private readonly servers = new Map<string, H1Server | Http2Server>();
  /** Connections that carry HTTP/1.1 requests (raw or TLS sockets), for draining. */
  private readonly h1Sockets = new Set<Socket>();
  private readonly sessions = new Set<Http2Session>();
  private readonly rawSockets = new Set<Socket>();
  /**
   * Connections that have not sent a byte yet, with their accept time. node:http's head deadline starts
   * at the first byte, so a connection that never sends one would stay open; a sweep closes it.
   */
  private readonly silent = new Map<Socket, number>();
  private sweeper: NodeJS.Timeout | null = null;
  /** The lean HTTP/1.1 engine (`engine: lean`), once a connection needs it. */
  private lean: LeanServer | null = null;
  /** Loaded with the first listener that asks for the lean engine; null until then. */
  private static leanModule: typeof import('./lean/server.ts') | null = null;
  /** Closing: requests still arriving on open connections are served, then their connection closes. */
  draining = false;
  /** Stops following the workload identity's rotations (set once a mutual-TLS server exists). */
  private unfollowRotation: (() => void) | null = null;

  constructor(host: StreamHost, runtime: ListenerRuntime) {
    this.host = host;
    this.current = runtime;
    // The bound server accepts for the protocol servers, so it sets what node:http would: no Nagle delay.
    this.outer = createNetServer({ noDelay: true }, (socket) => this.accept(socket));
    this.applyLimits();
  }

  get runtime(): ListenerRuntime {
    return this.current;
  }

  /** Swapped with the snapshot: new connections and requests see it at once. */
  set runtime(next: ListenerRuntime) {
    this.current = next;
    this.applyLimits();
  }

  get name(): string {
    return this.current.config.name;
  }

  /** The bound port (differs from the configured one when that is 0). */
  get port(): number {
    return (this.outer.address() as AddressInfo | null)?.port ?? 0;
  }

  async listen(): Promise<void> {
    const { port, address } = this.current.config;
    if (this.current.config.engine === 'lean') await Listener.loadLean();
    return new Promise((resolve, reject) => {
      const onError = (e: Error) => reject(e);
      this.outer.once('error', onError);
      this.outer.listen(port, address, () => {
        this.outer.off('error', onError);
        this.sweeper = setInterval(() => this.sweepSilent(), checkingIntervalMs(this.current));
        this.sweeper.unref();
        resolve();
      });
    });
  }

  private accept(socket: Socket) {
    this.rawSockets.add(socket);
    if (this.current.config.limits.headersTimeoutMs > 0) this.silent.set(socket, performance.now());
    socket.once('close', () => {
      this.rawSockets.delete(socket);
      this.silent.delete(socket);
    });
    const runtime = this.current;
    if (runtime.tls !== null) {
      this.server(runtime.config.http2 ? 'tls-h2' : 'tls-h1').emit('connection', socket);
    } else if (runtime.mesh !== null) {
      if (runtime.config.mtls === 'STRICT')
        this.server(runtime.config.http2 ? 'mtls-h2' : 'mtls-h1').emit('connection', socket);
      else this.sniffTls(socket);
    } else if (runtime.config.http2) {
      this.sniff(socket, Buffer.alloc(0));
    } else if (runtime.config.engine === 'lean' && Listener.leanModule !== null) {
      this.trackH1(socket);
      this.lean ??= new Listener.leanModule.LeanServer(this.host, this);
      this.lean.accept(socket);
    } else {
      this.trackH1(socket);
      this.server('h1').emit('connection', socket);
    }
  }

  /**
   * Plain listener with HTTP/2 on: the first bytes say whether this is h2c (the preface) or HTTP/1.1.
   * Until they arrive no protocol server guards the socket, so it has an error handler of its own (the
   * silent-connection sweep bounds the wait).
   */
  private sniff(socket: Socket, seen: Buffer) {
    if (seen.length === 0) socket.on('error', destroySelf);
    socket.once('data', (chunk: Buffer) =>
      this.sniffed(socket, seen.length === 0 ? chunk : Buffer.concat([seen, chunk])),
    );
  }

  private sniffed(socket: Socket, head: Buffer) {
    const n = Math.min(head.length, H2_PREFACE.length);
    const isH2 = head.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
    if (isH2 && head.length < H2_PREFACE.length) {
      this.sniff(socket, head);
      return;
    }
    socket.pause();
    socket.unshift(head);
    socket.off('error', destroySelf);
    if (isH2) {
      // The h2 session reads the socket's buffer, then its handle; resuming here would steal the preface.
      this.server('h2c').emit('connection', socket);
      return;
    }
    this.trackH1(socket);
    this.server('h1').emit('connection', socket);
    socket.resume();
  }

  /**
   * PERMISSIVE: one byte tells a TLS handshake from plaintext. The TLS server reads what was unshifted
   * before its handle (as the h2 session does); plaintext goes where a plain listener sends it.
   */
  private sniffTls(socket: Socket) {
    socket.on('error', destroySelf);
    socket.once('data', (chunk: Buffer) => {
      const http2 = this.current.config.http2;
      if (chunk[0] === TLS_HANDSHAKE_RECORD) {
        socket.pause();
        socket.unshift(chunk);
        socket.off('error', destroySelf);
        this.server(http2 ? 'mtls-h2' : 'mtls-h1').emit('connection', socket);
        return;
      }
      if (http2) {
        this.sniffed(socket, chunk);
        return;
      }
      socket.pause();
      socket.unshift(chunk);
      socket.off('error', destroySelf);
      this.trackH1(socket);
      this.server('h1').emit('connection', socket);
      socket.resume();
    });
  }

  private trackH1(socket: Socket) {
    this.h1Sockets.add(socket);
    socket.on('close', onClientSocketClose);
    socket.once('close', () => this.h1Sockets.delete(socket));
  }

  private server(kind: string): H1Server | Http2Server {
    let server = this.servers.get(kind);
    if (server === undefined) {
      server = this.create(kind);
      this.servers.set(kind, server);
      this.applyLimits();
    }
    return server;
  }

  private create(kind: string): H1Server | Http2Server {
    const onRequest = (req: IncomingMessage, res: Parameters<typeof handleRequest>[3]) => {
      // While draining, a request arriving on a kept-alive connection is served, then the connection closes.
      if (this.draining && 'shouldKeepAlive' in res) res.shouldKeepAlive = false;
      handleRequest(this.host, this.current, req, res);
    };
    const limits = this.current.config.limits;
    const http1Options = {
      maxHeaderSize: limits.maxHeaderBytes,
      connectionsCheckingInterval: checkingIntervalMs(this.current),
      // The request path checks Host itself, to answer with a problem reply.
      requireHostHeader: false,
      shouldUpgradeCallback: isWebSocketUpgrade,
    };
    const h2Settings = {
      maxConcurrentStreams: limits.maxConcurrentStreams,
      maxHeaderListSize: limits.maxHeaderBytes,
    };
    let server: H1Server | Http2Server;
    switch (kind) {
      case 'h1':
        server = http.createServer(http1Options, onRequest);
        break;
      case 'h2c':
        server = createH2cServer({ settings: h2Settings }, onRequest as never);
        break;
      case 'tls-h1':
      case 'tls-h2': {
        const tls = this.current.tls!;
        const options = {
          ...tls.defaultOptions,
          ...http1Options,
          // A handshake is part of receiving the request head: the same deadline bounds it.
          handshakeTimeout:
            limits.headersTimeoutMs > 0 ? limits.headersTimeoutMs : TLS_HANDSHAKE_TIMEOUT_WITHOUT_HEADERS_TIMEOUT_MS,
          SNICallback: (name: string, cb: (e: Error | null, ctx: unknown) => void) => {
            const material = this.current.tls;
            cb(null, material === null ? undefined : contextFor(material, name));
          },
        };
        server =
          kind === 'tls-h2'
            ? createSecureServer({ ...options, allowHTTP1: true, settings: h2Settings } as never, onRequest as never)
            : createHttpsServer({ ...options, ALPNProtocols: ['http/1.1'] } as never, onRequest as never);
        server.on('secureConnection', (socket: TLSSocket) => this.onSecureConnection(socket));
        break;
      }
      case 'mtls-h1':
      case 'mtls-h2': {
        const mesh = this.current.mesh!;
        const options = {
          ...meshContextOptions(mesh),
          ...http1Options,
          // Verified after the handshake (admitMesh), so a refusal is counted and logged with its reason.
          requestCert: true,
          rejectUnauthorized: false,
          handshakeTimeout:
            limits.headersTimeoutMs > 0 ? limits.headersTimeoutMs : TLS_HANDSHAKE_TIMEOUT_WITHOUT_HEADERS_TIMEOUT_MS,
        };
        server =
          kind === 'mtls-h2'
            ? createSecureServer({ ...options, allowHTTP1: true, settings: h2Settings } as never, onRequest as never)
            : createHttpsServer({ ...options, ALPNProtocols: ['http/1.1'] } as never, onRequest as never);
        // The HTTP layer's own handler would parse bytes already decrypted (TLS 1.3 clients send the request
        // with their Finished) straight from the handle, even from a socket destroyed here: it only ever
        // sees connections whose caller passed.
        const httpLayer = server.listeners('secureConnection') as ((socket: TLSSocket) => void)[];
        server.removeAllListeners('secureConnection');
        server.on('secureConnection', (socket: TLSSocket) => {
          if (!this.admitMesh(socket, mesh)) return;
          for (const listener of httpLayer) listener.call(server, socket);
        });
        server.on('tlsClientError', (err: NodeJS.ErrnoException) =>
          mesh.recordFailure('inbound', err.code ?? 'handshake-failed', err.message),
        );
        this.unfollowRotation ??= mesh.onRotation(() => {
          const next = meshContextOptions(mesh);
          for (const k of ['mtls-h1', 'mtls-h2'])
            (this.servers.get(k) as HttpsServer | undefined)?.setSecureContext(next);
        });
        break;
      }
      default:
        throw new Error(`unknown listener kind ${kind}`);
    }
    server.on('clientError', onClientError);
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      handleUpgrade(this.host, this.current, req, socket as Socket, head),
    );
    if (kind === 'h2c' || kind === 'tls-h2' || kind === 'mtls-h2') {
      server.on('session', (session: ServerHttp2Session) => {
        this.sessions.add(session);
        session.once('close', () => this.sessions.delete(session));
        if (this.draining) session.close();
      });
      // An idle HTTP/2 connection closes gracefully (streams in progress finish) instead of being destroyed.
      server.on('timeout', (session: Http2Session) => session.close());
    }
    // The protocol servers never listen themselves; this starts their head/request deadline checks.
    server.emit('listening');
    return server;
  }

  /** The lean engine is loaded only by processes whose config uses it. */
  static async loadLean(): Promise<void> {
    Listener.leanModule ??= await import('./lean/server.ts');
  }

  private sweepSilent() {
    const deadline = this.current.config.limits.headersTimeoutMs;
    const now = performance.now();
    this.lean?.sweep(now);
    for (const [socket, acceptedAt] of this.silent) {
      if (socket.bytesRead > 0) this.silent.delete(socket);
      else if (deadline > 0 && now - acceptedAt >= deadline) {
        this.silent.delete(socket);
        socket.destroy();
      }
    }
  }

  private onSecureConnection(socket: TLSSocket) {
    const runtime = this.current;
    // Optional client certificates: one that is presented must still verify.
    if (runtime.tls?.requestCert && !runtime.tls.rejectUnauthorized && !socket.authorized) {
      const peer = socket.getPeerCertificate();
      if (peer !== null && Object.keys(peer).length > 0) {
        socket.destroy();
        return;
      }
    }
    if (socket.alpnProtocol !== 'h2') this.trackH1(socket);
  }

  /**
   * A completed mutual-TLS handshake: the client certificate must have verified against the bundle and
   * carry a SPIFFE ID; otherwise the connection closes before any HTTP, and the reason is counted.
   */
  private admitMesh(socket: TLSSocket, mesh: MeshTls): boolean {
    if (!socket.authorized) {
      const cert = socket.getPeerCertificate();
      const none = cert === null || Object.keys(cert).length === 0;
      const reason = none ? 'no-client-certificate' : String(socket.authorizationError ?? 'unauthorized');
      mesh.recordFailure('inbound', reason);
      socket.destroy();
      return false;
    }
    if (notePeer(socket, mesh.spiffeId) === undefined) {
      mesh.recordFailure('inbound', 'no-spiffe-id', 'the client certificate has no single SPIFFE ID URI SAN');
      socket.destroy();
      return false;
    }
    mesh.handshakes.inbound++;
    if (socket.alpnProtocol !== 'h2') this.trackH1(socket);
    return true;
  }

  /** Pushes the runtime's limits and certificates to the bound server and every protocol server. */
  private applyLimits() {
    const runtime = this.current;
    const limits = runtime.config.limits;
    this.outer.maxConnections = limits.maxConnections === 0 ? Number.POSITIVE_INFINITY : limits.maxConnections;
    for (const [kind, server] of this.servers) {
      const s = server as HttpServer & { maxHeaderSize?: number };
      s.headersTimeout = limits.headersTimeoutMs;
      s.requestTimeout = limits.requestTimeoutMs;
      s.keepAliveTimeout = limits.keepAliveTimeoutMs;
      s.maxHeaderSize = limits.maxHeaderBytes;
      if (kind === 'h2c' || kind === 'tls-h2' || kind === 'mtls-h2') {
        const h2 = server as Http2Server;
        h2.updateSettings({
          maxConcurrentStreams: limits.maxConcurrentStreams,
          maxHeaderListSize: limits.maxHeaderBytes,
        });
        h2.setTimeout(limits.keepAliveTimeoutMs);
      }
      if ((kind === 'tls-h1' || kind === 'tls-h2') && runtime.tls !== null) {
        (server as HttpsServer).setSecureContext(runtime.tls.defaultOptions);
      }
    }
  }

  /**
   * Stops accepting, lets in-flight requests finish (idle keep-alive connections close now, busy ones
   * after their response; HTTP/2 connections get GOAWAY), and cuts whatever is left at the deadline.
   */
  close(deadlineMs: number): Promise<void> {
    this.draining = true;
    this.unfollowRotation?.();
    this.unfollowRotation = null;
    if (this.sweeper !== null) clearInterval(this.sweeper);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        for (const session of this.sessions) session.destroy();
        for (const socket of this.rawSockets) socket.destroy();
      }, deadlineMs);
      timer.unref();
      this.outer.close(() => {
        clearTimeout(timer);
        // The protocol servers hold timers only (they never listened); close them without waiting.
        for (const server of this.servers.values()) server.close(() => {});
        resolve();
      });
      for (const socket of this.h1Sockets) closeWhenIdle(socket);
      for (const session of this.sessions) session.close();
    });
  }
}
