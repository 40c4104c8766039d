// Tests a user plugin with the helpers meshgate's own plugins use (`meshgate/testing`).
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startGateway, startUpstream } from 'meshgate/testing';

it('add-header adds its header to responses', async () => {
  const upstream = await startUpstream();
  const gw = await startGateway({
    services: [{ name: 'svc', endpoints: [{ url: upstream.url }] }],
    routes: [
      {
        name: 'all',
        service: 'svc',
        plugins: [
          {
            path: fileURLToPath(new URL('./add-header.js', import.meta.url)),
            config: { name: 'X-Served-By', value: 'meshgate' },
          },
        ],
      },
    ],
  });
  try {
    const res = await fetch(`${gw.url()}/anything`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-served-by'), 'meshgate');
  } finally {
    await gw.close();
    await upstream.close();
  }
});
