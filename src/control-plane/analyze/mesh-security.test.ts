/** `analyze` on the mesh's security: a mesh left PERMISSIVE, and proxies whose certificates lapse. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { at } from '../../../test/helpers/text.ts';
import type { ProxyStatusView } from '../../api/mesh.ts';
import { analyze, type Finding } from './analyze.ts';

const brief = (f: Finding) => `${f.code} ${f.severity} ${f.line}:${f.column} ${f.path}`;
const run = (lines: string[], proxies?: ProxyStatusView[], now?: number) =>
  analyze({
    texts: [{ file: 'mesh.yaml', text: `${lines.join('\n')}\n` }],
    env: {},
    mesh: true,
    ...(proxies ? { proxies } : {}),
    ...(now === undefined ? {} : { now }),
  }).filter((f) => f.code === 'MGA018' || f.code === 'MGA019');

const HOUR = 3_600_000;
const proxy = (id: string, notBefore: number, notAfter: number) =>
  ({
    id,
    certificate: {
      spiffeId: `spiffe://cluster.local/ns/default/sa/${id}`,
      serial: 'AB12',
      issuer: 'CN=root',
      notBefore: new Date(notBefore).toISOString(),
      notAfter: new Date(notAfter).toISOString(),
      authenticatedBy: 'join token',
    },
  }) as unknown as ProxyStatusView;

describe('analyze: mesh security', () => {
  it('warns on a mesh-wide PERMISSIVE mode, written or by default, and not on STRICT', () => {
    const written = ['mesh: { mtls: { mode: PERMISSIVE } }', 'services: [{ name: a }]'];
    assert.deepEqual(run(written).map(brief), [`MGA018 warning ${at(written, 'PERMISSIVE')} mesh.mtls.mode`]);
    const byDefault = ['mesh: { trustDomain: example.org }', 'services: [{ name: a }]'];
    assert.deepEqual(run(byDefault).map(brief), [`MGA018 warning ${at(byDefault, '{ trustDomain')} mesh`]);
    assert.deepEqual(run(['mesh: { mtls: { mode: STRICT } }', 'services: [{ name: a }]']), []);
    // No mesh section: no mutual TLS is configured at all, and nothing to say about its mode.
    assert.deepEqual(run(['services: [{ name: a }]']), []);
  });

  it('warns on a proxy whose certificate has less than a quarter of its life left, or none', () => {
    const now = Date.parse('2026-12-06T12:00:00Z');
    const lines = ['mesh: { mtls: { mode: STRICT } }', 'services: [{ name: a }]'];
    const findings = run(
      lines,
      [
        proxy('fresh', now - HOUR, now + 23 * HOUR),
        proxy('lapsing', now - 20 * HOUR, now + 4 * HOUR),
        proxy('expired', now - 25 * HOUR, now - HOUR),
      ],
      now,
    );
    assert.deepEqual(
      findings.map((f) => [f.code, f.file]),
      [
        ['MGA019', 'proxy expired'],
        ['MGA019', 'proxy lapsing'],
      ],
    );
    assert.match(findings[0]!.message, /expired at 2026-12-06T11:00:00.000Z/);
    assert.match(findings[1]!.fix, /meshgate proxy-config secrets lapsing/);
  });
});
