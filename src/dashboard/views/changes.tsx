/** The change log: each change, where it landed (per proxy, how fast) and, for config changes, its diff. */
import { useEffect, useState } from 'preact/hooks';
import type { Live } from '../api.ts';
import { type ChangeRecord, getJson } from '../api.ts';
import { DASH, ms, time } from '../format.ts';

export function Diff(props: { lines: string[] }) {
  return (
    <pre class="diff">
      {props.lines.map((l, i) => (
        <span key={i} class={l.startsWith('@@') ? 'cut' : l[0] === '+' ? 'add' : l[0] === '-' ? 'del' : ''}>
          {l}
          {'\n'}
        </span>
      ))}
    </pre>
  );
}

function Detail(props: { change: ChangeRecord }) {
  const c = props.change;
  const [diff, setDiff] = useState<{ diff: string[] | null; note?: string } | null>(null);
  useEffect(() => {
    if (c.kind !== 'config') return;
    getJson<{ diff: string[] | null; note?: string }>(`/changes/${c.id}/diff`).then(setDiff, (e: Error) =>
      setDiff({ diff: null, note: e.message }),
    );
  }, [c.id]);
  return (
    <div class="detail">
      <table class="results">
        <thead>
          <tr>
            <th>proxy</th>
            <th>result</th>
            <th>propagation</th>
            <th>error</th>
          </tr>
        </thead>
        <tbody>
          {c.results.map((r) => (
            <tr key={r.proxy} data-result={r.proxy} data-status={r.status}>
              <td>{r.proxy}</td>
              <td>
                <span class={`state ${r.status}`}>{r.status}</span>
              </td>
              <td class="num">{ms(r.propagationMs)}</td>
              <td>{r.error?.message ?? ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {c.results.length === 0 && <p class="muted">No proxy's config changed: nothing was pushed.</p>}
      {c.kind === 'config' &&
        (diff === null ? (
          <p class="muted">Loading the diff…</p>
        ) : diff.diff ? (
          <Diff lines={diff.diff} />
        ) : (
          <p class="muted">{diff.note}</p>
        ))}
    </div>
  );
}

export function ChangesView(props: { live: Live; open: string | null }) {
  const changes = props.live.changes;
  if (props.live.info.kind === 'gateway')
    return (
      <p class="muted">
        A gateway on its own reloads its file; its admin API's /config/pipeline tells the last change.
      </p>
    );
  return (
    <section>
      <h2>Changes</h2>
      <table id="changes">
        <thead>
          <tr>
            <th>#</th>
            <th>at</th>
            <th>kind</th>
            <th>cause</th>
            <th>status</th>
            <th>applied</th>
            <th>p50</th>
            <th>max</th>
          </tr>
        </thead>
        <tbody>
          {changes.map((c) => {
            const open = props.open === String(c.id);
            return [
              <tr
                key={c.id}
                data-change={c.id}
                data-status={c.status}
                class={open ? 'open clickable' : 'clickable'}
                onClick={() => (location.hash = open ? '#/changes' : `#/changes/${c.id}`)}
              >
                <td class="num">{c.id}</td>
                <td>{time(c.at)}</td>
                <td>{c.kind}</td>
                <td class="cause">{c.cause}</td>
                <td>
                  <span class={`state ${c.status}`}>{c.status}</span>
                </td>
                <td class="num">{c.results.length === 0 ? DASH : `${c.propagation.applied}/${c.results.length}`}</td>
                <td class="num">{ms(c.propagation.p50Ms)}</td>
                <td class="num">{ms(c.propagation.maxMs)}</td>
              </tr>,
              open ? (
                <tr key={`${c.id}-detail`} class="detail-row">
                  <td colSpan={8}>
                    <Detail change={c} />
                  </td>
                </tr>
              ) : null,
            ];
          })}
        </tbody>
      </table>
    </section>
  );
}
