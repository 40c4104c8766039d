/**
 * The lazy catalog a proxy uses: the same built-ins as the eager list, imported only when a config
 * names them, through the same config pipeline (so a pushed config naming a plugin validates and
 * compiles as a file does).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkConfig } from '../config/pipeline.ts';
import { builtinPlugins } from './index.ts';
import { BUILTIN_PLUGIN_MODULES, createLazyPluginCatalog } from './lazy.ts';

describe('the lazy catalog of built-in plugins', () => {
  it('lists the same plugins as index.ts, in the same order, each module exporting the same definition', async () => {
    assert.deepEqual(
      [...BUILTIN_PLUGIN_MODULES.keys()],
      builtinPlugins.map((p) => p.name),
    );
    for (const [name, load] of BUILTIN_PLUGIN_MODULES)
      assert.equal(
        (await load()).default,
        builtinPlugins.find((p) => p.name === name),
      );
  });

  it('knows every name before it loads any; get finds a plugin only once a config named it', async () => {
    const catalog = createLazyPluginCatalog();
    assert.deepEqual(
      catalog.names(),
      builtinPlugins.map((p) => p.name),
    );
    assert.equal(catalog.get('request-id'), undefined);
    const config = {
      listeners: [{ name: 'in', port: 0 }],
      services: [{ name: 's', endpoints: [{ url: 'http://127.0.0.1:1' }], plugins: [{ name: 'request-id' }] }],
      routes: [{ name: 'r', service: 's', plugins: [{ name: 'cors', config: { origins: ['https://a.example'] } }] }],
    };
    const checked = await checkConfig({ kind: 'object', data: config, source: 'push' }, 'push', { load: { catalog } });
    assert.ok(checked.ok, JSON.stringify(checked));
    assert.equal(
      catalog.get('request-id'),
      builtinPlugins.find((p) => p.name === 'request-id'),
    );
    assert.ok(catalog.get('cors'));
    assert.equal(catalog.get('jwt'), undefined, 'named by no config: not loaded');
  });

  it('a wrong name or a bad plugin config is reported as with the eager catalog', async () => {
    const catalog = createLazyPluginCatalog();
    const config = {
      listeners: [{ name: 'in', port: 0 }],
      services: [{ name: 's', endpoints: [{ url: 'http://127.0.0.1:1' }] }],
      routes: [
        {
          name: 'r',
          service: 's',
          plugins: [{ name: 'reqest-id' }, { name: 'rate-limit', config: { requests: 'many' } }],
        },
      ],
    };
    const checked = await checkConfig({ kind: 'object', data: config, source: 'push' }, 'push', { load: { catalog } });
    assert.equal(checked.ok, false);
    const messages = checked.ok ? [] : checked.issues.map((i) => `${i.path}: ${i.message} ${i.hint ?? ''}`.trim());
    assert.ok(
      messages.some(
        (m) => m.startsWith('routes[0].plugins[0].name: unknown plugin "reqest-id"') && m.includes('request-id'),
      ),
      messages.join('\n'),
    );
    assert.ok(
      messages.some((m) => m.startsWith('routes[0].plugins[1].config')),
      messages.join('\n'),
    );
  });
});
