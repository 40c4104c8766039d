/**
 * The `meshgate` command as a user runs it: a real child process on the pinned Node, real files, exit
 * codes and output checked as a shell script or CI job would see them.
 */
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: `${NAME}` here is config text, not a template.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
// The system `node` may be older than 24 and unable to run .ts; the repo pins its own.
const NODE = join(ROOT, 'node_modules', '.bin', 'node');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

async function meshgate(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  // Set by `node --test` for its own children; the CLI is not a test file.
  delete childEnv.NODE_TEST_CONTEXT;
  const child = spawn(NODE, ['src/cli/main.ts', ...args], {
    cwd: ROOT,
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'meshgate-cli-'));
});
after(() => rm(dir, { recursive: true, force: true }));

async function write(name: string, lines: string[]): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, lines.join('\n') + '\n');
  return file;
}

/** Three different mistakes: an unknown field (line 4), a bad duration (line 9), an unknown service (line 12). */
const THREE_MISTAKES = [
  'listeners:',
  '  - name: public',
  '    port: 8080',
  '    adress: 127.0.0.1',
  'services:',
  '  - name: property-service',
  '    endpoints:',
  '      - url: http://127.0.0.1:8081',
  '    timeouts: { connect: 1 sec }',
  'routes:',
  '  - name: api',
  '    service: propety-service',
];

describe('meshgate validate', { concurrency: true }, () => {
  test('a valid file: exit 0 and a one-line summary', async () => {
    const run = await meshgate(['validate', 'examples/gateway.yaml']);
    assert.equal(run.stderr, '');
    assert.equal(run.stdout, 'examples/gateway.yaml: valid (1 listeners, 2 services, 4 routes)\n');
    assert.equal(run.code, 0);
  });

  test('an invalid file: exit 1 and every problem as file:line:col: path: message', async () => {
    const file = await write('three.yaml', THREE_MISTAKES);
    const run = await meshgate(['validate', file]);
    assert.equal(run.stdout, '');
    assert.deepEqual(run.stderr.trimEnd().split('\n'), [
      `${file}:4:5: listeners[0].adress: unknown field "adress" (did you mean "address"?)`,
      `${file}:9:26: services[0].timeouts.connect: "1 sec" is not a duration (write a number with a unit: 250ms, 5s, 1m30s, 1h; 0 disables)`,
      `${file}:12:14: routes[0].service: unknown service "propety-service" (did you mean "property-service"?)`,
      `3 problems in ${file}`,
    ]);
    assert.equal(run.code, 1);
  });

  test('--output json on an invalid file: valid false and the located issues', async () => {
    const file = await write('three-json.yaml', THREE_MISTAKES);
    const run = await meshgate(['validate', '--output', 'json', file]);
    assert.equal(run.code, 1);
    const report = JSON.parse(run.stdout) as { valid: boolean; file: string; issues: Record<string, unknown>[] };
    assert.equal(report.valid, false);
    assert.equal(report.file, file);
    assert.deepEqual(
      report.issues.map(({ line, column, path, message }) => ({ line, column, path, message })),
      [
        { line: 4, column: 5, path: 'listeners[0].adress', message: 'unknown field "adress"' },
        { line: 9, column: 26, path: 'services[0].timeouts.connect', message: '"1 sec" is not a duration' },
        { line: 12, column: 14, path: 'routes[0].service', message: 'unknown service "propety-service"' },
      ],
    );
    assert.equal(report.issues[0]!.hint, 'did you mean "address"?');
    assert.equal(report.issues[0]!.file, file);
  });

  test('--output json on a valid file: valid true and the hash', async () => {
    const run = await meshgate(['validate', '-o', 'json', 'examples/gateway.yaml']);
    assert.equal(run.code, 0);
    const report = JSON.parse(run.stdout) as { valid: boolean; file: string; hash: string };
    assert.equal(report.valid, true);
    assert.equal(report.file, 'examples/gateway.yaml');
    assert.match(report.hash, /^[0-9a-f]{16}$/);
  });

  test('${NAME} is taken from the environment of the process', async () => {
    const file = await write('env.yaml', ['listeners:', '  - name: public', '    port: ${MG_E2E_PORT}']);
    const set = await meshgate(['validate', file], { MG_E2E_PORT: '8080' });
    assert.equal(set.code, 0, set.stderr);
    const unset = await meshgate(['validate', file]);
    assert.equal(unset.code, 1);
    assert.match(
      unset.stderr,
      new RegExp(`^${escapeRegExp(file)}:3:11: listeners\\[0\\]\\.port: environment variable MG_E2E_PORT is not set`),
    );
  });

  test('a missing file: exit 1 and says so', async () => {
    const file = join(dir, 'nope.yaml');
    const run = await meshgate(['validate', file]);
    assert.equal(run.code, 1);
    assert.equal(run.stderr, `${file}: file not found\n1 problem in ${file}\n`);
  });

  test('bad usage exits 2 with the usage', async () => {
    const file = await write('ok.yaml', ['listeners: []']);
    for (const args of [
      ['validate'],
      ['validate', file, file],
      ['validate', '--output', 'xml', file],
      ['validate', '--bogus', file],
    ]) {
      const run = await meshgate(args);
      assert.equal(run.code, 2, args.join(' '));
      assert.equal(run.stdout, '', args.join(' '));
      assert.match(run.stderr, /Usage: meshgate validate FILE/, args.join(' '));
    }
  });

  test('validate --help exits 0', async () => {
    const run = await meshgate(['validate', '--help']);
    assert.equal(run.code, 0);
    assert.match(run.stdout, /^Usage: meshgate validate FILE/);
  });
});

