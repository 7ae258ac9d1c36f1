/**
 * The dashboard's logic, apart from the browser: job filters (URL and ListJobs request), the job
 * timeline, the charts' sliding window, and how times and numbers are written.
 */
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { JobErrorSchema, JobEventSchema, JobEventType, JobSchema, JobState } from "../gen/jobs/v1/job_pb.js";
import { failureRate, formatDuration, relativeTime } from "../web/src/lib/format.js";
import { EMPTY_FILTERS, filterProblems, filtersFromSearch, filtersToSearch, isJobId, listRequest } from "../web/src/lib/job-filters.js";
import { columns, pushSample, type Sample } from "../web/src/lib/series.js";
import { addEvent, timelineFromJob } from "../web/src/lib/timeline.js";

describe("job filters", () => {
  it("round-trip through the URL and become a ListJobs request", () => {
    const f = { ...EMPTY_FILTERS, queue: "money", type: "payment:process", state: "FAILED", idempotencyKey: "ord 1&2", deadLetters: true };
    const search = filtersToSearch(f);
    expect(search).toBe("?queue=money&type=payment%3Aprocess&state=failed&key=ord+1%262&dead=1");
    expect(filtersFromSearch(search)).toEqual(f);
    const req = listRequest(f, "tok", 25);
    expect(req).toMatchObject({
      queue: "money",
      type: "payment:process",
      states: [JobState.FAILED],
      idempotencyKey: "ord 1&2",
      includeDeadLetters: true,
      pageToken: "tok",
      pageSize: 25,
    });
    expect(filtersToSearch(EMPTY_FILTERS)).toBe("");
  });

  it("drop a state that is not one, and say what is wrong with a time range", () => {
    expect(filtersFromSearch("?state=exploded").state).toBe("");
    expect(filterProblems({ ...EMPTY_FILTERS, createdAfter: "2026-12-04T10:00", createdBefore: "2026-12-04T09:00" })).toEqual([
      "“Created after” must be earlier than “Created before”.",
    ]);
    expect(filterProblems({ ...EMPTY_FILTERS, createdAfter: "yesterday" })).toEqual(["“Created after” is not a date."]);
    const req = listRequest({ ...EMPTY_FILTERS, createdAfter: "2026-12-04T10:00" });
    expect(req.createdAfter).toEqual(timestampFromDate(new Date("2026-12-04T10:00")));
    expect(req.createdBefore).toBeUndefined();
  });

  it("tell a job id from other text", () => {
    expect(isJobId(" 2b01631c-2570-49d7-8c64-c872cc430db9 ")).toBe(true);
    expect(isJobId("2b01631c")).toBe(false);
  });
});

describe("the job timeline", () => {
  const at = (s: number) => timestampFromDate(new Date(Date.UTC(2026, 11, 4, 12, 0, s)));
  const event = (type: JobEventType, s: number, cursor: string, job: MessageInitShape<typeof JobSchema> = {}) =>
    create(JobEventSchema, { type, occurredAt: at(s), cursor, job: create(JobSchema, { ...job, id: "j" }) });

  it("orders events by when they happened, once each, without the SNAPSHOT", () => {
    let t = addEvent([], event(JobEventType.SNAPSHOT, 0, "c0"));
    expect(t).toEqual([]);
    t = addEvent(t, event(JobEventType.COMPLETED, 5, "c3", { state: JobState.COMPLETED }));
    t = addEvent(t, event(JobEventType.STARTED, 2, "c2", { state: JobState.ACTIVE }));
    t = addEvent(t, event(JobEventType.STARTED, 2, "c2", { state: JobState.ACTIVE })); // replayed after a reconnect
    expect(t.map((e) => e.label)).toEqual(["Attempt started", "Completed"]);
  });

  it("says why an attempt failed, and what progress said", () => {
    const failed = event(JobEventType.RETRY_SCHEDULED, 3, "c4", {
      state: JobState.RETRY,
      lastError: create(JobErrorSchema, { message: "gateway timeout", reason: "GATEWAY_TIMEOUT", attempt: 1 }),
    });
    const progress = event(JobEventType.PROGRESS, 1, "c1", { state: JobState.ACTIVE, progress: { percent: 40, message: "page 4" } });
    const t = addEvent(addEvent([], failed), progress);
    expect(t.map((e) => [e.label, e.detail])).toEqual([
      ["Progress", "40% · page 4"],
      ["Attempt failed, retry scheduled", "GATEWAY_TIMEOUT: gateway timeout"],
    ]);
  });

  it("tells a finished job's story from its fields", () => {
    const job = create(JobSchema, {
      id: "j",
      state: JobState.FAILED,
      retryCount: 2,
      createdAt: at(0),
      startedAt: at(10),
      completedAt: at(11),
      createdBy: "checkout",
      lastError: create(JobErrorSchema, { message: "card declined", reason: "CARD_DECLINED", attempt: 3, occurredAt: at(11) }),
    });
    expect(timelineFromJob(job).map((e) => [e.label, e.attempt, e.detail])).toEqual([
      ["Added", 1, "by checkout"],
      ["Attempt started", 3, "attempt 3"],
      ["Failed", 3, "CARD_DECLINED: card declined"],
    ]);
  });
});

describe("chart series", () => {
  const s = (t: number, depth = 1): Sample => ({ t, depth, active: 0, completedPerSecond: 0, failedPerSecond: 0 });
  it("keep the window, ignore a replayed sample, and give uPlot its columns", () => {
    let series: Sample[] = [];
    for (const t of [0, 1000, 2000, 3000]) series = pushSample(series, s(t, t / 1000), 2000);
    expect(series.map((x) => x.t)).toEqual([1000, 2000, 3000]);
    expect(pushSample(series, s(3000, 99), 2000)).toBe(series);
    expect(columns(series, ["depth"])).toEqual([
      [1, 2, 3],
      [1, 2, 3],
    ]);
  });
});

describe("formatting", () => {
  it("writes times, durations and failure rates for people", () => {
    const now = new Date("2026-12-04T12:00:00Z");
    expect(relativeTime(new Date("2026-12-04T11:59:30Z"), now)).toBe("30 seconds ago");
    expect(relativeTime(new Date("2026-12-04T12:05:00Z"), now)).toBe("in 5 minutes");
    expect(relativeTime(now, now)).toBe("now");
    expect(formatDuration(850)).toBe("850 ms");
    expect(formatDuration(200_000)).toBe("3 min 20 s");
    expect(formatDuration(600_000)).toBe("10 min");
    expect(formatDuration(10_000)).toBe("10 s");
    expect(formatDuration(14 * 86_400_000)).toBe("14 days");
    expect(failureRate(0, 0)).toBe("–");
    expect(failureRate(95, 5)).toBe("5.0%");
  });
});
