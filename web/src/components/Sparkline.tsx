/** A small time-series chart (uPlot): one or two lines over the Overview's window. */
import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export function Sparkline({ data, labels, height = 48, title }: { data: number[][]; labels: string[]; height?: number; title: string }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = `${labels.join(",")}:${height}`;
  // biome-ignore lint/correctness/useExhaustiveDependencies: rebuilt only when the series change shape (`shape`); new points go through setData below.
  useEffect(() => {
    if (!box.current) return;
    const colors = ["#3b82f6", "#ef4444", "#10b981"];
    plot.current = new uPlot(
      {
        width: box.current.clientWidth || 200,
        height,
        legend: { show: false },
        cursor: { show: false },
        axes: [{ show: false }, { show: false }],
        scales: { x: { time: true } },
        series: [{}, ...labels.map((label, i) => ({ label, stroke: colors[i % colors.length], width: 1.5, points: { show: false } }))],
      },
      data as uPlot.AlignedData,
      box.current,
    );
    return () => {
      plot.current?.destroy();
      plot.current = null;
    };
  }, [shape]);
  useEffect(() => {
    plot.current?.setData(data as uPlot.AlignedData);
  }, [data]);
  return <div ref={box} className="sparkline" role="img" aria-label={title} />;
}
