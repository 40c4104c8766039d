/** The transformers' JSON path and query string operations, on their own. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addField, appendField, type JsonPath, parseJsonPath, removeField, renameField, replaceField } from './json.ts';
import { formEncode, QueryParams } from './query.ts';

const p = (text: string) => parseJsonPath(text) as JsonPath;

describe('JSON field operations', () => {
  it('arrays by index: replace and remove in range, add at the end only, a gap refused', () => {
    const body = { items: [{ a: 1 }, { a: 2 }] };
    assert.equal(replaceField(body, p('items.1.a'), 5), true);
    assert.equal(replaceField(body, p('items.2.a'), 5), false);
    assert.equal(addField(body, p('items.2'), { a: 3 }), true);
    assert.equal(addField(body, p('items.4'), { a: 9 }), false);
    assert.equal(removeField(body, p('items.0')), true);
    assert.deepEqual(body, { items: [{ a: 5 }, { a: 3 }] });
  });

  it('add creates missing objects; a scalar on the way stops it', () => {
    const body: Record<string, unknown> = { s: 'text' };
    assert.equal(addField(body, p('a.b.c'), 1), true);
    assert.equal(addField(body, p('s.x'), 1), false);
    assert.deepEqual(body, { s: 'text', a: { b: { c: 1 } } });
  });

  it('replace keeps to fields that are there, null included; rename moves; append makes a list', () => {
    const body: Record<string, unknown> = { n: null, x: 1, list: [1] };
    assert.equal(replaceField(body, p('n'), 'v'), true);
    assert.equal(renameField(body, p('x'), p('moved.x')), true);
    assert.equal(renameField(body, p('nope'), p('y')), false);
    assert.equal(appendField(body, p('list'), 2), true);
    assert.equal(appendField(body, p('n'), 'w'), true);
    assert.deepEqual(body, { n: ['v', 'w'], list: [1, 2], moved: { x: 1 } });
  });

  it('paths that reach a prototype or have empty segments are refused', () => {
    assert.match(parseJsonPath('a.__proto__.b') as string, /__proto__/);
    assert.match(parseJsonPath('constructor') as string, /constructor/);
    assert.match(parseJsonPath('a..b') as string, /empty segment/);
  });
});

describe('query operations', () => {
  it('formEncode writes what URLSearchParams writes', () => {
    for (const s of ["a b+c&d=e/f?g#h%i!j'k(l)m*n~o", 'é ü 😀', '-._*'])
      assert.equal(formEncode(s), new URLSearchParams([[s, '']]).toString().slice(0, -1));
  });

  it('keeps untouched bytes and drops empty pieces only when it rewrites', () => {
    const q = new QueryParams('a=%41&&b');
    assert.equal(q.toString(), 'a=%41&b');
    q.rename('b', 'c d', formEncode('c d'));
    assert.equal(q.changed, true);
    assert.equal(q.toString(), 'a=%41&c+d');
  });
});
