import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../../../observability/logger.ts';
import { ConfigPipeline, checkConfig, type ValidatedConfig } from '../../pipeline.ts';
import { ADMIN_API_SOURCE, adminApiChange } from './admin-api.ts';

describe('admin API source', () => {
  it('takes the body as final text: ${NAME} stays as written; issues name admin-api and the line', async () => {
    process.env.MG_ADMIN_API_TEST = 'from-env';
    const raw = await adminApiChange(
      'routes:\n  - { name: r, directResponse: { status: 200, body: "${MG_ADMIN_API_TEST}" } }\n',
    ).read();
    const checked = await checkConfig(raw, 'test');
    assert.ok(checked.ok);
    assert.equal(checked.value.loaded.config.routes?.[0]?.directResponse?.body, '${MG_ADMIN_API_TEST}');
    assert.equal(checked.value.loaded.source, ADMIN_API_SOURCE);
    const bad = await checkConfig(await adminApiChange('routes:\n  - { name: r, service: nowhere }\n').read(), 'test');
    assert.ok(!bad.ok);
    assert.deepEqual(
      bad.issues.map((i) => [i.file, i.line, i.path]),
      [[ADMIN_API_SOURCE, 2, 'routes[0].service']],
    );
  });

  it('each PUT gets its own answer: none is superseded, and they apply in the order sent', async () => {
    const order: string[] = [];
    const pipeline = new ConfigPipeline({
      target: {
        prepare: async (c: ValidatedConfig) => c,
        commit: async (c: ValidatedConfig) => {
          order.push(String(c.loaded.config.routes?.[0]?.name));
          return {};
        },
        discard: async () => {},
      },
      log: silentLogger(),
      messages: { applied: 'applied', rejected: 'rejected', failed: 'failed' },
    });
    const body = (name: string) => `routes: [{ name: ${name}, directResponse: { status: 204 } }]`;
    const outcomes = await Promise.all(['one', 'two', 'three'].map((n) => pipeline.submit(adminApiChange(body(n)))));
    assert.deepEqual(
      outcomes.map((o) => o.status),
      ['applied', 'applied', 'applied'],
    );
    assert.deepEqual(order, ['one', 'two', 'three']);
  });
});
