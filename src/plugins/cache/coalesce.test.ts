/**
 * Request coalescing over real sockets: concurrent misses for one key make one upstream call (counted
 * on the upstream), the first response streams to its client while the others wait, and a leader
 * that fails, turns out uncacheable or takes too long releases its followers upstream.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { startGateway, startUpstream, type TestGateway, type Upstream } from '../../testing/servers.ts';

/** A promise with its resolver, to hold an upstream response until the test lets it go. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { open, opened };
}

async function until(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(10);
  }
}

describe('cache plugin: coalescing', () => {
  let now = Date.now();
  let upstream: Upstream;
  let gw: TestGateway;
  const agent = new Agent({ connections: 200 });
  const calls = new Map<string, number>();
  const behaviours = new Map<string, (req: IncomingMessage, res: ServerResponse, call: number) => void>();
  const callsOf = (path: string) => calls.get(path) ?? 0;

  before(async () => {
    upstream = await startUpstream((req, res) => {
      const path = req.url!.split('?')[0]!;
      const call = callsOf(path) + 1;
      calls.set(path, call);
      behaviours.get(path)!(req, res, call);
    });
    gw = await startGateway(
      {
        services: [{ name: 'up', endpoints: [{ url: upstream.url }] }],
        routes: [
          {
            name: 'quick',
            match: { path: '/quick/*' },
            service: 'up',
            plugins: [{ name: 'cache', config: { ttl: '60s', coalesceTimeout: '300ms' } }],
          },
          {
            name: 'cached',
            service: 'up',
            plugins: [{ name: 'cache', config: { ttl: '60s', coalesceTimeout: '30s' } }],
          },
        ],
      },
      { now: () => now },
    );
  });
  after(async () => {
    await gw.close();
    await upstream.close();
    await agent.close();
  });

  /** Requests the gateway has started and not finished (admin /workers). */
  async function atGateway(): Promise<number> {
    const res = await request(`${gw.adminUrl}/workers`);
    return ((await res.body.json()) as { workers: { requestsInFlight: number }[] }).workers[0]!.requestsInFlight;
  }

  async function get(path: string, headers: Record<string, string> = {}) {
    const res = await request(`${gw.url()}${path}`, { dispatcher: agent, headers });
    return {
      status: res.statusCode,
      text: await res.body.text(),
      cache: res.headers['x-cache-status'],
      headers: res.headers,
    };
  }

  it('makes one upstream call for 100 concurrent misses of one key, and answers all from it', async () => {
    // Held until all 100 are at the gateway at once: every one of them is a miss, none a later hit.
    const held = gate();
    behaviours.set('/hot', (_req, res, call) => {
      void held.opened.then(() => {
        res.writeHead(200, { 'content-type': 'application/json', etag: '"hot"' });
        res.end(JSON.stringify({ call }));
      });
    });
    const pending = Promise.all(Array.from({ length: 100 }, () => get('/hot?page=1')));
    await until('the 100 requests are in flight at the gateway', async () => (await atGateway()) === 100, 30_000);
    assert.equal(callsOf('/hot'), 1, 'one upstream call while 100 wait');
    held.open();
    const all = await pending;
    assert.equal(callsOf('/hot'), 1, 'one upstream call');
    for (const res of all) {
      assert.equal(res.status, 200);
      assert.deepEqual(JSON.parse(res.text), { call: 1 });
    }
    assert.equal(all.filter((r) => r.cache === 'MISS').length, 1);
    assert.equal(all.filter((r) => r.cache === 'HIT').length, 99);
    const conditional = await get('/hot?page=1', { 'if-none-match': '"hot"' });
    assert.equal(conditional.status, 304);
    assert.equal(callsOf('/hot'), 1);
  });

  it('streams the first response to its client while the followers wait for the whole entry', async () => {
    const held = gate();
    behaviours.set('/stream', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first part;');
      void held.opened.then(() => res.end('last part'));
    });
    const leader = await request(`${gw.url()}/stream`, { dispatcher: agent });
    const reader = leader.body[Symbol.asyncIterator]();
    const first = await reader.next();
    assert.equal(
      Buffer.from(first.value as Buffer).toString(),
      'first part;',
      'the leader’s client reads before the end',
    );
    const followers = Array.from({ length: 5 }, () => get('/stream'));
    await until('the followers are waiting at the gateway', async () => (await atGateway()) === 6);
    assert.equal(callsOf('/stream'), 1, 'followers wait for the complete entry');
    held.open();
    let rest = '';
    for (let next = await reader.next(); !next.done; next = await reader.next())
      rest += Buffer.from(next.value).toString();
    assert.equal(rest, 'last part');
    for (const follower of await Promise.all(followers)) {
      assert.equal(follower.text, 'first part;last part');
      assert.equal(follower.cache, 'HIT');
    }
    assert.equal(callsOf('/stream'), 1);
  });

  it('sends the followers upstream themselves when the leader fails', async () => {
    const held = gate();
    behaviours.set('/fails', (_req, res, call) => {
      if (call === 1) {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100' });
        res.write('partial');
        void held.opened.then(() => res.destroy());
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`whole #${call}`);
    });
    const started = Date.now();
    const leader = get('/fails').then(
      () => 'completed',
      () => 'failed',
    );
    await until('the leader reached the upstream', () => callsOf('/fails') === 1);
    const followers = Array.from({ length: 5 }, () => get('/fails'));
    await until('the followers are waiting at the gateway', async () => (await atGateway()) === 6);
    assert.equal(callsOf('/fails'), 1, 'followers wait while the leader streams');
    held.open();
    const answers = await Promise.all(followers);
    assert.equal(await leader, 'failed');
    for (const answer of answers) {
      assert.equal(answer.status, 200);
      assert.match(answer.text, /^whole #\d$/);
    }
    assert.equal(callsOf('/fails'), 6, 'each follower went upstream itself');
    assert.ok(Date.now() - started < 10_000, 'released by the failure, not by the 30s coalesceTimeout');
  });

  it('sends the followers upstream when the response is uncacheable, then stops coalescing the key', async () => {
    let held = gate();
    behaviours.set('/private', (_req, res, call) => {
      void held.opened.then(() => {
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'private' });
        res.end(`private #${call}`);
      });
    });
    const first = get('/private');
    await until('the leader reached the upstream', () => callsOf('/private') === 1);
    const followers = Array.from({ length: 4 }, () => get('/private'));
    await until('the followers are waiting at the gateway', async () => (await atGateway()) === 5);
    assert.equal(callsOf('/private'), 1);
    held.open();
    await Promise.all([first, ...followers]);
    assert.equal(callsOf('/private'), 5);

    // Hit-for-miss: the next wave goes upstream side by side, none waits on another.
    held = gate();
    const wave = Array.from({ length: 5 }, () => get('/private'));
    await until('the whole wave reached the upstream at once', () => callsOf('/private') === 10);
    held.open();
    for (const res of await Promise.all(wave)) assert.equal(res.cache, 'MISS');
  });

  it('lets followers go upstream once coalesceTimeout has passed', async () => {
    const held = gate();
    behaviours.set('/quick/slow', (_req, res, call) => {
      void held.opened.then(() => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`slow #${call}`);
      });
    });
    const leader = get('/quick/slow');
    await until('the leader reached the upstream', () => callsOf('/quick/slow') === 1);
    const followers = Array.from({ length: 3 }, () => get('/quick/slow'));
    // 300ms after the leader started, each follower makes its own call (while the leader's is still held).
    await until('the followers went upstream', () => callsOf('/quick/slow') === 4);
    held.open();
    for (const res of await Promise.all([leader, ...followers])) assert.equal(res.status, 200);
  });

  it('serves the stale entry while one request refreshes it (stale-while-revalidate), not past must-revalidate', async () => {
    for (const path of ['/swr', '/swr-must']) {
      const held = gate();
      const cacheControl = `max-age=10, stale-while-revalidate=30${path === '/swr-must' ? ', must-revalidate' : ''}`;
      behaviours.set(path, (_req, res, call) => {
        const answer = () => {
          res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': cacheControl });
          res.end(`v${call}`);
        };
        if (call === 1) answer();
        else void held.opened.then(answer);
      });
      assert.equal((await get(path)).text, 'v1');
      now += 15_000;
      const refreshing = get(path);
      await until('the refresh reached the upstream', () => callsOf(path) === 2);
      if (path === '/swr') {
        const stale = await get(path);
        assert.equal(stale.cache, 'STALE');
        assert.equal(stale.text, 'v1');
        assert.equal(stale.headers.age, '15');
        held.open();
      } else {
        const follower = get(path);
        await until('the follower is waiting at the gateway', async () => (await atGateway()) === 2);
        held.open();
        const followed = await follower;
        assert.equal(followed.cache, 'HIT', 'must-revalidate: waited for the fresh response');
        assert.equal(followed.text, 'v2');
      }
      const refreshed = await refreshing;
      assert.equal(refreshed.cache, 'MISS');
      assert.equal(refreshed.text, 'v2');
      assert.equal((await get(path)).text, 'v2');
      assert.equal(callsOf(path), 2);
    }
  });
});
