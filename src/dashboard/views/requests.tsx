/** Request lookup: a request id (or trace id) in, its hops across proxies out, as a waterfall. */
import { useEffect, useState } from 'preact/hooks';
import { getJson, type LookupResult } from '../api.ts';
import { ms } from '../format.ts';

export function RequestsView(props: { id: string }) {
  const [text, setText] = useState(props.id);
  const [result, setResult] = useState<LookupResult | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    setText(props.id);
    if (props.id === '') return;
    setBusy(true);
    setError(null);
    getJson<LookupResult>(`/requests/${encodeURIComponent(props.id)}`).then(
      (r) => {
        setResult(r);
        setBusy(false);
      },
      (e: Error) => {
        setError(e.message);
        setBusy(false);
      },
    );
  }, [props.id]);

  const start = result && result.hops.length > 0 ? Math.min(...result.hops.map((h) => h.start)) : 0;
  const end = result && result.hops.length > 0 ? Math.max(...result.hops.map((h) => h.start + h.durationMs)) : 1;
  const span = Math.max(1, end - start);
  return (
    <section class="requests">
      <h2>Request lookup</h2>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          const id = text.trim();
          if (id === props.id) setResult(null);
          location.hash = `#/requests/${encodeURIComponent(id)}`;
        }}
      >
        <input
          id="request-id"
          placeholder="x-request-id or trace id"
          aria-label="request id"
          value={text}
          onInput={(e) => setText((e.target as HTMLInputElement).value)}
        />
        <button type="submit" class="primary" disabled={busy}>
          Look up
        </button>
      </form>
      <p class="muted">Every proxy keeps its last requests in a small ring; older ones are gone.</p>
      {error && <p class="bad">{error}</p>}
      {busy && <p class="muted">Asking the proxies…</p>}
      {result && !busy && (
        <>
          <p>
            {result.hops.length} hop{result.hops.length === 1 ? '' : 's'} seen by{' '}
            {new Set(result.hops.map((h) => h.proxy)).size} proxies ({result.answered} of {result.asked} answered)
            {result.hops[0]?.traceId ? `, trace ${result.hops[0].traceId}` : ''}.
          </p>
          <table id="hops">
            <thead>
              <tr>
                <th>proxy</th>
                <th>route</th>
                <th>to</th>
                <th>status</th>
                <th>time</th>
                <th class="waterfall">timeline</th>
              </tr>
            </thead>
            <tbody>
              {result.hops.map((h, i) => (
                <tr key={i} data-hop={h.proxy} title={`${h.method} ${h.host}${h.path} · request ${h.requestId}`}>
                  <td>
                    {h.proxy} <span class="muted">{h.kind}</span>
                  </td>
                  <td>{h.route || '–'}</td>
                  <td>
                    {h.service}
                    {h.subset ? <span class="tag">{h.subset}</span> : null}
                    <div class="muted small">{h.endpoint ?? ''}</div>
                  </td>
                  <td class={h.status >= 500 || h.status === 0 ? 'bad' : h.status >= 400 ? 'warn' : ''}>
                    {h.status}
                    {h.code ? ` ${h.code}` : ''}
                  </td>
                  <td class="num">{ms(h.durationMs)}</td>
                  <td class="waterfall">
                    <svg viewBox="0 0 100 10" preserveAspectRatio="none" role="img" aria-label="time span">
                      <rect
                        x={((h.start - start) / span) * 100}
                        y={2}
                        width={Math.max(0.5, (h.durationMs / span) * 100)}
                        height={6}
                      />
                    </svg>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
