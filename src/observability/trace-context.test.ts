import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatTraceparent, parseB3, parseTraceparent, randomHex } from './trace-context.ts';

describe('trace context', () => {
  it('parses a valid traceparent and refuses invalid ones', () => {
    assert.deepEqual(parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'), {
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      parentSpanId: '00f067aa0ba902b7',
      sampled: true,
    });
    assert.equal(parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00')?.sampled, false);
    for (const bad of [
      '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
      'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      '00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra',
      'garbage',
    ])
      assert.equal(parseTraceparent(bad), null, bad);
    assert.ok(
      parseTraceparent('01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future'),
      'later versions may extend',
    );
  });

  it('accepts B3 single and multi headers, padding 64-bit trace ids', () => {
    const single = parseB3((n) => (n === 'b3' ? '80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1' : undefined));
    assert.deepEqual(single, {
      traceId: '80f198ee56343ba864fe8b2a57d3eff7',
      parentSpanId: 'e457b5a2e4d86bd1',
      sampled: true,
    });
    const headers: Record<string, string> = {
      'x-b3-traceid': 'a3ce929d0e0e4736',
      'x-b3-spanid': '00f067aa0ba902b7',
      'x-b3-sampled': '0',
    };
    assert.deepEqual(
      parseB3((n) => headers[n]),
      {
        traceId: '0000000000000000a3ce929d0e0e4736',
        parentSpanId: '00f067aa0ba902b7',
        sampled: false,
      },
    );
    assert.equal(
      parseB3(() => undefined),
      null,
    );
  });

  it('formats traceparent and makes random ids of the right length', () => {
    const t = randomHex(16);
    const s = randomHex(8);
    assert.match(t, /^[0-9a-f]{32}$/);
    assert.match(s, /^[0-9a-f]{16}$/);
    assert.notEqual(randomHex(8), s);
    assert.equal(formatTraceparent(t, s, true), `00-${t}-${s}-01`);
  });
});
