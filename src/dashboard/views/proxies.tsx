/** Every proxy: role, config version, sync state, last ACK and NACK, certificate expiry, telemetry. */

import type { Live } from '../api.ts';
import { DASH, rate, relative, shortVersion } from '../format.ts';

export function ProxiesView(props: { live: Live }) {
  const rows = props.live.proxies;
  if (props.live.info.kind === 'gateway')
    return <p class="muted">A gateway on its own: no control plane, so no other proxy to list.</p>;
  const synced = rows.filter((p) => p.state === 'SYNCED').length;
  return (
    <section>
      <h2>
        Proxies{' '}
        <span class="muted">
          {synced} of {rows.length} in sync
        </span>
      </h2>
      <table id="proxies">
        <thead>
          <tr>
            <th>proxy</th>
            <th>role</th>
            <th>service</th>
            <th>state</th>
            <th>config</th>
            <th>last ACK</th>
            <th>last NACK</th>
            <th>certificate expires</th>
            <th>traffic</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((p) => (
            <tr key={p.id} data-proxy={p.id} data-state={p.state}>
              <td>{p.id}</td>
              <td>{p.kind}</td>
              <td>
                {p.service ?? DASH}
                {p.labels.version ? <span class="tag">{p.labels.version}</span> : null}
              </td>
              <td>
                <span class={`state ${p.state.toLowerCase()}`}>{p.state}</span>
              </td>
              <td class="mono" title={p.ackedVersion ?? ''}>
                {shortVersion(p.ackedVersion)}
                {p.expectedVersion !== p.ackedVersion ? ` → ${shortVersion(p.expectedVersion)}` : ''}
              </td>
              <td>{relative(p.lastAckAt)}</td>
              <td class={p.lastNack ? 'bad' : ''} title={p.lastNack?.message ?? ''}>
                {p.lastNack ? `${relative(p.lastNack.at)}: ${p.lastNack.message}` : DASH}
              </td>
              <td title={p.certificate?.spiffeId ?? ''}>{p.certificate ? relative(p.certificate.notAfter) : DASH}</td>
              <td class="num">{p.telemetry ? rate(p.telemetry.rps) : DASH}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
