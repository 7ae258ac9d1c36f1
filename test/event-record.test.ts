/**
 * An event carries the job as it was at that event: a CREATED event read after the job already ran
 * has no start, end, result or error of the later attempt.
 */
import { describe, expect, it } from "vitest";
import { recordAt } from "../src/engine/event-feed.js";
import type { EventRow } from "../src/engine/store/event-queries.js";
import type { JobRecord } from "../src/engine/store/job-record.js";

const now = new Date("2026-11-29T10:00:00Z");
const finished = {
  id: "j1",
  state: "completed",
  retryCount: 1,
  startedAt: new Date(now.getTime() + 2000),
  completedAt: new Date(now.getTime() + 3000),
  result: { chargeId: "ch_1" },
  lastError: { message: "gateway timed out", retryable: true, attempt: 1 },
  envelope: { payload: {}, rootJobId: "j1", principal: "svc" },
} as unknown as JobRecord;
const event = (type: string, state: string, retry = 0): EventRow => ({
  xid: "1",
  seq: 1,
  occurred_at: now,
  job_id: "j1",
  queue_name: "money/payment.process",
  type,
  state,
  previous_state: null,
  retry_count: retry,
  detail: null,
});

describe("recordAt", () => {
  it("shows a CREATED event's job as just created", () => {
    const r = recordAt(finished, event("created", "created"));
    expect(r).toMatchObject({ state: "created", retryCount: 0 });
    for (const k of ["startedAt", "completedAt", "result", "lastError", "deadLetterJobId"] as const) expect(r[k]).toBeUndefined();
  });

  it("shows a STARTED event's job started then, not finished", () => {
    const r = recordAt(finished, event("started", "active", 1));
    expect(r.startedAt).toEqual(now);
    expect(r.completedAt).toBeUndefined();
    expect(r.result).toBeUndefined();
    expect(r.lastError).toEqual(finished.lastError);
  });

  it("shows a COMPLETED event's job finished then", () => {
    expect(recordAt(finished, event("completed", "completed", 1))).toMatchObject({ completedAt: now, result: finished.result });
  });
});
