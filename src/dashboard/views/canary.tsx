/**
 * Canary control: a route's weights, changed from here as any model change (validated as
 * `meshgate validate` does, shown as a diff, then applied and recorded), and the traffic it moves.
 */
import { useEffect, useState } from 'preact/hooks';
import { getJson, type Live, postJson, type WeightedRoute, type WeightsOutcome } from '../api.ts';
import { ms } from '../format.ts';
import { Diff } from './changes.tsx';
import { VersionShares } from './service.tsx';

const PRESETS: [number, number][] = [
  [90, 10],
  [50, 50],
  [0, 100],
];

type Outcome = WeightsOutcome & { dryRun: boolean };

function RouteCard(props: { route: WeightedRoute; live: Live; onApplied: () => void }) {
  const { route, live } = props;
  const [weights, setWeights] = useState(route.destinations.map((d) => d.weight));
  const [preview, setPreview] = useState<Outcome | null>(null);
  const [applied, setApplied] = useState<Outcome | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const current = route.destinations.map((d) => d.weight).join('/');
  // Once applied (or changed elsewhere), the inputs start from the weights in force.
  useEffect(() => setWeights(route.destinations.map((d) => d.weight)), [current]);
  const wanted = weights.join('/');
  const previewed =
    preview !== null && preview.status === 200 && preview.route?.destinations.map((d) => d.weight).join('/') === wanted;

  const send = async (dryRun: boolean) => {
    setBusy(true);
    setError(null);
    try {
      const res = await postJson<Outcome>(
        `/routes/${encodeURIComponent(route.name)}/weights${dryRun ? '?dryRun=true' : ''}`,
        {
          weights,
        },
      );
      if (dryRun) setPreview({ ...res.body, status: res.status });
      else {
        setApplied({ ...res.body, status: res.status });
        if (res.status === 200) {
          setPreview(null);
          props.onApplied();
        } else setError(res.body.error ?? `status ${res.status}`);
      }
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };

  const services = [...new Set(route.destinations.map((d) => d.service))];
  const record = applied?.change ? live.changes.find((c) => c.id === applied.change) : undefined;
  return (
    <article class="card" data-route={route.name}>
      <h3>
        {route.name} <span class="muted">now {current}</span>
      </h3>
      <table class="weights">
        <tbody>
          {route.destinations.map((d, i) => (
            <tr key={i}>
              <td>
                {d.service}
                {d.subset ? <span class="tag">{d.subset}</span> : null}
              </td>
              <td>
                <input
                  type="number"
                  min={0}
                  step={1}
                  aria-label={`weight of ${d.subset ?? d.service}`}
                  data-destination={d.subset ?? d.service}
                  value={weights[i]}
                  onInput={(e) => {
                    const next = [...weights];
                    next[i] = Math.max(0, Math.round(Number((e.target as HTMLInputElement).value) || 0));
                    setWeights(next);
                  }}
                />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {route.destinations.length === 2 && (
        <div class="presets">
          {PRESETS.map(([a, b]) => (
            <button type="button" key={`${a}/${b}`} data-preset={`${a}/${b}`} onClick={() => setWeights([a, b])}>
              {a}/{b}
            </button>
          ))}
        </div>
      )}
      <div class="actions">
        <button
          type="button"
          data-action="preview"
          disabled={busy || wanted === current}
          onClick={() => void send(true)}
        >
          Preview
        </button>
        <button
          type="button"
          data-action="apply"
          class="primary"
          disabled={busy || !previewed}
          onClick={() => void send(false)}
        >
          Apply {wanted}
        </button>
      </div>
      {error && <p class="bad">{error}</p>}
      {preview && (
        <div class="preview" data-valid={preview.status === 200 ? 'true' : 'false'}>
          <p class={preview.status === 200 ? 'good' : 'bad'}>
            {preview.status === 200
              ? `Valid (model ${preview.version?.slice(0, 10)}). The change:`
              : `Not valid: ${preview.error}`}
          </p>
          {preview.issues && (
            <ul class="issues">
              {(preview.issues as { path?: string; message?: string }[]).map((i, k) => (
                <li key={k}>{`${i.path ?? ''} ${i.message ?? JSON.stringify(i)}`}</li>
              ))}
            </ul>
          )}
          {preview.diff && <Diff lines={preview.diff} />}
        </div>
      )}
      {applied?.status === 200 && (
        <p class="applied" data-change={applied.change ?? ''} data-status={record?.status ?? 'propagating'}>
          {applied.change === null ? (
            'Already so: nothing changed.'
          ) : (
            <>
              <a href={`#/changes/${applied.change}`}>Change #{applied.change}</a>:{' '}
              {record
                ? `${record.status}, ${record.propagation.applied}/${record.results.length} proxies, max ${ms(record.propagation.maxMs)}`
                : 'propagating…'}
            </>
          )}
        </p>
      )}
      {services.map((s) => {
        const node = live.overview?.nodes.find((n) => n.id === `service:${s}`);
        return (
          <div key={s} class="observed">
            <h4>
              {s} by version{' '}
              <span class="muted">(all its traffic, last {(live.overview?.windowMs ?? 0) / 1000} s)</span>
            </h4>
            {node && node.versions.length > 0 ? (
              <VersionShares versions={node.versions} />
            ) : (
              <p class="muted">No traffic reported yet.</p>
            )}
          </div>
        );
      })}
    </article>
  );
}

export function CanaryView(props: { live: Live }) {
  const [routes, setRoutes] = useState<WeightedRoute[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [generation, setGeneration] = useState(0);
  useEffect(() => {
    getJson<{ routes: WeightedRoute[] }>('/routes').then(
      (r) => setRoutes(r.routes),
      (e: Error) => setError(e.message),
    );
  }, [generation]);
  if (!props.live.info.canWeights)
    return (
      <p class="muted">Weights are changed in the config file of a gateway on its own; here they are shown only.</p>
    );
  if (error) return <p class="bad">{error}</p>;
  if (routes === null) return <p class="muted">Loading routes…</p>;
  if (routes.length === 0) return <p class="muted">No route splits traffic between destinations.</p>;
  return (
    <section class="canary">
      <h2>Canary</h2>
      <p class="muted">
        A new split is checked as <code>meshgate validate</code> checks a model, shown as a diff, then applied through
        the control plane as a change of the model, recorded and pushed to every proxy it concerns.
      </p>
      {routes.map((r) => (
        <RouteCard key={r.name} route={r} live={props.live} onApplied={() => setGeneration((g) => g + 1)} />
      ))}
    </section>
  );
}
