import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { eventually } from '../../../../test/helpers/mesh.ts';
import { silentLogger } from '../../../observability/logger.ts';
import { formatIssue } from '../../issues.ts';
import { ConfigPipeline, checkConfig } from '../../pipeline.ts';
import { DirectorySource } from './directory.ts';

const root = mkdtempSync(join(tmpdir(), 'meshgate-directory-source-'));
after(() => rmSync(root, { recursive: true, force: true }));

const service = (name: string) => `services:\n  - { name: ${name}, endpoints: [{ url: http://127.0.0.1:1 }] }\n`;

describe('directory source', () => {
  it('merges its config files in name order, skipping other and hidden files', async () => {
    const dir = join(root, 'merge');
    mkdirSync(dir);
    writeFileSync(join(dir, 'b.yaml'), service('bravo'));
    writeFileSync(join(dir, 'a.yml'), service('alpha'));
    writeFileSync(
      join(dir, 'c.json'),
      JSON.stringify({ services: [{ name: 'charlie', endpoints: [{ url: 'http://127.0.0.1:2' }] }] }),
    );
    writeFileSync(join(dir, '.hidden.yaml'), service('hidden'));
    writeFileSync(join(dir, 'notes.txt'), 'not config');
    const checked = await checkConfig(await new DirectorySource(dir, {}).read(), 'test');
    assert.ok(checked.ok);
    assert.deepEqual(
      checked.value.loaded.config.services?.map((s) => s.name),
      ['alpha', 'bravo', 'charlie'],
    );
    assert.deepEqual(
      checked.value.texts.map((t) => t.file),
      ['a.yml', 'b.yaml', 'c.json'].map((n) => join(dir, n)),
    );
  });

  it('points an issue into the file it came from; a missing path is "file or directory not found"', async () => {
    const dir = join(root, 'issues');
    mkdirSync(dir);
    writeFileSync(join(dir, 'a.yaml'), service('alpha'));
    writeFileSync(join(dir, 'b.yaml'), `${service('bravo')}routes:\n  - { name: r, service: nowhere }\n`);
    const checked = await checkConfig(await new DirectorySource(dir, {}).read(), 'test');
    assert.ok(!checked.ok);
    assert.deepEqual(checked.issues.map(formatIssue), [
      `${join(dir, 'b.yaml')}:4:25: routes[0].service: unknown service "nowhere"`,
    ]);
    const missing = join(root, 'nope');
    const gone = await checkConfig(await new DirectorySource(missing, {}).read(), 'test');
    assert.ok(!gone.ok);
    assert.equal(gone.issues[0]!.message, 'file or directory not found');
  });

  it('a file added to the directory is a change', async () => {
    const dir = join(root, 'watched');
    mkdirSync(dir);
    writeFileSync(join(dir, 'a.yaml'), service('alpha'));
    const source = new DirectorySource(dir, {}, 30);
    const seen: string[][] = [];
    const pipeline = new ConfigPipeline({
      target: {
        prepare: async (c) => c,
        commit: async (c) => {
          seen.push((c.loaded.config.services ?? []).map((s) => s.name));
          return {};
        },
        discard: async () => {},
      },
      log: silentLogger(),
      messages: { applied: 'applied', rejected: 'rejected', failed: 'failed' },
    });
    await pipeline.follow(source);
    try {
      writeFileSync(join(dir, 'b.yaml'), service('bravo'));
      await eventually(() => seen.at(-1)?.join() === 'alpha,bravo', 5_000, 'both files applied');
    } finally {
      source.close();
    }
  });
});
