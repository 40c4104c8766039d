/** One service's golden signals: rate, errors, latency, live; its versions, routes, callers and state. */
import type { Live, Overview } from '../api.ts';
import { Chart } from '../chart.tsx';
import { DASH, ms, nodeName, percent, rate } from '../format.ts';

type Stat = Overview['nodes'][number]['stat'];
type History = Overview['nodes'][number]['history'];

const BLUE = '#58a6ff';
const RED = '#f85149';
const GREEN = '#3fb950';
const AMBER = '#d29922';

/** A service's requests per second and share by version (the canary page shows the same table). */
export function VersionShares(props: { id?: string; versions: Overview['nodes'][number]['versions'] }) {
  return (
    <table id={props.id}>
      <tbody>
        {props.versions.map((v) => (
          <tr key={v.version} data-version={v.version} data-share={v.share ?? 0}>
            <td>{v.version}</td>
            <td class="num">{rate(v.rps)}</td>
            <td class="bar">
              <meter min={0} max={1} value={v.share ?? 0} />
            </td>
            <td class="num share">{percent(v.share)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function Signals(props: { times: number[]; history: History; compact?: boolean }) {
  const { times, history } = props;
  const height = props.compact ? 90 : 140;
  return (
    <div class={props.compact ? 'charts compact' : 'charts'}>
      <Chart
        title="requests"
        times={times}
        height={height}
        format={rate}
        lines={[{ label: 'req/s', values: history.rps, stroke: BLUE }]}
      />
      <Chart
        title="errors (5xx)"
        times={times}
        height={height}
        format={(v) => percent(v, 0)}
        lines={[{ label: 'error rate', values: history.errorRate, stroke: RED }]}
      />
      <Chart
        title="latency"
        times={times}
        height={height}
        format={ms}
        lines={[
          { label: 'p50', values: history.p50Ms, stroke: GREEN },
          { label: 'p99', values: history.p99Ms, stroke: AMBER },
        ]}
      />
    </div>
  );
}

export function Headline(props: { stat: Stat }) {
  const s = props.stat;
  const items: [string, string][] = [
    ['requests', rate(s.rps)],
    ['errors', percent(s.errorRate)],
    ['4xx', percent(s.clientErrorRate)],
    ['p50', ms(s.p50Ms)],
    ['p95', ms(s.p95Ms)],
    ['p99', ms(s.p99Ms)],
    ['retries', rate(s.retriesPerSec)],
    ['rate-limited', rate(s.rateLimitedPerSec)],
  ];
  return (
    <dl class="headline">
      {items.map(([k, v]) => (
        <div key={k} data-stat={k}>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </div>
      ))}
    </dl>
  );
}

function ServiceList(props: { overview: Overview }) {
  return (
    <section>
      <h2>Services</h2>
      <table>
        <thead>
          <tr>
            <th>service</th>
            <th>requests</th>
            <th>errors</th>
            <th>p99</th>
            <th>instances reporting</th>
          </tr>
        </thead>
        <tbody>
          {props.overview.nodes
            .filter((n) => n.kind === 'service')
            .map((n) => (
              <tr key={n.id}>
                <td>
                  <a href={`#/service/${encodeURIComponent(n.name)}`}>{n.name}</a>
                </td>
                <td class="num">{rate(n.stat.rps)}</td>
                <td class="num">{percent(n.stat.errorRate)}</td>
                <td class="num">{ms(n.stat.p99Ms)}</td>
                <td class="num">{n.proxies}</td>
              </tr>
            ))}
        </tbody>
      </table>
    </section>
  );
}

export function ServiceView(props: { live: Live; name: string | null }) {
  const o = props.live.overview;
  if (!o) return <p class="muted">Waiting for the first telemetry…</p>;
  if (props.name === null) return <ServiceList overview={o} />;
  const id = `service:${props.name}`;
  const node = o.nodes.find((n) => n.id === id);
  if (!node) return <p>No service {props.name} in the mesh now.</p>;
  const routes = o.routes.filter((r) => r.services.includes(node.name));
  const callers = o.edges.filter((e) => e.target === id);
  const callees = o.edges.filter((e) => e.source === id);
  const state = node.state;
  return (
    <section class="service" data-service={node.name}>
      <h2>
        {node.name} <span class="muted">over the last {o.windowMs / 1000} s</span>
      </h2>
      <Headline stat={node.stat} />
      <div class="columns">
        <div>
          <h3>Traffic by version</h3>
          {node.versions.length === 0 ? (
            <p class="muted">No instance reports its traffic (no sidecar).</p>
          ) : (
            <VersionShares id="versions" versions={node.versions} />
          )}
        </div>
        <div>
          <h3>Resilience</h3>
          <dl class="facts">
            <dt>circuit breaker</dt>
            <dd class={state && state.breakerOpen.length > 0 ? 'bad' : ''}>
              {state ? (state.breakerOpen.length > 0 ? `open: ${state.breakerOpen.join(', ')}` : 'closed') : DASH}
            </dd>
            <dt>endpoints</dt>
            <dd>
              {state
                ? `${state.endpoints.healthy} healthy, ${state.endpoints.ejected} ejected, ${state.endpoints.unhealthy} unhealthy`
                : DASH}
            </dd>
            <dt>ejections since start</dt>
            <dd>{state ? state.ejections : DASH}</dd>
            <dt>retries</dt>
            <dd>{rate(node.stat.retriesPerSec)}</dd>
            <dt>rate-limited</dt>
            <dd>{rate(node.stat.rateLimitedPerSec)}</dd>
          </dl>
        </div>
      </div>
      <Signals times={o.times} history={node.history} />
      <div class="columns">
        <div>
          <h3>Called by</h3>
          <EdgeTable edges={callers} end="source" />
        </div>
        <div>
          <h3>Calls</h3>
          <EdgeTable edges={callees} end="target" />
        </div>
      </div>
      {routes.length > 0 && <h3>Routes to it</h3>}
      {routes.map((r) => (
        <div class="route" key={r.name} data-route={r.name}>
          <h4>
            {r.name} <span class="muted">on {r.gateway}</span>
          </h4>
          <Headline stat={r.stat} />
          <Signals times={o.times} history={r.history} compact />
        </div>
      ))}
    </section>
  );
}

function EdgeTable(props: { edges: Overview['edges']; end: 'source' | 'target' }) {
  if (props.edges.length === 0) return <p class="muted">None seen.</p>;
  return (
    <table>
      <tbody>
        {props.edges.map((e) => {
          const other = e[props.end];
          return (
            <tr key={e.id}>
              <td>
                {other.startsWith('service:') ? (
                  <a href={`#/service/${encodeURIComponent(nodeName(other))}`}>{nodeName(other)}</a>
                ) : (
                  nodeName(other)
                )}
              </td>
              <td class="num">{rate(e.stat.rps)}</td>
              <td class="num">{percent(e.stat.errorRate)}</td>
              <td class="num">p99 {ms(e.stat.p99Ms)}</td>
              <td>
                {e.mtls === 'STRICT'
                  ? 'mTLS'
                  : e.mtls === 'PERMISSIVE'
                    ? 'mTLS (permissive)'
                    : e.mtls === 'DISABLE'
                      ? 'plaintext'
                      : ''}
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}
