import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RequestContext } from './plugin.ts';
import { compileTemplate, TemplateError, walk } from './template.ts';

/** The accessors a template reads, over fixed values (the proxy's StreamContext provides the same). */
function request(values: {
  params?: Record<string, string>;
  query?: string;
  headers?: Record<string, string>;
  consumer?: RequestContext['consumer'];
  claims?: Record<string, unknown>;
}): RequestContext {
  return {
    query: values.query ?? '',
    pathParam: (name: string) => values.params?.[name],
    header: (name: string) => values.headers?.[name],
    consumer: values.consumer ?? null,
    claims: values.claims ?? null,
  } as unknown as RequestContext;
}

describe('compileTemplate', () => {
  it('renders every request root', () => {
    const t = compileTemplate('/u/$(params.id)?p=$(query.page)&h=$(headers.X-User)&c=$(consumer.name)&s=$(claims.sub)');
    const ctx = request({
      params: { id: '42' },
      query: 'page=3&x=1',
      headers: { 'x-user': 'ann' },
      consumer: { name: 'mobile', id: 'm-1', groups: ['a'] },
      claims: { sub: 'user-7' },
    });
    assert.equal(t.render(ctx), '/u/42?p=3&h=ann&c=mobile&s=user-7');
    assert.equal(t.constant, null);
    assert.deepEqual(
      t.references.map((r) => r.text),
      ['params.id', 'query.page', 'headers.X-User', 'consumer.name', 'claims.sub'],
    );
  });

  it('is undefined when a referenced value is absent, and encodes values when asked', () => {
    const t = compileTemplate('/items/$(params.id)');
    assert.equal(t.render(request({})), undefined);
    assert.equal(t.render(request({ params: { id: 'a b/c' } }), undefined, encodeURIComponent), '/items/a%20b%2Fc');
  });

  it('keeps a single reference’s JSON type, walks dot paths and array indexes', () => {
    const ctx = request({ claims: { n: 5, roles: ['admin', 'ops'], org: { id: 9 } } });
    assert.equal(compileTemplate('$(claims.n)').value(ctx), 5);
    assert.equal(compileTemplate('$(claims.roles.1)').value(ctx), 'ops');
    assert.equal(compileTemplate('org-$(claims.org.id)').value(ctx), 'org-9');
    assert.deepEqual(compileTemplate('$(claims.org)').value(ctx), { id: 9 });
    assert.equal(walk({ a: [{ b: 1 }] }, ['a', '0', 'b']), 1);
    assert.equal(walk({ a: 1 }, ['constructor']), undefined);
  });

  it('resolves roots the caller adds, and keeps constants and $$', () => {
    const t = compileTemplate('/owners/$(results.property.ownerId)', ['results']);
    const extra = (root: string, path: readonly string[]) =>
      root === 'results' ? walk({ property: { ownerId: 'o-1' } }, path) : undefined;
    assert.equal(t.render(request({}), extra), '/owners/o-1');
    assert.equal(compileTemplate('price $$5').constant, 'price $5');
  });

  it('refuses what it cannot render, with the offset', () => {
    assert.throws(
      () => compileTemplate('a $(params.id'),
      (e: unknown) => e instanceof TemplateError && e.offset === 2,
    );
    assert.throws(() => compileTemplate('$(body.x)'), /unknown template root "body".*known roots: params/);
    assert.throws(() => compileTemplate('$(params)'), /needs a name after "params\."/);
  });
});
