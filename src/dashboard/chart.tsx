/** A small live line chart (uPlot), redrawn in place when its data changes. */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

/** The fewest slots a chart shows. */
const MIN_POINTS = 12;

export interface Line {
  label: string;
  values: (number | null)[];
  /** A CSS colour. */
  stroke: string;
}

export function Chart(props: {
  title: string;
  times: number[];
  lines: Line[];
  format: (v: number | null) => string;
  height?: number;
}) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = props.lines.map((l) => l.label).join('|');
  // From the first slot with data (at least the last minute's worth): an hour-old history is shown
  // whole, a mesh that started a minute ago is not a flat line with a blip at the end.
  let first = props.times.length;
  for (const l of props.lines) {
    const i = l.values.findIndex((v) => v !== null);
    if (i !== -1) first = Math.min(first, i);
  }
  const from = Math.max(0, Math.min(first - 1, props.times.length - MIN_POINTS));
  const data = [
    props.times.slice(from).map((t) => t / 1000),
    ...props.lines.map((l) => l.values.slice(from)),
  ] as uPlot.AlignedData;

  useEffect(() => {
    const el = host.current;
    if (!el) return;
    const fmt = props.format;
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height: props.height ?? 140,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.15 : 1] } },
      axes: [
        { stroke: '#8b949e', grid: { stroke: '#21262d' }, ticks: { stroke: '#30363d' } },
        {
          stroke: '#8b949e',
          grid: { stroke: '#21262d' },
          ticks: { stroke: '#30363d' },
          size: 64,
          values: (_u, splits) => splits.map((v) => fmt(v)),
        },
      ],
      series: [
        {},
        ...props.lines.map((l) => ({
          label: l.label,
          stroke: l.stroke,
          width: 1.5,
          spanGaps: false,
          points: { show: false },
          value: (_u: uPlot, v: number | null) => fmt(v),
        })),
      ],
    };
    const p = new uPlot(opts, data, el);
    plot.current = p;
    const resize = new ResizeObserver(() => p.setSize({ width: Math.max(200, el.clientWidth), height: opts.height }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      p.destroy();
      plot.current = null;
    };
    // The chart is rebuilt only when its lines change; new data goes through setData below.
  }, [shape]);

  useEffect(() => {
    plot.current?.setData(data);
  });

  return (
    <figure class="chart">
      <figcaption>
        {props.title}
        {props.lines.length > 1 &&
          props.lines.map((l) => (
            <span key={l.label} class={`key ${l.label}`}>
              {l.label}
            </span>
          ))}
      </figcaption>
      <div ref={host} />
    </figure>
  );
}
