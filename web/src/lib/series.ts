/**
 * The time series behind the Overview's charts: one per queue, fed by WatchMetrics snapshots and
 * kept to a sliding window, so a tab left open for hours holds the same few hundred points.
 */

export interface Sample {
  /** Epoch milliseconds of the snapshot (the server's `captured_at`). */
  t: number;
  depth: number;
  active: number;
  completedPerSecond: number;
  failedPerSecond: number;
}

/** Appends `sample` and drops what fell out of the window; a sample not newer than the last is ignored (a replayed snapshot). */
export function pushSample(series: readonly Sample[], sample: Sample, windowMs: number): Sample[] {
  const last = series.at(-1);
  if (last && sample.t <= last.t) return series as Sample[];
  const from = sample.t - windowMs;
  const kept = series.filter((s) => s.t >= from);
  kept.push(sample);
  return kept;
}

/** uPlot's columns: x in seconds, then one array per field. */
export function columns(series: readonly Sample[], fields: readonly (keyof Omit<Sample, "t">)[]): number[][] {
  return [series.map((s) => s.t / 1000), ...fields.map((f) => series.map((s) => s[f]))];
}
