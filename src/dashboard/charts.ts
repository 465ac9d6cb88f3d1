// Golden-metric charts with uPlot (served from the installed package as
// /ui/vendor/uplot.min.js, a classic script that defines `uPlot`). A chart is
// made once per service and metric and fed new points with setData: re-creating
// it every poll would flicker and drop the user's cursor.
import { win, type El } from './dom.js';
import type { TimeSeries } from './telemetry-model.js';

interface UPlot {
  setData(data: (number | null)[][]): void;
  setSize(size: { width: number; height: number }): void;
}
type UPlotCtor = new (opts: Record<string, unknown>, data: (number | null)[][], target: El) => UPlot;

export interface ChartSpec {
  key: string;
  title: string;
  unit: string;
  /** null: no value at that step (a gap, not a zero: no requests is not 0% success). */
  series: { label: string; pick: (p: TimeSeries['points'][number]) => number | null; colour: string }[];
}

export const GOLDEN_CHARTS: readonly ChartSpec[] = [
  { key: 'rps', title: 'Requests per second', unit: 'rps', series: [{ label: 'rps', pick: (p) => p.rps, colour: '#4c6ef5' }] },
  { key: 'success', title: 'Success rate', unit: '%', series: [{ label: 'success %', pick: (p) => (p.rps > 0 ? p.successRate * 100 : null), colour: '#2f9e44' }] },
  { key: 'latency', title: 'Latency', unit: 'ms', series: [{ label: 'p50', pick: (p) => (p.rps > 0 ? p.p50Ms : null), colour: '#15aabf' }, { label: 'p99', pick: (p) => (p.rps > 0 ? p.p99Ms : null), colour: '#e8590c' }] },
];

interface Held {
  box: El;
  plot?: UPlot;
}

const held = new Map<string, Held>();
const WIDTH = 380;
const HEIGHT = 160;

/**
 * The chart element for `service` and `spec`, with `series` drawn in it. The same
 * element comes back on every call, so a re-render moves it rather than rebuilding it.
 */
export function chart(service: string, spec: ChartSpec, series: TimeSeries | undefined): El {
  const key = `${service}|${spec.key}`;
  let h = held.get(key);
  if (h === undefined) {
    const box = win.document.createElement('div');
    box.className = 'chart';
    box.dataset.chart = spec.key;
    h = { box };
    held.set(key, h);
  }
  const points = series?.points ?? [];
  const data = [points.map((p) => p.t / 1000), ...spec.series.map((s) => points.map(s.pick))];
  h.box.dataset.points = String(points.length);
  const Ctor = (globalThis as unknown as { uPlot?: UPlotCtor }).uPlot;
  if (Ctor === undefined) {
    h.box.textContent = 'chart library not loaded';
    return h.box;
  }
  if (h.plot === undefined) {
    const dark = win.matchMedia('(prefers-color-scheme: dark)').matches;
    const axis = { stroke: dark ? '#8d96a8' : '#6b7385', grid: { stroke: dark ? '#2a3142' : '#eceef3', width: 1 }, ticks: { stroke: dark ? '#2a3142' : '#eceef3' } };
    h.plot = new Ctor({
      title: spec.title,
      width: WIDTH,
      height: HEIGHT,
      scales: { x: { time: true }, y: spec.key === 'success' ? { range: [0, 100] } : { range: (_u: unknown, min: number, max: number) => [0, Math.max(max, min, 1) * 1.1] } },
      axes: [axis, { ...axis, size: 48 }],
      // Points always shown: a step with traffic between two gaps is a lone point, which a line alone would not draw.
      series: [{}, ...spec.series.map((s) => ({ label: s.label, stroke: s.colour, width: 2, points: { show: true, size: 4, fill: s.colour }, value: (_u: unknown, v: number | null) => (v === null ? '—' : `${v.toFixed(spec.unit === 'rps' ? 2 : 1)} ${spec.unit}`) }))],
      legend: { show: true },
    }, data, h.box);
  } else {
    h.plot.setData(data);
  }
  return h.box;
}

/** Forgets the charts of services no longer shown (their elements are garbage then). */
export function keepCharts(services: ReadonlySet<string>): void {
  for (const key of held.keys()) if (!services.has(key.slice(0, key.indexOf('|')))) held.delete(key);
}
