/**
 * Durations in metrics are whole nanoseconds: fractional milliseconds from the percentiles once made
 * GetMetrics fail with INTERNAL when the response was serialised.
 */
import { toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { LatencySummarySchema } from "../gen/jobs/v1/monitoring_service_pb.js";
import { ms, toLatency } from "../src/rpc/metrics-mapper.js";

describe("metric durations", () => {
  it("round fractional milliseconds to the microsecond, and serialise", () => {
    const summary = toLatency([0.0004, 12.3456789, 530.6850000004, 61_000.5], 4);
    expect(() => toBinary(LatencySummarySchema, summary)).not.toThrow();
    expect(summary.max).toMatchObject({ seconds: 61n, nanos: 500_000 });
    expect(ms(530.6850000004)).toMatchObject({ seconds: 0n, nanos: 530_685_000 });
    expect(ms(12.3456789)).toMatchObject({ seconds: 0n, nanos: 12_346_000 });
    expect(ms(undefined)).toMatchObject({ seconds: 0n, nanos: 0 });
  });
});
