/**
 * A real etcd server (the `etcd` binary, Debian's etcd-server) for tests: free loopback ports, a
 * temporary data directory, stopped by its PID. `restart()` starts it again on the same ports and data.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.ts';

export const ETCD_BIN = process.env.MESHGATE_ETCD_BIN ?? 'etcd';

/** A port that was free a moment ago (etcd cannot report the port it picked for 0). */

export class EtcdServer {
  readonly dataDir: string;
  readonly clientPort: number;
  readonly peerPort: number;
  private child: ChildProcess | null = null;
  private output = '';

  private constructor(dataDir: string, clientPort: number, peerPort: number) {
    this.dataDir = dataDir;
    this.clientPort = clientPort;
    this.peerPort = peerPort;
  }

  /** Starts one and waits until it answers; retries with other ports if one was taken meanwhile. */
  static async start(): Promise<EtcdServer> {
    let lastError: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      const server = new EtcdServer(mkdtempSync(join(tmpdir(), 'meshgate-etcd-')), await freePort(), await freePort());
      try {
        await server.launch();
        return server;
      } catch (e) {
        lastError = e;
        await server.stop();
      }
    }
    throw lastError;
  }

  get url(): string {
    return `http://127.0.0.1:${this.clientPort}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  private async launch(): Promise<void> {
    const peer = `http://127.0.0.1:${this.peerPort}`;
    // Short heartbeat and election times: a single member elects itself in a few ms instead of ~1 s.
    const child = spawn(
      ETCD_BIN,
      [
        '--name=test',
        `--data-dir=${this.dataDir}`,
        `--listen-client-urls=${this.url}`,
        `--advertise-client-urls=${this.url}`,
        `--listen-peer-urls=${peer}`,
        `--initial-advertise-peer-urls=${peer}`,
        `--initial-cluster=test=${peer}`,
        '--heartbeat-interval=20',
        '--election-timeout=200',
        '--log-level=error',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    this.child = child;
    child.stderr!.setEncoding('utf8').on('data', (c: string) => {
      this.output = (this.output + c).slice(-4_000);
    });
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`etcd exited with ${child.exitCode}: ${this.output}`);
      try {
        const res = await fetch(`${this.url}/health`, { signal: AbortSignal.timeout(500) });
        const body = (await res.json()) as { health?: string };
        if (body.health === 'true') return;
      } catch {}
      if (Date.now() > deadline) throw new Error(`etcd did not become healthy within 10 s: ${this.output}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Stops the process by its PID (SIGKILL: what a crash looks like) and waits until it is gone. */
  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (child === null || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    process.kill(child.pid!, signal);
    await exited;
  }

  /** Starts it again on the same ports and data directory. */
  async restart(): Promise<void> {
    await this.kill();
    await this.launch();
  }

  /** Stops it and removes its data. */
  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
