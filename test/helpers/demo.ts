/**
 * The proptech demo as `npm start` runs it, on a port offset where all its ports are free, for the
 * browser tests of the dashboard (one demo per test file).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { demoPorts, listOfPorts } from '../../examples/proptech/ports.ts';
import { nodeBin, repoRoot } from './process.ts';

const START_BUDGET_MS = 60_000;
const STOP_BUDGET_MS = 20_000;
/** Offsets are drawn below this, so every port stays under Linux's ephemeral range (32768 and up). */
const MAX_OFFSET = 32_768 - 15_607;

function free(port: number): Promise<boolean> {
  return new Promise((done) => {
    const probe = createServer();
    probe.once('error', () => done(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => done(true)));
  });
}

/** A port offset at which every port of the demo is free now. */
export async function freeDemoOffset(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const offset = 1 + Math.floor(Math.random() * MAX_OFFSET);
    const all = await Promise.all(listOfPorts(demoPorts(offset)).map(([port]) => free(port)));
    if (all.every(Boolean)) return offset;
  }
  throw new Error('no port offset with every demo port free');
}

/**
 * `exec node examples/proptech/main.ts` → the arguments after `node`, so a test runs what `npm start`
 * runs. (`exec` makes the demo the process npm signals, so a SIGTERM to npm stops it.)
 */
export function demoStartCommand(): string[] {
  const pkg = JSON.parse(readFileSync(`${repoRoot}package.json`, 'utf8')) as { scripts: { start: string } };
  const [node, ...args] = pkg.scripts.start.replace(/^exec /, '').split(' ');
  assert.equal(node, 'node', 'npm start runs a node entry');
  return args;
}

export interface RunningDemo {
  process: ChildProcess;
  /** Everything it printed so far, stdout and stderr. */
  output: () => string;
  gateway: string;
  controlPlane: string;
  /** SIGINT (its own clean stop), SIGKILL if it is still running after STOP_BUDGET_MS. */
  stop: () => Promise<void>;
}

/** Starts `npm start -- <args> --port-offset N` and waits for its ready banner. */
export async function startDemo(args: string[]): Promise<RunningDemo> {
  const offset = await freeDemoOffset();
  const ports = demoPorts(offset);
  const env = { ...process.env };
  delete env.PROPTECH_JWT_SECRET;
  const demo = spawn(nodeBin, [...demoStartCommand(), ...args, '--port-offset', String(offset)], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  let output = '';
  demo.stdout!.setEncoding('utf8').on('data', (c: string) => (output += c));
  demo.stderr!.setEncoding('utf8').on('data', (c: string) => (output += c));
  const exited = new Promise<void>((done) => demo.once('exit', () => done()));
  const running: RunningDemo = {
    process: demo,
    output: () => output,
    gateway: `http://127.0.0.1:${ports.gateway}`,
    controlPlane: `http://127.0.0.1:${ports.controlPlane}`,
    stop: async () => {
      if (demo.exitCode !== null || demo.signalCode !== null) return;
      demo.kill('SIGINT');
      const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), STOP_BUDGET_MS).unref());
      if ((await Promise.race([exited, timeout])) === 'timeout') demo.kill('SIGKILL');
    },
  };
  const deadline = performance.now() + START_BUDGET_MS;
  while (!/^Ctrl-C stops everything\.$/m.test(output)) {
    if (demo.exitCode !== null) assert.fail(`the demo exited (${demo.exitCode}):\n${output}`);
    if (performance.now() > deadline) {
      await running.stop();
      assert.fail(`no ready banner:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return running;
}

/**
 * Polls `check` until it returns true (a throw counts as not yet), failing after `timeoutMs` with
 * `explain`'s account of what was there instead.
 */
export async function until(
  what: string,
  timeoutMs: number,
  check: () => Promise<boolean>,
  explain?: () => Promise<string | null>,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // Not there yet.
    }
    if (performance.now() > deadline)
      assert.fail(`timed out waiting for ${what}${explain ? `: ${await explain()}` : ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
