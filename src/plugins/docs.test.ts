/** docs/plugins.md keeps up with the code: every built-in plugin with its phase and order, every filter hook. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { builtinPlugins } from './index.ts';

const doc = readFileSync(new URL('../../docs/plugins.md', import.meta.url), 'utf8');

describe('docs/plugins.md', () => {
  it('lists every built-in plugin with its phase and order', () => {
    for (const p of builtinPlugins) {
      const row = doc.split('\n').find((l) => l.startsWith(`| [${p.name}](`));
      assert.ok(row, `no row for ${p.name}`);
      const [, , phase, order] = row.split('|').map((c) => c.trim());
      assert.equal(phase, p.phase, `${p.name}'s phase`);
      assert.equal(Number(order), p.order, `${p.name}'s order`);
    }
  });

  it('lists every hook of the Filter interface', () => {
    const source = readFileSync(new URL('../core/plugin.ts', import.meta.url), 'utf8');
    const body = /export interface Filter \{([\s\S]*?)\n\}/.exec(source)![1]!;
    const hooks = [...body.matchAll(/^\s+(on\w+)\?\(/gm)].map((m) => m[1]!);
    assert.ok(hooks.length >= 5, `hooks found: ${hooks.join(', ')}`);
    for (const hook of hooks)
      assert.match(doc, new RegExp(`^\\| \`${hook}\\(`, 'm'), `${hook} is not in the hooks table`);
  });
});
