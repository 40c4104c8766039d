/**
 * The real `meshgate` command as a child process (the compiled build `npm test` makes first, i.e. what
 * ships), with its JSON log lines parsed as they arrive.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
/** The pinned Node 24 (the system Node may be older and cannot run the .ts sources). */
export const nodeBin = `${repoRoot}node_modules/.bin/node`;

export interface LogLine {
  level: string;
  msg: string;
  [key: string]: unknown;
}

export class MeshgateProcess {
  readonly child: ChildProcess;
  readonly logs: LogLine[] = [];
  /** Everything written to stdout, as written (log lines included). */
  stdout = '';
  stderr = '';
  private waiters: { test: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];

  constructor(args: string[], env: Record<string, string> = {}) {
    this.child = spawn(nodeBin, [`${repoRoot}dist/cli/main.js`, ...args], {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let buffered = '';
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdout += chunk;
      buffered += chunk;
      let nl = buffered.indexOf('\n');
      while (nl !== -1) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        nl = buffered.indexOf('\n');
        let parsed: LogLine;
        try {
          parsed = JSON.parse(line);
        } catch {
          continue;
        }
        this.logs.push(parsed);
        this.waiters = this.waiters.filter((w) => {
          if (!w.test(parsed)) return true;
          w.resolve(parsed);
          return false;
        });
      }
    });
    this.child.stderr!.setEncoding('utf8').on('data', (c: string) => (this.stderr += c));
  }

  /** The first log line (already seen or still to come) with this message. */
  waitFor(msg: string | ((l: LogLine) => boolean), timeoutMs = 15_000): Promise<LogLine> {
    const test = typeof msg === 'string' ? (l: LogLine) => l.msg === msg : msg;
    const seen = this.logs.find(test);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no log line matching ${String(msg)} within ${timeoutMs} ms; stderr: ${this.stderr}`)),
        timeoutMs,
      );
      this.waiters.push({
        test,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
    });
  }

  /** Waits for a log line with this message that arrives after now. */
  waitForNext(msg: string, timeoutMs = 15_000): Promise<LogLine> {
    const count = this.logs.filter((l) => l.msg === msg).length;
    let seen = 0;
    return this.waitFor((l) => l.msg === msg && ++seen > count, timeoutMs);
  }

  /** Peak resident memory so far, in MiB (VmHWM), of this process or of one of its workers. */
  peakRssMiB(pid = this.child.pid): number {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmHWM:\s+(\d+)/.exec(status)![1]) / 1024;
  }

  /** Resolves with the exit code once the process has exited by itself. */
  async exited(): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    const [code] = await once(this.child, 'exit');
    return code as number | null;
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    this.child.kill(signal);
    const [code] = await once(this.child, 'exit');
    return code as number | null;
  }
}

/** Runs the compiled CLI to completion and collects its output. */
export async function runMeshgate(
  args: string[],
  extraEnv: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extraEnv };
  // Set by `node --test` for its own children; the CLI is not a test file.
  delete env.NODE_TEST_CONTEXT;
  const child = spawn(nodeBin, [`${repoRoot}dist/cli/main.js`, ...args], {
    cwd: repoRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

/** The ids of every process below `pid` (children of children too), from /proc. */
export function descendants(pid: number): number[] {
  const parentOf = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const fields = statFields(Number(name));
    if (fields !== undefined) parentOf.set(Number(name), Number(fields[1]));
  }
  const found: number[] = [];
  const walk = (parent: number) => {
    for (const [child, ppid] of parentOf)
      if (ppid === parent) {
        found.push(child);
        walk(child);
      }
  };
  walk(pid);
  return found;
}

/** Running or sleeping: neither gone nor a zombie waiting for its parent. */
export function alive(pid: number): boolean {
  const state = statFields(pid)?.[0];
  return state !== undefined && state !== 'Z';
}

/**
 * The CPU time (user and system) `pid` has used so far, in ms; 0 once it is gone. /proc counts in
 * USER_HZ ticks, 100 a second on every Linux architecture Node runs on.
 */
export function cpuMs(pid: number): number {
  const fields = statFields(pid);
  return fields === undefined ? 0 : (Number(fields[11]) + Number(fields[12])) * 10;
}

/** /proc/<pid>/stat after the command name: state, ppid, … (utime is [11], stime [12]). */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // pid (comm) state ppid …; comm may hold spaces and parentheses, so read after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined; // Gone while reading.
  }
}
