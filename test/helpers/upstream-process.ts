/** An upstream in a separate process (test/helpers/upstream-main.ts) that a test can kill and start again. */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { nodeBin, repoRoot } from './process.ts';

export class UpstreamProcess {
  readonly name: string;
  readonly port: number;
  readonly child: ChildProcess;

  private constructor(name: string, port: number, child: ChildProcess) {
    this.name = name;
    this.port = port;
    this.child = child;
  }

  /** Starts one and waits until it listens (on `port`, or any free port when 0). */
  static async start(name: string, port = 0): Promise<UpstreamProcess> {
    const { NODE_TEST_CONTEXT: _runner, ...env } = process.env;
    const child = spawn(nodeBin, [`${repoRoot}test/helpers/upstream-main.ts`], {
      env: { ...env, MESHGATE_TEST_UPSTREAM: name, PORT: String(port) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const [line] = (await Promise.race([
      once(child.stdout!.setEncoding('utf8'), 'data'),
      once(child, 'exit').then(() => {
        throw new Error(`upstream ${name} exited before listening`);
      }),
    ])) as [string];
    return new UpstreamProcess(name, JSON.parse(line).port as number, child);
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Kills the process (by its PID) and waits until it is gone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, 'exit');
    process.kill(this.pid, signal);
    await exited;
  }

  /** A new process of the same name on the same port. */
  restart(): Promise<UpstreamProcess> {
    return UpstreamProcess.start(this.name, this.port);
  }
}
