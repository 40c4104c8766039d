/**
 * A real `redis-server` for tests: its own free loopback port and temporary directory, no persistence,
 * stopped by its PID. `stop()` and `start()` again keep the port, to test a Redis that goes away and
 * comes back.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './ports.ts';

/** Where Debian's package puts it; `REDIS_SERVER` overrides. */
const REDIS_SERVER = process.env.REDIS_SERVER ?? 'redis-server';

/** True when a PING on the port gets +PONG. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    let reply = '';
    socket.setTimeout(500, () => socket.destroy());
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      reply += d.toString('latin1');
      if (reply.includes('\r\n')) socket.end();
    });
    socket.on('close', () => resolve(reply.startsWith('+PONG')));
    socket.on('error', () => {});
  });
}

export class RedisServer {
  readonly port: number;
  readonly dir: string;
  private child: ChildProcess | null = null;
  private output = '';

  private constructor(port: number) {
    this.port = port;
    this.dir = mkdtempSync(join(tmpdir(), 'meshgate-redis-'));
  }

  /** Starts a server on a free port and waits until it answers PING. */
  static async start(): Promise<RedisServer> {
    const server = new RedisServer(await freePort());
    try {
      await server.start();
    } catch (e) {
      rmSync(server.dir, { recursive: true, force: true });
      throw e;
    }
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** (Re)starts the process on the same port; resolves once it answers PING (within 10 s). */
  async start(): Promise<void> {
    if (this.child !== null) return;
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
    args.push('--dir', this.dir);
    const child = spawn(REDIS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout!.setEncoding('utf8').on('data', (c: string) => (this.output = (this.output + c).slice(-4000)));
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (this.output = (this.output + c).slice(-4000)));
    const failed = once(child, 'exit').then(() => {
      throw new Error(`redis-server exited: ${this.output}`);
    });
    failed.catch(() => {});
    const deadline = Date.now() + 10_000;
    while (!(await Promise.race([ping(this.port), failed]))) {
      if (Date.now() > deadline) throw new Error(`redis-server did not answer on ${this.port}: ${this.output}`);
      await sleep(20);
    }
  }

  /** Stops the process (SIGKILL: a crash, nothing flushed) and waits for it to exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (child === null) return;
    this.child = null;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill(signal);
    await exited;
  }

  /** Stops the process and removes its directory. */
  async close(): Promise<void> {
    await this.kill('SIGTERM');
    rmSync(this.dir, { recursive: true, force: true });
  }
}
