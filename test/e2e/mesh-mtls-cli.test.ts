/**
 * Mutual TLS in the mesh as a user runs it: a `meshgate control-plane` whose model says
 * `mesh: { mtls: { mode: STRICT } }`, and two real `meshgate sidecar` processes. Each sidecar gets its
 * workload certificate from the control plane and presents it: a call from front's app through its
 * sidecar reaches photo-service's app with X-Forwarded-Client-Cert naming front, and a plaintext
 * client on photo-service's inbound port gets no HTTP response.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { MeshProcesses } from '../helpers/mesh-processes.ts';

const MODEL = `mesh: { trustDomain: example.org, mtls: { mode: STRICT } }
services:
  - { name: front }
  - { name: photo-service }
`;

describe('mutual TLS between sidecars, from the control plane’s model', () => {
  let mesh: MeshProcesses;
  /** What photo-service's app saw of each request. */
  const seen: IncomingHttpHeaders[] = [];
  let frontOutbound = 0;
  let photoInbound = 0;

  const sidecar = async (service: string, onRequest: (headers: IncomingHttpHeaders) => void) => {
    const app = await mesh.app((req, res) => {
      onRequest(req.headers);
      res.end('ok');
    });
    return (await mesh.sidecar({ service, app, id: `${service}-1` })).listeners;
  };

  before(async () => {
    mesh = await MeshProcesses.start(MODEL);
    photoInbound = (await sidecar('photo-service', (h) => seen.push(h))).inbound!;
    frontOutbound = (await sidecar('front', () => {})).outbound!;
  });

  after(() => mesh.stop());

  it('a call through front’s sidecar reaches photo-service over mTLS, its app told who called', async () => {
    const deadline = Date.now() + 15_000;
    let status = 0;
    let last = '';
    // photo-service's endpoint reaches front's sidecar with a push after it registered: poll for it.
    while (Date.now() < deadline) {
      const res = await request(`http://127.0.0.1:${frontOutbound}/photos/1`, {
        headers: { host: 'photo-service', 'x-forwarded-client-cert': 'By=forged;URI=spiffe://evil/ns/x/sa/y' },
      });
      last = await res.body.text();
      status = res.statusCode;
      if (status === 200) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(status, 200, last);
    const xfcc = String(seen.at(-1)?.['x-forwarded-client-cert']);
    assert.match(xfcc, /^By=spiffe:\/\/example\.org\/ns\/default\/sa\/photo-service;Hash=[0-9a-f]{64};/);
    assert.match(xfcc, /;URI=spiffe:\/\/example\.org\/ns\/default\/sa\/front$/);
    assert.doesNotMatch(xfcc, /evil/);
  });

  it('a plaintext client on photo-service’s STRICT inbound port gets no HTTP response', async () => {
    const socket = connect(photoInbound, '127.0.0.1');
    await once(socket, 'connect');
    const before = seen.length;
    socket.write('GET /photos/1 HTTP/1.1\r\nhost: photo-service\r\n\r\n');
    let received = '';
    socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
    await Promise.race([once(socket, 'close'), once(socket, 'end')]);
    assert.doesNotMatch(received, /^HTTP\//);
    assert.equal(seen.length, before);
  });
});