describe('meshgate', { concurrency: true }, () => {
  test('--help exits 0 and lists the commands', async () => {
    for (const flag of ['--help', '-h', 'help']) {
      const run = await meshgate([flag]);
      assert.equal(run.code, 0, flag);
      assert.match(run.stdout, /Usage: meshgate <command>/, flag);
      assert.match(run.stdout, /^ {2}gateway +run the gateway/m, flag);
      assert.match(run.stdout, /^ {2}validate +check a config file/m, flag);
    }
  });

  test('--version prints the version of package.json', async () => {
    for (const flag of ['--version', '-v']) {
      const run = await meshgate([flag]);
      assert.equal(run.code, 0, flag);
      assert.equal(run.stdout, `${VERSION}\n`, flag);
    }
  });

  test('an unknown command exits 2 and names it', async () => {
    const run = await meshgate(['valdate', 'examples/gateway.yaml']);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /^meshgate: unknown command "valdate"/);
  });

  test('no command at all exits 2 with the help', async () => {
    const run = await meshgate([]);
    assert.equal(run.code, 2);
    assert.match(run.stdout + run.stderr, /Usage: meshgate <command>/);
  });
});

describe('meshgate gateway (what fails before anything starts)', { concurrency: true }, () => {
  test('without --config or --control-plane: exit 2', async () => {
    const run = await meshgate(['gateway']);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--config or --control-plane is required/);
  });

  test('a --drain that is not a duration: exit 2', async () => {
    const run = await meshgate(['gateway', '--config', 'examples/gateway.yaml', '--drain', '5']);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--drain "5" is not a duration/);
  });

  test('an invalid config: exit 1, every problem printed, nothing started', async () => {
    const file = await write('gateway-three.yaml', THREE_MISTAKES);
    const run = await meshgate(['gateway', '--config', file]);
    assert.equal(run.code, 1);
    const lines = run.stderr.trimEnd().split('\n');
    assert.deepEqual(
      lines.slice(0, 3).map((l) => l.split(': ')[0]),
      [`${file}:4:5`, `${file}:9:26`, `${file}:12:14`],
    );
    assert.equal(lines[3], `meshgate gateway: ${file} is not valid; nothing started`);
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
