/**
 * The demo's child processes: each `meshgate` command with its output in its own log file. Children
 * run in their own process groups, so a Ctrl-C in the terminal reaches only the demo, which then stops
 * them in order, each by its PID. If the demo itself dies, it still kills what it started.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Child {
  name: string;
  process: ChildProcess;
  log: string;
  /** Resolves when the process has exited. */
  exited: Promise<void>;
  exitCode: number | null;
}

export class Supervisor {
  private readonly children = new Map<string, Child>();
  private readonly cli: string;
  private readonly cwd: string;
  private readonly logDir: string;
  private stopping = false;
  /** Called when a child exits while the demo is not stopping. */
  onUnexpectedExit: (child: Child, reason: string) => void = () => {};

  constructor(options: { cli: string; cwd: string; logDir: string }) {
    this.cli = options.cli;
    this.cwd = options.cwd;
    this.logDir = options.logDir;
    // Last resort: whatever ends this process (a crash, process.exit) takes its children with it.
    process.once('exit', () => this.killAll());
  }

  /** Runs `meshgate ARGS` (the compiled CLI, on this Node) with stdout and stderr to NAME.log. */
  start(name: string, args: string[], env: Record<string, string> = {}): Child {
    // Once stopping, nothing new starts (a Ctrl-C while the demo is still starting).
    if (this.stopping) throw new Error(`not starting ${name}: stopping`);
    const log = join(this.logDir, `${name}.log`);
    const fd = openSync(log, 'a');
    const proc = spawn(process.execPath, [this.cli, ...args], {
      cwd: this.cwd,
      env: { ...process.env, ...env },
      stdio: ['ignore', fd, fd],
      detached: true,
    });
    closeSync(fd);
    let markExited!: () => void;
    const child: Child = { name, process: proc, log, exitCode: null, exited: new Promise((r) => (markExited = r)) };
    proc.once('error', (e) => {
      child.exitCode = -1;
      markExited();
      if (!this.stopping) this.onUnexpectedExit(child, e.message);
    });
    proc.once('exit', (code, signal) => {
      child.exitCode = code ?? -1;
      markExited();
      if (!this.stopping) this.onUnexpectedExit(child, signal ? `killed by ${signal}` : `exit code ${code}`);
    });
    this.children.set(name, child);
    return child;
  }

  get(name: string): Child | undefined {
    return this.children.get(name);
  }

  pids(): number[] {
    return [...this.children.values()].flatMap((c) => (c.process.pid && c.exitCode === null ? [c.process.pid] : []));
  }

  /**
   * SIGTERM to the named children (all when omitted), then SIGKILL to any still running after
   * `graceMs`. Proxies drain on SIGTERM: sidecars deregister first, so nothing calls a stopped app.
   */
  async stop(names: string[] | null, graceMs: number): Promise<void> {
    this.stopping = true;
    const targets = [...this.children.values()].filter((c) => names === null || names.includes(c.name));
    const running = targets.filter((c) => c.exitCode === null);
    for (const c of running) signal(c, 'SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        for (const c of running) if (c.exitCode === null) signal(c, 'SIGKILL');
        resolve();
      }, graceMs);
    });
    await Promise.race([Promise.all(running.map((c) => c.exited)), late]);
    clearTimeout(timer);
    // After a SIGKILL the exit is immediate; wait for it so no PID outlives the demo.
    await Promise.all(running.map((c) => c.exited));
  }

  /** SIGKILL to every child still running (a second Ctrl-C, or the demo's own exit). */
  killAll(): void {
    this.stopping = true;
    for (const c of this.children.values()) if (c.exitCode === null) signal(c, 'SIGKILL');
  }

  /** The last lines of a child's log, to show why it stopped. */
  tail(child: Child, lines = 15): string {
    try {
      return readFileSync(child.log, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }
}

function signal(child: Child, name: NodeJS.Signals) {
  try {
    if (child.process.pid !== undefined) process.kill(child.process.pid, name);
  } catch {
    // Already gone.
  }
}
