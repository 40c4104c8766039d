import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { eventually } from '../../../../test/helpers/mesh.ts';
import { silentLogger } from '../../../observability/logger.ts';
import { ConfigPipeline, checkConfig, type ValidatedConfig } from '../../pipeline.ts';
import { FileSource } from './file.ts';

const dir = mkdtempSync(join(tmpdir(), 'meshgate-file-source-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const route = (body: string) =>
  `routes:\n  - { name: r, match: { path: /x }, directResponse: { status: 200, body: "${body}" } }\n`;

/** A pipeline whose target keeps the bodies committed, in order. */
function recording() {
  const committed: string[] = [];
  const pipeline = new ConfigPipeline({
    target: {
      prepare: async (c: ValidatedConfig) => c,
      commit: async (c: ValidatedConfig) => {
        committed.push(String(c.loaded.config.routes?.[0]?.directResponse?.body));
        return {};
      },
      discard: async () => {},
    },
    log: silentLogger(),
    messages: { applied: 'applied', rejected: 'rejected', failed: 'failed' },
  });
  return { pipeline, committed };
}

describe('file source', () => {
  it('reads the file with ${NAME} from its environment', async () => {
    const file = join(dir, 'env.yaml');
    writeFileSync(file, route('${GREETING}'));
    const checked = await checkConfig(await new FileSource(file, { GREETING: 'hi' }).read(), 'test');
    assert.ok(checked.ok);
    assert.equal(checked.value.loaded.config.routes?.[0]?.directResponse?.body, 'hi');
    assert.equal(checked.value.loaded.source, file);
  });

  it('a missing file is a change rejected with "file not found"', async () => {
    const file = join(dir, 'missing.yaml');
    const checked = await checkConfig(await new FileSource(file, {}).read(), 'test');
    assert.deepEqual(checked, {
      ok: false,
      issues: [{ file, line: 0, column: 0, path: '', message: 'file not found' }],
    });
  });

  it('a burst of saves is read once its turn comes: the pipeline ends on the last save', async () => {
    const file = join(dir, 'watched.yaml');
    writeFileSync(file, route('v0'));
    const source = new FileSource(file, {}, 30);
    const { pipeline, committed } = recording();
    await pipeline.follow(source);
    try {
      for (let i = 1; i <= 5; i++) writeFileSync(file, route(`v${i}`));
      await eventually(() => committed.at(-1) === 'v5', 5_000, 'the last save applied');
      assert.ok(committed.length <= 2, `a burst is one or two changes, not ${committed.length}`);
      // A save elsewhere in the directory is not a change of this file.
      writeFileSync(join(dir, 'other.yaml'), route('other'));
      writeFileSync(file, route('v6'));
      await eventually(() => committed.at(-1) === 'v6', 5_000, 'the next save applied');
      assert.ok(!committed.includes('other'));
    } finally {
      source.close();
    }
  });
});
