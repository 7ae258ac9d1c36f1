/**
 * Durations in metrics are whole nanoseconds: fractional milliseconds from the percentiles once made
 * GetMetrics fail with INTERNAL when the response was serialised.
 */
import { toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { LatencySummarySchema } from "../gen/jobs/v1/monitoring_service_pb.js";
import { binOfMs, HISTOGRAM_RELATIVE_ERROR } from "../src/engine/activity.js";
import { ms, toLatency } from "../src/rpc/metrics-mapper.js";

describe("metric durations", () => {
  it("round fractional milliseconds to the microsecond, and serialise", () => {
    const bins = [0.0004, 12.3456789, 530.6850000004, 61_000.5].map((v): [number, number] => [binOfMs(v), 1]);
    const summary = toLatency({ count: 4, bins });
    expect(() => toBinary(LatencySummarySchema, summary)).not.toThrow();
    const max = Number(summary.max!.seconds) * 1000 + summary.max!.nanos / 1e6;
    expect(summary.max!.nanos % 1000).toBe(0);
    expect(Math.abs(max - 61_000.5) / 61_000.5).toBeLessThanOrEqual(HISTOGRAM_RELATIVE_ERROR);
    expect(ms(530.6850000004)).toMatchObject({ seconds: 0n, nanos: 530_685_000 });
    expect(ms(12.3456789)).toMatchObject({ seconds: 0n, nanos: 12_346_000 });
    expect(ms(undefined)).toMatchObject({ seconds: 0n, nanos: 0 });
  });
});
