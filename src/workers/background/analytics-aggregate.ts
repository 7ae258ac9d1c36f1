/**
 * `analytics:aggregate`: rolls job activity up into per-minute statistics. A range before the data
 * still kept (the events' retention for minutes, the minutes' for hours) is refused to service
 * principals and cut to what is kept for admins, so nobody can replace rollups with emptiness.
 */
import { z } from "zod";
import { type Analytics, rollupHorizon } from "../../engine/analytics.js";
import type { Processor } from "../../engine/processor.js";
import type { JobTypeDefinition } from "../../engine/registry.js";
import { rfc3339 } from "../payload-fields.js";

/** The payload of `analytics:aggregate`. */
export const analyticsPayload = z
  .strictObject({
    from: rfc3339.optional(),
    to: rfc3339.optional(),
    bucket: z.enum(["minute", "hour"], { error: "must be minute or hour" }).optional(),
  })
  .refine((p) => p.from === undefined || p.to === undefined || Date.parse(p.from) < Date.parse(p.to), { message: "must be after from", path: ["to"] });

export type AnalyticsPayload = z.infer<typeof analyticsPayload>;

/** The `analytics:aggregate` job type. */
export const analyticsAggregate: JobTypeDefinition<AnalyticsPayload> = {
  type: "analytics:aggregate",
  queue: "background",
  payload: analyticsPayload,
  admit(payload, caller) {
    if (caller.admin || payload.from === undefined) return [];
    const horizon = rollupHorizon(payload.bucket ?? "minute", caller.now, caller.eventRetentionSeconds);
    if (Date.parse(payload.from) >= horizon.getTime()) return [];
    const kept = payload.bucket === "hour" ? "minute rollups" : "job events";
    return [
      {
        path: ["from"],
        description: `must not be before ${horizon.toISOString()}: older ${payload.bucket ?? "minute"}s cannot be recomputed (the ${kept} they come from are no longer kept)`,
        reason: "OUT_OF_RANGE",
      },
    ];
  },
};

/** Rolls up job activity for the payload's range (default: the minutes since the last run). */
export function analyticsProcessor(analytics: Analytics): Processor<AnalyticsPayload> {
  return {
    definition: analyticsAggregate,
    async process(ctx) {
      const p = ctx.payload;
      const done = await analytics.rollup({ from: p.from ? new Date(p.from) : undefined, to: p.to ? new Date(p.to) : undefined, bucket: p.bucket });
      return {
        from: done.from.toISOString(),
        to: done.to.toISOString(),
        minutes: done.minutes,
        hours: done.hours,
        rolledThrough: done.rolledThrough?.toISOString() ?? null,
      };
    },
  };
}
