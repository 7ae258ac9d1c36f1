/**
 * Request fields every service reads the same way: ids, page sizes, windows and durations, the queue
 * a request names, and who is calling. Each throws INVALID_ARGUMENT naming the field.
 */
import type { Duration, FieldMask } from "@bufbuild/protobuf/wkt";
import type { HandlerContext } from "@connectrpc/connect";
import type { JobRegistry, QueueDefinition, Viewer } from "../engine/index.js";
import { ValidationError } from "../engine/index.js";
import { principalOf } from "./call-context.js";

/** ListJobs page sizes. */
export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether `id` is a UUID (any case). */
export const isUuid = (id: string): boolean => uuidPattern.test(id);

/** Throws INVALID_ARGUMENT unless `id` is a UUID. */
export function requireUuid(id: string, field = "id"): string {
  if (!id) throw new ValidationError([{ field, description: "is required", reason: "REQUIRED" }]);
  if (!uuidPattern.test(id)) throw new ValidationError([{ field, description: "must be a UUID", reason: "INVALID_FORMAT" }]);
  return id.toLowerCase();
}

/** The page size of a request: 0 is the default, more than the maximum is the maximum. */
export function pageSizeOf(requested: number, field = "page_size", defaultSize = DEFAULT_PAGE_SIZE, max = MAX_PAGE_SIZE): number {
  if (requested < 0) throw new ValidationError([{ field, description: "must not be negative", reason: "OUT_OF_RANGE" }]);
  return requested === 0 ? defaultSize : Math.min(requested, max);
}

/** The viewer of a call. */
export function viewerOf(ctx: HandlerContext): Viewer {
  const p = principalOf(ctx);
  return { name: p.name, admin: p.role === "admin" };
}

/** Default and bounds of GetQueueStats' window. */
export const DEFAULT_STATS_WINDOW_SECONDS = 24 * 60 * 60;
export const MAX_STATS_WINDOW_SECONDS = 30 * 24 * 60 * 60;

/** The window of a stats request, in whole seconds. */
export function windowSecondsOf(
  window: Duration | undefined,
  field = "window",
  defaultSeconds = DEFAULT_STATS_WINDOW_SECONDS,
  min = 1,
  max = MAX_STATS_WINDOW_SECONDS,
): number {
  if (!window) return defaultSeconds;
  const seconds = Number(window.seconds) + window.nanos / 1e9;
  if (!(seconds >= min && seconds <= max)) {
    throw new ValidationError([{ field, description: `must be from ${min} s to ${max} s`, reason: "OUT_OF_RANGE" }]);
  }
  return Math.round(seconds);
}

/** The queue named by a request field, or INVALID_ARGUMENT. */
export function requireQueue(registry: JobRegistry, name: string, field = "queue"): QueueDefinition {
  if (!name) throw new ValidationError([{ field, description: "is required", reason: "REQUIRED" }]);
  const queue = registry.queue(name);
  if (!queue)
    throw new ValidationError([{ field, description: `is not a queue (one of: ${registry.queues.map((q) => q.name).join(", ")})`, reason: "UNKNOWN_QUEUE" }]);
  return queue;
}

/** A Duration in milliseconds (nanoseconds rounded). */
export function durationMsOf(d: Duration): number {
  return Number(d.seconds) * 1000 + Math.round(d.nanos / 1e6);
}

/** The paths of an update's `update_mask`: at least one, each one `allowed` (else INVALID_ARGUMENT on `update_mask`). */
export function requireMask(mask: FieldMask | undefined, allowed: (path: string) => boolean): string[] {
  const paths = mask?.paths ?? [];
  if (paths.length === 0) throw new ValidationError([{ field: "update_mask", description: "must name at least one field", reason: "REQUIRED" }]);
  const bad = paths.filter((p) => !allowed(p));
  if (bad.length > 0) throw new ValidationError(bad.map((p) => ({ field: "update_mask", description: `cannot change ${p}`, reason: "INVALID_FIELD_MASK" })));
  return paths;
}
