import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { rawRequest } from '../../testing/raw.ts';
import { startGateway, startUpstream, type TestGateway, type Upstream } from '../../testing/servers.ts';

describe('request-size-limit plugin', () => {
  let upstream: Upstream;
  let gw: TestGateway;
  let received: number[];
  before(async () => {
    received = [];
    upstream = await startUpstream((req, res) => {
      let n = 0;
      req.on('data', (c: Buffer) => (n += c.length));
      req.on('end', () => {
        received.push(n);
        res.end(String(n));
      });
      req.on('error', () => {});
    });
    gw = await startGateway({
      services: [{ name: 'svc', endpoints: [{ url: upstream.url }] }],
      routes: [{ name: 'up', service: 'svc', plugins: [{ name: 'request-size-limit', config: { maxBytes: 1024 } }] }],
    });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  it('accepts a body within the limit', async () => {
    const res = await request(`${gw.url()}/x`, { method: 'POST', body: 'a'.repeat(1024) });
    assert.equal(await res.body.text(), '1024');
  });

  it('refuses a larger Content-Length at once with 413, forwarding nothing', async () => {
    const before = upstream.seen.length;
    const res = await rawRequest(
      Number(new URL(gw.url()).port),
      `POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n${'a'.repeat(5000)}`,
    );
    assert.equal(res.status, 413);
    assert.equal(JSON.parse(res.body).code, 'MG_BODY_TOO_LARGE');
    assert.equal(upstream.seen.length, before);
  });

  it('refuses a chunked body that grows past the limit while streaming', async () => {
    async function* chunks() {
      for (let i = 0; i < 16; i++) yield Buffer.alloc(256, 98);
    }
    const res = await request(`${gw.url()}/x`, { method: 'POST', body: Readable.from(chunks()) });
    const text = await res.body.text();
    assert.equal(res.statusCode, 413, text);
    assert.ok(!received.includes(4096), 'the upstream never got the whole body');
  });
});
