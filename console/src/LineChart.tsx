// Line charts (Chart.js on a canvas) with their numbers also given as a table, so that what the
// plot shows is there for a screen reader and the keyboard too. `LineChart` puts its series on
// one axis (values of one unit); `SmallMultiplesChart` gives each series its own plot and axis,
// so that a measure on 0–1 is not flattened beside one that runs to 20.
import {
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
} from 'chart.js';
import { RefObject, useEffect, useMemo, useRef } from 'react';

Chart.register(
  LineController,
  LineElement,
  PointElement,
  LinearScale,
  CategoryScale,
  Tooltip,
  Legend,
);

export interface Series {
  label: string;
  values: (number | null)[];
  /** The table's cells, when they say more than the plotted number (a value given as a bound). */
  texts?: string[];
  color: string;
}

/** A y-axis: its title, and fixed ends where the measure has them (an AUC lies in 0–1). */
interface YAxis {
  title: string;
  min?: number;
  max?: number;
}

/**
 * Draws `series` on `canvas` over `labels` and keeps the chart while they stay the same. The
 * y-axis the chart settled on is written on the canvas (data-y-min, data-y-max), so that what
 * range a reader sees can be checked without reading pixels.
 */
function useLineChart(
  canvas: RefObject<HTMLCanvasElement | null>,
  labels: string[],
  series: Series[],
  xTitle: string,
  y: YAxis,
) {
  const { title: yTitle, min, max } = y;
  useEffect(() => {
    const element = canvas.current;
    if (!element) return;
    const chart = new Chart(element, {
      type: 'line',
      data: {
        labels,
        datasets: series.map((s) => ({
          label: s.label,
          data: s.values,
          borderColor: s.color,
          backgroundColor: s.color,
          spanGaps: true,
          tension: 0.2,
        })),
      },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        plugins: { legend: { display: series.length > 1 } },
        scales: {
          x: { title: { display: true, text: xTitle } },
          y: { title: { display: true, text: yTitle }, min, max },
        },
      },
    });
    const axis = chart.scales.y;
    if (axis) {
      element.dataset.yMin = String(axis.min);
      element.dataset.yMax = String(axis.max);
    }
    return () => chart.destroy();
  }, [canvas, labels, series, xTitle, yTitle, min, max]);
}

/** The numbers behind a chart: one row per label, one column per series. */
function NumbersTable({
  labels,
  series,
  xTitle,
}: {
  labels: string[];
  series: { label: string; values: (number | null)[]; texts?: string[] }[];
  xTitle: string;
}) {
  return (
    <details>
      <summary>The numbers behind the chart</summary>
      <div className="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">{xTitle}</th>
              {series.map((s) => (
                <th scope="col" key={s.label}>
                  {s.label}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {labels.map((l, i) => (
              <tr key={`${l}-${i}`}>
                <th scope="row">{l}</th>
                {series.map((s) => (
                  <td key={s.label}>{s.texts?.[i] ?? s.values[i] ?? '—'}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </details>
  );
}

export function LineChart(props: {
  title: string;
  labels: string[];
  series: Series[];
  yTitle: string;
  xTitle: string;
  testId?: string;
}) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const { labels, series, yTitle, xTitle } = props;
  useLineChart(canvas, labels, series, xTitle, { title: yTitle });
  return (
    <figure className="chart" data-testid={props.testId}>
      <figcaption>{props.title}</figcaption>
      <div className="chart-canvas">
        <canvas ref={canvas} role="img" aria-label={`${props.title}: line chart`} />
      </div>
      <NumbersTable labels={labels} series={series} xTitle={xTitle} />
    </figure>
  );
}

/** One plot of a SmallMultiplesChart: a series on its own axis. */
export interface Panel {
  series: Series;
  /** The plot's heading, which names the measure and its scale. */
  title: string;
  y: YAxis;
  /** Said instead of an empty plot when the series has no value at all. */
  none: string;
  /** The id of text that says more about the measure (what an ε means). */
  describedBy?: string;
}

export function SmallMultiplesChart(props: {
  title: string;
  labels: string[];
  panels: Panel[];
  xTitle: string;
  /** Columns of the table that have no plot of their own (counts beside the measures). */
  tableOnly?: { label: string; values: (number | null)[] }[];
  testId?: string;
}) {
  const { labels, panels, xTitle } = props;
  return (
    <figure className="chart" data-testid={props.testId}>
      <figcaption>{props.title}</figcaption>
      <div className="chart-panels">
        {panels.map((p) => (
          <ChartPanel key={p.series.label} panel={p} labels={labels} xTitle={xTitle} />
        ))}
      </div>
      <NumbersTable
        labels={labels}
        series={[...panels.map((p) => p.series), ...(props.tableOnly ?? [])]}
        xTitle={xTitle}
      />
    </figure>
  );
}

function ChartPanel({ panel, labels, xTitle }: { panel: Panel; labels: string[]; xTitle: string }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  // Redrawn only when the series does: a new array each render would redraw every render.
  const series = useMemo(() => [panel.series], [panel.series]);
  const empty = panel.series.values.every((v) => v === null);
  // With no value the canvas is not there, and the hook draws nothing.
  useLineChart(canvas, labels, series, xTitle, panel.y);
  return (
    <section className="chart-panel" data-panel={panel.series.label}>
      <h4>{panel.title}</h4>
      {empty ? (
        <p className="muted">{panel.none}</p>
      ) : (
        <div className="chart-canvas small">
          <canvas
            ref={canvas}
            role="img"
            aria-label={`${panel.title}: line chart`}
            aria-describedby={panel.describedBy}
          />
        </div>
      )}
    </section>
  );
}
