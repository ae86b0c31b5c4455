// A line chart (Chart.js on a canvas) with its numbers also given as a table, so that what the
// plot shows is there for a screen reader and the keyboard too.
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
import { useEffect, useRef } from 'react';

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
  useEffect(() => {
    if (!canvas.current) return;
    const chart = new Chart(canvas.current, {
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
        scales: {
          x: { title: { display: true, text: xTitle } },
          y: { title: { display: true, text: yTitle } },
        },
      },
    });
    return () => chart.destroy();
  }, [labels, series, yTitle, xTitle]);
  return (
    <figure className="chart" data-testid={props.testId}>
      <figcaption>{props.title}</figcaption>
      <div className="chart-canvas">
        <canvas ref={canvas} role="img" aria-label={`${props.title}: line chart`} />
      </div>
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
    </figure>
  );
}
