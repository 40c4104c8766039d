/** Who calls whom, live: the graph (cytoscape), and the same numbers as tables. */
import cytoscape from 'cytoscape';
import { useEffect, useRef } from 'preact/hooks';
import type { Live, Overview } from '../api.ts';
import { ms, nodeName, percent, rate } from '../format.ts';

type Edge = Overview['edges'][number];

const STYLE: cytoscape.StylesheetJson = [
  {
    selector: 'node',
    style: {
      label: 'data(label)',
      'text-wrap': 'wrap',
      'text-valign': 'bottom',
      'text-margin-y': 6,
      color: '#c9d1d9',
      'font-size': 11,
      'font-family': 'system-ui, sans-serif',
      'background-color': '#1f6feb',
      'border-width': 2,
      'border-color': '#58a6ff',
      width: 34,
      height: 34,
    },
  },
  {
    selector: 'node[kind = "gateway"]',
    style: { shape: 'round-hexagon', 'background-color': '#8957e5', 'border-color': '#bc8cff' },
  },
  {
    selector: 'node[kind = "clients"]',
    style: { shape: 'round-rectangle', 'background-color': '#30363d', 'border-color': '#8b949e' },
  },
  { selector: 'node[idle = 1]', style: { 'background-color': '#21262d', 'border-color': '#484f58' } },
  { selector: 'node[bad = 1]', style: { 'border-color': '#f85149', 'border-width': 4 } },
  {
    selector: 'edge',
    style: {
      label: 'data(label)',
      'font-size': 9,
      color: '#8b949e',
      'text-background-color': '#0d1117',
      'text-background-opacity': 1,
      'text-background-padding': '2px',
      'text-rotation': 'autorotate',
      'curve-style': 'bezier',
      'target-arrow-shape': 'triangle',
      'line-color': '#3fb950',
      'target-arrow-color': '#3fb950',
      width: 'data(width)',
    },
  },
  { selector: 'edge[health = "warn"]', style: { 'line-color': '#d29922', 'target-arrow-color': '#d29922' } },
  { selector: 'edge[health = "bad"]', style: { 'line-color': '#f85149', 'target-arrow-color': '#f85149' } },
  { selector: 'edge[health = "idle"]', style: { 'line-color': '#30363d', 'target-arrow-color': '#30363d' } },
  { selector: 'edge[mtls = "plain"]', style: { 'line-style': 'dashed' } },
];

function health(e: Edge): string {
  if (e.stat.rps === 0) return 'idle';
  const err = e.stat.errorRate ?? 0;
  return err >= 0.05 ? 'bad' : err > 0 ? 'warn' : 'ok';
}

function mtlsText(mode: string | null): string {
  if (mode === 'STRICT') return 'mTLS';
  if (mode === 'PERMISSIVE') return 'mTLS (permissive)';
  if (mode === 'DISABLE') return 'plaintext';
  return '';
}

function elementsOf(o: Overview): cytoscape.ElementDefinition[] {
  const nodes = o.nodes.map((n) => ({
    group: 'nodes' as const,
    data: {
      id: n.id,
      kind: n.kind,
      label: `${n.name}\n${rate(n.stat.rps)}`,
      idle: n.stat.rps === 0 ? 1 : 0,
      bad: (n.stat.errorRate ?? 0) >= 0.05 || (n.state?.breakerOpen.length ?? 0) > 0 ? 1 : 0,
    },
  }));
  const edges = o.edges.map((e) => ({
    group: 'edges' as const,
    data: {
      id: e.id,
      source: e.source,
      target: e.target,
      label: [rate(e.stat.rps), percent(e.stat.errorRate), `p99 ${ms(e.stat.p99Ms)}`, mtlsText(e.mtls)]
        .filter(Boolean)
        .join(' · '),
      health: health(e),
      mtls: e.mtls === 'STRICT' || e.mtls === 'PERMISSIVE' ? 'mtls' : e.mtls === 'DISABLE' ? 'plain' : 'none',
      width: Math.min(8, 1.5 + Math.log2(1 + e.stat.rps)),
    },
  }));
  return [...nodes, ...edges];
}

