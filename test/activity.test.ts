/**
 * The activity histogram's arithmetic: a duration's bin read back within the stated bound, and
 * nearest-rank percentiles over bins.
 */
import { describe, expect, it } from "vitest";
import { binOfMs, binValueMs, combine, HISTOGRAM_RELATIVE_ERROR, type Histogram, maxOf, quantile } from "../src/engine/activity.js";

const histogramOf = (values: number[]): Histogram => {
  const bins = new Map<number, number>();
  for (const v of values) bins.set(binOfMs(v), (bins.get(binOfMs(v)) ?? 0) + 1);
  return { count: values.length, bins: [...bins].sort((a, b) => a[0] - b[0]) };
};

describe("activity histograms", () => {
  it("read a duration back within the relative bound, from a microsecond to days", () => {
    expect(HISTOGRAM_RELATIVE_ERROR).toBeLessThan(0.022);
    for (let v = 0.001; v < 5 * 86_400_000; v *= 1.0137) {
      const back = binValueMs(binOfMs(v));
      expect(Math.abs(back - v) / v, `${v} ms`).toBeLessThanOrEqual(HISTOGRAM_RELATIVE_ERROR + 1e-12); // + float rounding at a bin edge
    }
    expect(binOfMs(0)).toBe(0);
    expect(binOfMs(-5)).toBe(0);
    expect(binOfMs(0.0009)).toBe(0);
    expect(binValueMs(0)).toBe(0);
  });

  it("take nearest-rank percentiles over the bins", () => {
    const values = [100, 200, 400, 50];
    const h = histogramOf(values);
    expect(quantile({ count: 0, bins: [] }, 50)).toBeUndefined();
    expect(maxOf({ count: 0, bins: [] })).toBeUndefined();
    // Sorted 50, 100, 200, 400: p50 is the 2nd, p90 and p99 the 4th.
    expect(quantile(h, 50)).toBe(binValueMs(binOfMs(100)));
    expect(quantile(h, 25)).toBe(binValueMs(binOfMs(50)));
    expect(quantile(h, 90)).toBe(binValueMs(binOfMs(400)));
    expect(maxOf(h)).toBe(binValueMs(binOfMs(400)));
    // Ranks count every duration of a bin, not bins.
    const skewed = histogramOf([...Array.from({ length: 98 }, () => 10), 1000, 5000]);
    expect(quantile(skewed, 98)).toBe(binValueMs(binOfMs(10)));
    expect(quantile(skewed, 99)).toBe(binValueMs(binOfMs(1000)));
    expect(quantile(skewed, 100)).toBe(binValueMs(binOfMs(5000)));
  });

  it("combine counts and histograms", () => {
    const a = { ...combine([]), completed: 2, wait: histogramOf([1, 2]), run: histogramOf([10]) };
    const b = { ...combine([]), completed: 3, failed: 1, wait: histogramOf([2, 4]), run: histogramOf([]) };
    const c = combine([a, b]);
    expect(c).toMatchObject({ completed: 5, failed: 1, added: 0 });
    expect(c.wait).toEqual(histogramOf([1, 2, 2, 4]));
    expect(c.run).toEqual(histogramOf([10]));
  });
});
