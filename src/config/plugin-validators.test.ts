import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import validators from '../../schema/plugins.validate.js';
import { builtinPlugins } from '../plugins/index.ts';
import { type Locator, SourceDocument } from './document.ts';
import { checkAgainst, loadPluginValidators } from './schema-check.ts';

describe('the built-in plugins’ validators compiled ahead of time', () => {
  it('cover every built-in plugin’s schema as it is (npm run schema writes them)', () => {
    for (const plugin of builtinPlugins)
      assert.equal(typeof validators.get(JSON.stringify(plugin.configSchema)), 'function', plugin.name);
  });

  it('report a bad setting as located issues, and coerce as the config’s validator does', async () => {
    await loadPluginValidators();
    const rateLimit = builtinPlugins.find((p) => p.name === 'rate-limit')!;
    const text = 'plugins:\n  - name: rate-limit\n    config: { hour: "100", burst: 5 }\n';
    const source: Locator = new SourceDocument('a.yaml', text);
    const config = { hour: '100', burst: 5 };
    const issues = checkAgainst(rateLimit.configSchema, config, source, ['plugins', 0, 'config']);
    assert.deepEqual(
      issues.map((i) => [i.path, i.message]),
      [['plugins[0].config.burst', 'unknown field "burst"']],
    );
    assert.equal(issues[0]!.line, 3);
    assert.equal(config.hour, 100, '"100" became 100');
  });
});