function Graph(props: { overview: Overview }) {
  const host = useRef<HTMLDivElement>(null);
  const cy = useRef<cytoscape.Core | null>(null);
  const shape = useRef('');

  useEffect(() => {
    const c = cytoscape({
      container: host.current!,
      style: STYLE,
      minZoom: 0.3,
      maxZoom: 2.5,
      boxSelectionEnabled: false,
      autoungrabify: false,
    });
    c.on('tap', 'node[kind = "service"]', (e) => {
      location.hash = `#/service/${encodeURIComponent(nodeName(e.target.id()))}`;
    });
    cy.current = c;
    return () => c.destroy();
  }, []);

  useEffect(() => {
    const c = cy.current;
    if (!c) return;
    const elements = elementsOf(props.overview);
    const ids = elements
      .map((e) => e.data.id!)
      .sort()
      .join(' ');
    c.batch(() => {
      for (const el of elements) {
        const existing = c.getElementById(el.data.id!);
        if (existing.nonempty()) existing.data(el.data);
        else c.add(el);
      }
      const keep = new Set(elements.map((e) => e.data.id));
      c.elements().forEach((el) => {
        if (!keep.has(el.id())) c.remove(el);
      });
    });
    if (ids !== shape.current) {
      shape.current = ids;
      const roots = c.nodes('[kind = "clients"]');
      const el = host.current!;
      // Breadth-first lays levels out top to bottom over the container; turned a quarter, with the
      // container's proportions kept, levels run left to right as a request travels.
      const ratio = Math.max(0.2, el.clientWidth / Math.max(1, el.clientHeight));
      c.layout({
        name: 'breadthfirst',
        directed: true,
        roots: roots.nonempty() ? roots : undefined,
        spacingFactor: 1.1,
        padding: 30,
        animate: false,
        transform: (_node: cytoscape.NodeSingular, p: cytoscape.Position) => ({ x: p.y * ratio, y: p.x / ratio }),
      } as cytoscape.LayoutOptions).run();
      c.fit(undefined, 30);
    }
  }, [props.overview]);

  return <div id="graph" ref={host} role="img" aria-label="service graph" />;
}

export function TopologyView(props: { live: Live }) {
  const o = props.live.overview;
  if (!o)
    return (
      <p class="muted">Waiting for the first telemetry (reports arrive every {props.live.info.intervalMs / 1000} s)…</p>
    );
  const window = `${o.windowMs / 1000} s`;
  return (
    <section class="topology">
      <Graph overview={o} />
      <div class="columns">
        <table id="nodes">
          <caption>Nodes, over the last {window}</caption>
          <thead>
            <tr>
              <th>name</th>
              <th>requests</th>
              <th>errors</th>
              <th>p99</th>
              <th>proxies</th>
            </tr>
          </thead>
          <tbody>
            {o.nodes.map((n) => (
              <tr key={n.id} data-node={n.id} data-rps={n.stat.rps}>
                <td>
                  {n.kind === 'service' ? <a href={`#/service/${encodeURIComponent(n.name)}`}>{n.name}</a> : n.name}
                </td>
                <td class="num">{rate(n.stat.rps)}</td>
                <td class="num">{percent(n.stat.errorRate)}</td>
                <td class="num">{ms(n.stat.p99Ms)}</td>
                <td class="num">{n.kind === 'clients' ? '' : n.proxies}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <table id="edges">
          <caption>Calls, over the last {window}</caption>
          <thead>
            <tr>
              <th>from → to</th>
              <th>requests</th>
              <th>errors</th>
              <th>p99</th>
              <th>mTLS</th>
            </tr>
          </thead>
          <tbody>
            {o.edges.map((e) => (
              <tr key={e.id} data-edge={e.id} data-rps={e.stat.rps}>
                <td>
                  {nodeName(e.source)} → {nodeName(e.target)}
                </td>
                <td class="num">{rate(e.stat.rps)}</td>
                <td class="num">{percent(e.stat.errorRate)}</td>
                <td class="num">{ms(e.stat.p99Ms)}</td>
                <td>{mtlsText(e.mtls) || '–'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
