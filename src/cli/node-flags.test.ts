import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { missingNodeFlags, PROXY_PROCESS_SETTINGS } from './node-flags.ts';

const run = promisify(execFile);

describe('proxy node flags', () => {
  it('adds only the flags not given on the command line or in NODE_OPTIONS', () => {
    const wanted = ['--max-semi-space-size=1', '--expose-gc'];
    assert.deepEqual(missingNodeFlags(wanted, [], undefined), wanted);
    assert.deepEqual(missingNodeFlags(wanted, ['--max-semi-space-size=16'], undefined), ['--expose-gc']);
    assert.deepEqual(missingNodeFlags(wanted, [], '--expose_gc  --max_semi_space_size=8'), []);
    assert.deepEqual(missingNodeFlags(wanted, ['--inspect'], ''), wanted);
  });

  it('re-executes the process with them: same pid, flags in force', async () => {
    const script = `
      import { execWithSettings, PROXY_PROCESS_SETTINGS } from ${JSON.stringify(new URL('./node-flags.ts', import.meta.url).href)};
      const pid = process.env.FIRST_PID ?? String(process.pid);
      if (!process.env.FIRST_PID) process.env.FIRST_PID = pid;
      execWithSettings(PROXY_PROCESS_SETTINGS.sidecar);
      console.log(JSON.stringify({ first: pid, now: process.pid, execArgv: process.execArgv, gc: typeof gc, env: process.env }));
    `;
    const env = { ...process.env };
    for (const name of Object.keys(PROXY_PROCESS_SETTINGS.sidecar.env)) delete env[name];
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { env });
    const seen = JSON.parse(stdout) as {
      first: string;
      now: number;
      execArgv: string[];
      gc: string;
      env: Record<string, string>;
    };
    assert.equal(Number(seen.first), seen.now);
    for (const flag of PROXY_PROCESS_SETTINGS.sidecar.flags)
      assert.ok(seen.execArgv.includes(flag), `${flag} in ${seen.execArgv}`);
    assert.equal(seen.gc, 'function');
    for (const [name, value] of Object.entries(PROXY_PROCESS_SETTINGS.sidecar.env)) assert.equal(seen.env[name], value);
  });
});
