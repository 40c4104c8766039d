import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PeerCertificate } from 'node:tls';
import { checkPeerSpiffeId, parseSpiffeId, spiffeIdOf, spiffeIdOfCertificate, spiffeIdProblem } from './spiffe.ts';

const peer = (subjectaltname: string) => ({ subjectaltname }) as PeerCertificate;

describe('SPIFFE IDs', () => {
  it('builds and parses the mesh form', () => {
    const id = spiffeIdOf('cluster.local', 'default', 'photo-service');
    assert.equal(id, 'spiffe://cluster.local/ns/default/sa/photo-service');
    assert.deepEqual(parseSpiffeId(id), {
      id,
      trustDomain: 'cluster.local',
      path: '/ns/default/sa/photo-service',
      namespace: 'default',
      serviceAccount: 'photo-service',
    });
    assert.deepEqual(parseSpiffeId('spiffe://example.org/some/other'), {
      id: 'spiffe://example.org/some/other',
      trustDomain: 'example.org',
      path: '/some/other',
    });
    assert.equal(parseSpiffeId('spiffe://example.org').path, '');
  });

  it('refuses what the standard refuses, saying why', () => {
    for (const [id, why] of [
      ['https://example.org/a', /spiffe:\/\//],
      ['spiffe://Example.org/a', /trust domain/],
      ['spiffe://example.org:8080/a', /trust domain/],
      ['spiffe://user@example.org/a', /trust domain/],
      ['spiffe:///a', /empty/],
      ['spiffe://example.org/a//b', /empty segment/],
      ['spiffe://example.org/a/', /empty segment/],
      ['spiffe://example.org/a/../b', /\.\./],
      ['spiffe://example.org/a?b=c', /characters/],
      ['spiffe://example.org/a#b', /characters/],
      ['spiffe://example.org/a%20b', /characters/],
      [`spiffe://example.org/${'a'.repeat(2100)}`, /2048/],
    ] as const) {
      assert.match(spiffeIdProblem(id) ?? 'valid', why, id);
      assert.throws(() => parseSpiffeId(id), TypeError);
    }
    assert.throws(() => spiffeIdOf('cluster.local', 'a/b', 'svc'), /namespace/);
    assert.throws(() => spiffeIdOf('cluster.local', 'default', '..'), /service account/);
    assert.throws(() => spiffeIdOf('Cluster', 'default', 'svc'), /trust domain/);
  });

  it('reads the single URI SAN of a certificate', () => {
    assert.equal(spiffeIdOfCertificate(peer('DNS:a.example, URI:spiffe://td/ns/n/sa/s')), 'spiffe://td/ns/n/sa/s');
    assert.equal(spiffeIdOfCertificate(peer('DNS:a.example')), undefined);
    assert.equal(spiffeIdOfCertificate(peer('URI:spiffe://td/ns/n/sa/a, URI:spiffe://td/ns/n/sa/b')), undefined);
    assert.equal(spiffeIdOfCertificate(peer('URI:https://td/x')), undefined);
    assert.equal(spiffeIdOfCertificate(undefined), undefined);
  });

  it('checkPeerSpiffeId accepts only the expected IDs, whatever the host name', () => {
    const check = checkPeerSpiffeId(['spiffe://td/ns/n/sa/a', 'spiffe://td/ns/n/sa/b']);
    assert.equal(check('127.0.0.1', peer('URI:spiffe://td/ns/n/sa/b')), undefined);
    const wrong = check('127.0.0.1', peer('URI:spiffe://td/ns/n/sa/c'));
    assert.ok(wrong instanceof Error);
    assert.match(wrong.message, /spiffe:\/\/td\/ns\/n\/sa\/c is not one of/);
    assert.equal((wrong as Error & { code: string }).code, 'ERR_TLS_CERT_ALTNAME_INVALID');
    assert.ok(check('td', peer('DNS:td')) instanceof Error, 'a DNS SAN is no SPIFFE ID');
    // A second URI SAN makes the certificate no SVID, even when one of them is expected.
    assert.ok(check('x', peer('URI:spiffe://td/ns/n/sa/a, URI:spiffe://td/ns/n/sa/z')) instanceof Error);
    assert.throws(() => checkPeerSpiffeId(['not-an-id']), TypeError);
  });
});
