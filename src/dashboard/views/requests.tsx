/** Request lookup: a request id (or trace id) in, its hops across proxies out, as a waterfall. */
import { useEffect, useState } from 'preact/hooks';
import { getJson, type LookupResult, type LookupSpan } from '../api.ts';
import { ms } from '../format.ts';

export function RequestsView(props: { id: string }) {
  const [text, setText] = useState(props.id);
  const [result, setResult] = useState<LookupResult | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  /** Bumped to ask again for the id already shown (spans may have reached the tracing backend since). */
  const [asks, setAsks] = useState(0);

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
  }, [props.id, asks]);

  const { start, span } = timeline(result?.hops ?? []);
  return (
    <section class="requests">
      <h2>Request lookup</h2>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          const id = text.trim();
          if (id === props.id) {
            setResult(null);
            setAsks(asks + 1);
          }
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
                  <TimeBar start={h.start - start} duration={h.durationMs} span={span} />
                </tr>
              ))}
            </tbody>
          </table>
          {result.spans !== undefined && <Spans spans={result.spans} error={result.spansError} />}
        </>
      )}
    </section>
  );
}

/** The trace's spans from the tracing backend, each under the span it was called from. */
function Spans(props: { spans: LookupSpan[]; error: string | undefined }) {
  // Depth first, each span right under the one it was called from; siblings by start.
  const byId = new Map(props.spans.map((s) => [s.spanId, s]));
  const children = new Map<string, LookupSpan[]>();
  const roots: LookupSpan[] = [];
  for (const s of props.spans) {
    if (byId.has(s.parentSpanId)) children.set(s.parentSpanId, [...(children.get(s.parentSpanId) ?? []), s]);
    else roots.push(s);
  }
  const spans: { span: LookupSpan; depth: number }[] = [];
  const shown = new Set<string>();
  const walk = (s: LookupSpan, depth: number) => {
    // A backend's ids are not trusted to form a tree.
    if (shown.has(s.spanId)) return;
    shown.add(s.spanId);
    spans.push({ span: s, depth });
    for (const c of children.get(s.spanId) ?? []) walk(c, depth + 1);
  };
  for (const r of roots) walk(r, 0);
  for (const s of props.spans) walk(s, 0);
  const { start, span: width } = timeline(props.spans);
  return (
    <>
      <h3>Trace</h3>
      {props.error && <p class="warn">The tracing backend: {props.error}</p>}
      {spans.length === 0 ? (
        <p class="muted">The tracing backend has no span of this request's trace (yet).</p>
      ) : (
        <table id="spans">
          <thead>
            <tr>
              <th>service</th>
              <th>span</th>
              <th>status</th>
              <th>time</th>
              <th class="waterfall">timeline</th>
            </tr>
          </thead>
          <tbody>
            {spans.map(({ span: s, depth }) => (
              <tr key={s.spanId} data-span={s.service}>
                <td>
                  {'\u00a0\u00a0'.repeat(depth)}
                  {s.service}
                </td>
                <td>{s.name}</td>
                <td class={s.error || (s.status ?? 0) >= 500 ? 'bad' : (s.status ?? 0) >= 400 ? 'warn' : ''}>
                  {s.status ?? (s.error ? 'error' : '–')}
                </td>
                <td class="num">{ms(s.durationMs)}</td>
                <TimeBar start={s.start - start} duration={s.durationMs} span={width} />
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

/** Where a waterfall starts and how many ms it spans (at least 1), over items with a start and a duration. */
function timeline(items: readonly { start: number; durationMs: number }[]): { start: number; span: number } {
  if (items.length === 0) return { start: 0, span: 1 };
  let start = Number.POSITIVE_INFINITY;
  let end = Number.NEGATIVE_INFINITY;
  for (const i of items) {
    start = Math.min(start, i.start);
    end = Math.max(end, i.start + i.durationMs);
  }
  return { start, span: Math.max(1, end - start) };
}

/** A waterfall cell: a bar from `start` for `duration` ms, on a timeline `span` ms wide. */
function TimeBar(props: { start: number; duration: number; span: number }) {
  return (
    <td class="waterfall">
      <svg viewBox="0 0 100 10" preserveAspectRatio="none" role="img" aria-label="time span">
        <rect
          x={(props.start / props.span) * 100}
          y={2}
          width={Math.max(0.5, (props.duration / props.span) * 100)}
          height={6}
        />
      </svg>
    </td>
  );
}
