import assert from 'node:assert/strict';
import { PassThrough, type Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import { ReplayableBody } from './replay-body.ts';

async function readAll(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

describe('replayable request body', () => {
  it('streams the body to the first reader as it arrives', async () => {
    const source = new PassThrough();
    const body = new ReplayableBody(source, 1024);
    const first = body.open()!;
    const received: string[] = [];
    first.on('data', (c: Buffer) => received.push(c.toString()));
    source.write('abc');
    await tick();
    assert.deepEqual(received, ['abc'], 'the first chunk arrives before the body has ended');
    source.end('def');
    await new Promise((r) => first.on('end', r));
    assert.deepEqual(received.join(''), 'abcdef');
  });

  it('replays the kept part and then follows the live body, and a failed reader leaves the source alone', async () => {
    const source = new PassThrough();
    const body = new ReplayableBody(source, 1024);
    const first = body.open()!;
    first.resume();
    source.write('hello ');
    await tick();
    first.on('error', () => {});
    first.destroy(new Error('try failed')); // as undici does with the body of a failed request
    assert.equal(source.destroyed, false);
    const second = body.open()!;
    const all = readAll(second);
    source.end('world');
    assert.equal(await all, 'hello world');
    assert.equal(await readAll(body.open()!), 'hello world', 'a third try replays the whole body');
  });

  it('is no longer replayable once the body outgrows the limit, but the live reader still gets everything', async () => {
    const source = new PassThrough();
    const body = new ReplayableBody(source, 8);
    const first = body.open()!;
    const all = readAll(first);
    source.write('12345');
    await tick();
    assert.equal(body.replayable, true);
    source.end('67890');
    assert.equal(await all, '1234567890');
    assert.equal(body.replayable, false);
    assert.equal(body.open(), null);
  });

  it('hands the whole body to whenComplete, or null when it is too large', async () => {
    const small = new PassThrough();
    const a = new ReplayableBody(small, 100);
    a.open()!.resume();
    const got = new Promise<Buffer | null>((r) => a.whenComplete(r));
    small.end('payload');
    assert.equal((await got)?.toString(), 'payload');

    const large = new PassThrough();
    const b = new ReplayableBody(large, 4);
    b.open()!.resume();
    const none = new Promise<Buffer | null>((r) => b.whenComplete(r));
    large.write('too large');
    assert.equal(await none, null);
    large.end();
  });

  it('drain() reads and drops the rest of a body nobody will read, and gives up a pending mirror', async () => {
    const source = new PassThrough();
    const body = new ReplayableBody(source, 1024);
    body.open()!.on('error', () => {});
    const mirror = new Promise<Buffer | null>((r) => body.whenComplete(r));
    body.drain();
    assert.equal(await mirror, null);
    for (let i = 0; i < 10; i++) source.write(Buffer.alloc(64 * 1024));
    source.end();
    await new Promise((r) => source.on('end', r));
    assert.equal(body.bytes, 10 * 64 * 1024, 'everything was read');
  });

  it('applies backpressure: a reader that does not read pauses the source', async () => {
    const source = new PassThrough({ highWaterMark: 16 });
    const body = new ReplayableBody(source, 1 << 20);
    const reader = body.open()!;
    reader.pause();
    for (let i = 0; i < 20; i++) source.write(Buffer.alloc(4096));
    await tick();
    assert.equal(source.isPaused(), true);
    const all = readAll(reader);
    source.end();
    assert.equal((await all).length, 20 * 4096);
  });
});
