/**
 * The dispatcher's pure parts, without a database: the outcome table (what an attempt's end means
 * for its job), the statement batcher (how concurrent writes share statements), and the watch rules
 * (log order, snapshot visibility, the events that end a watch).
 */
import { describe, expect, it } from "vitest";
import { createBatcher } from "../src/db/statement-batcher.js";
import { MAX_ERROR_MESSAGE, outcomeOf } from "../src/engine/dispatch/outcomes.js";
import { type FeedEvent, visibleIn, xminOf } from "../src/engine/event-feed.js";
import { comparePositions, endsWatch } from "../src/engine/job-watch.js";
import { PermanentJobError, RetryableJobError } from "../src/engine/processor.js";

const at = new Date("2026-12-04T12:00:00Z");
const end = (over: Partial<Parameters<typeof outcomeOf>[0]>) =>
  outcomeOf({ threw: false, sideEffect: false, attempt: 1, retryCount: 0, retryLimit: 3, at, ...over });

describe("the outcome of an attempt", () => {
  it("completes a returned attempt with its result, unless its lease was lost", () => {
    expect(end({ result: { ok: 1 } })).toEqual({ kind: "completed", result: { ok: 1 } });
    expect(end({})).toEqual({ kind: "completed", result: {} });
    expect(end({ result: { ok: 1 }, stop: "lease-lost" })).toEqual({ kind: "lease-lost" });
    // A cancel that arrived after the work was done changes nothing: the result stands.
    expect(end({ result: { ok: 1 }, stop: "cancel-requested" })).toEqual({ kind: "completed", result: { ok: 1 } });
  });

  it("cancels an attempt stopped by a cancel before its side effect, never after", () => {
    const before = end({ threw: true, error: new DOMException("aborted", "AbortError"), stop: "cancel-requested" });
    expect(before).toMatchObject({ kind: "cancelled", failure: { reason: "CANCELLED", retryable: false, attempt: 1 } });
    const after = end({ threw: true, error: new RetryableJobError("provider timed out", "PROVIDER_TIMEOUT"), stop: "cancel-requested", sideEffect: true });
    expect(after).toMatchObject({ kind: "failed", permanent: false, lastAttempt: false, failure: { reason: "PROVIDER_TIMEOUT", retryable: true } });
    // A permanent failure is one, cancel or not.
    expect(end({ threw: true, error: new PermanentJobError("declined", "CARD_DECLINED"), stop: "cancel-requested" })).toMatchObject({
      kind: "failed",
      permanent: true,
    });
  });

  it("fails permanently on a PermanentJobError whatever retries are left; retries anything else while it may", () => {
    expect(end({ threw: true, error: new PermanentJobError("declined", "CARD_DECLINED") })).toEqual({
      kind: "failed",
      permanent: true,
      lastAttempt: true,
      failure: { message: "declined", reason: "CARD_DECLINED", retryable: false, attempt: 1, occurredAt: at.toISOString() },
    });
    expect(end({ threw: true, error: new Error("bug") })).toMatchObject({
      kind: "failed",
      permanent: false,
      lastAttempt: false,
      failure: { reason: "ERROR", retryable: true },
    });
    expect(end({ threw: true, error: new Error("bug"), attempt: 4, retryCount: 3, retryLimit: 3 })).toMatchObject({
      kind: "failed",
      lastAttempt: true,
      failure: { attempt: 4 },
    });
    expect(end({ threw: true, error: "a string" })).toMatchObject({ failure: { message: "a string", reason: "ERROR" } });
  });

  it("names expiries and shutdowns, and cuts long messages", () => {
    expect(end({ threw: true, error: new Error("aborted"), stop: "expired" })).toMatchObject({ failure: { reason: "JOB_EXPIRED", retryable: true } });
    expect(end({ threw: true, error: new Error("aborted"), stop: "shutting-down" })).toMatchObject({ failure: { reason: "INTERRUPTED", retryable: true } });
    const long = end({ threw: true, error: new Error("x".repeat(5000)) });
    expect(long.kind === "failed" && long.failure.message.length).toBe(MAX_ERROR_MESSAGE + 3);
  });
});

describe("the statement batcher", () => {
  it("runs one batch at once when idle, then gathers the calls made meanwhile into the next", async () => {
    const batches: number[][] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const add = createBatcher<number, number>({
      maxBatch: 3,
      run: async (items) => {
        batches.push(items);
        if (batches.length === 1) await gate;
        return items.map((i) => i * 10);
      },
    });
    const first = add(1);
    await Promise.resolve();
    await Promise.resolve();
    const later = [2, 3, 4, 5].map((i) => add(i));
    release();
    expect(await Promise.all([first, ...later])).toEqual([10, 20, 30, 40, 50]);
    expect(batches).toEqual([[1], [2, 3, 4], [5]]);
  });

  it("fails every call of a batch that fails, and only those", async () => {
    const add = createBatcher<number, number>({ maxBatch: 10, run: async (items) => (items.includes(13) ? Promise.reject(new Error("unlucky")) : items) });
    const results = await Promise.allSettled([add(12), add(13)]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    expect(await add(14)).toBe(14);
  });
});

describe("the watch rules", () => {
  const ev = (type: string, xid: string, seq: number) => ({ position: { xid, seq }, row: { type, xid, seq } }) as unknown as FeedEvent;

  it("order positions by transaction, then sequence (as 64-bit numbers)", () => {
    expect(comparePositions({ xid: "9", seq: 5 }, { xid: "10", seq: 1 })).toBeLessThan(0);
    expect(comparePositions({ xid: "18446744073709551000", seq: 1 }, { xid: "18446744073709550999", seq: 9 })).toBeGreaterThan(0);
    expect(comparePositions({ xid: "10", seq: 2 }, { xid: "10", seq: 2 })).toBe(0);
  });

  it("tell a transaction a snapshot saw from one it did not", () => {
    const snapshot = "100:110:103,107";
    expect(visibleIn(snapshot, "99")).toBe(true);
    expect(visibleIn(snapshot, "105")).toBe(true);
    expect(visibleIn(snapshot, "103")).toBe(false);
    expect(visibleIn(snapshot, "110")).toBe(false);
    expect(xminOf(snapshot)).toBe(100n);
    expect(xminOf("18446744073709551000:18446744073709551000:")).toBe(18446744073709551000n);
  });

  it("end a watch after the final event; a failure followed by its dead letter ends with the dead letter", () => {
    expect(endsWatch([ev("completed", "5", 1)], 0)).toBe(true);
    expect(endsWatch([ev("retry_scheduled", "5", 1)], 0)).toBe(false);
    const failed = [ev("failed", "7", 1), ev("dead_lettered", "7", 2)];
    expect(endsWatch(failed, 0)).toBe(false);
    expect(endsWatch(failed, 1)).toBe(true);
    expect(endsWatch([ev("failed", "7", 1)], 0)).toBe(true);
    expect(endsWatch([ev("purged", "8", 1)], 0)).toBe(true);
  });
});
