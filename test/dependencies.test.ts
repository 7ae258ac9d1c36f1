/**
 * Job dependencies: a flow of 1,000 jobs (a tree with fan-in) added in one AddJobs runs every job only
 * after all its parents completed (read from the jobs' own times in the database); a failed or
 * cancelled parent cancels its waiting descendants naming the parent, or runs them with
 * PARENT_FAILURE_POLICY_RUN; WAITING shows in GetJob, ListJobs, stats and the event streams; bad
 * parents are refused naming the field, with nothing written. A real external worker (the TypeScript
 * SDK) runs the jobs over WorkerService. (AddJobs is an admin's call, so flows are added by an admin.)
 */
import { createWorker, PermanentJobError, type QueueWorker } from "@queue-service/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type JobEvent, JobEventType, JobState, ParentFailurePolicy } from "../gen/jobs/v1/job_pb.js";
import { type AddJobRequest, JobService } from "../gen/jobs/v1/job_service_pb.js";
import { MonitoringService } from "../gen/jobs/v1/monitoring_service_pb.js";
import { QueueService } from "../gen/jobs/v1/queue_service_pb.js";
import { client } from "./support/clients.js";
import { testDatabase } from "./support/database.js";
import { Code, failure, violations } from "./support/errors.js";
import { startTestService, type TestService, tokens } from "./support/service.js";
import { eventually, waitForJob } from "./support/wait.js";

const db = testDatabase();
let svc: TestService;
let worker: QueueWorker | undefined;
const api = (token: string) => ({
  jobs: client(JobService, svc.baseUrl, { protocol: "grpc", token }),
  queues: client(QueueService, svc.baseUrl, { protocol: "grpc", token }),
  monitoring: client(MonitoringService, svc.baseUrl, { protocol: "grpc", token }),
});
const TYPE = "flow:step";
const step = (payload: Record<string, unknown> = {}, options: AddJobRequest["options"] = undefined) => ({ type: TYPE, payload, options }) as AddJobRequest;
const missing = "7d4f0a52-3f6e-4c59-9a0e-2f1d3c4b5a69";

beforeAll(async () => {
  svc = await startTestService(db);
  const admin = api(tokens.admin);
  await admin.queues.createQueue({ queue: { name: "flows", policy: { retryLimit: 0 } } });
  await admin.queues.registerJobType({
    jobType: { name: TYPE, queue: "flows", payloadSchema: { type: "object" }, producers: ["svc-a", "svc-b"], workers: ["wrk-a"] },
  });
  worker = createWorker<{ fail?: boolean; hold?: boolean }>({
    baseUrl: svc.baseUrl,
    token: tokens.workerA,
    types: [TYPE],
    concurrency: 20,
    pollWaitMs: 2000,
    onError: () => {},
    handler: async (job) => {
      if (job.payload.fail) throw new PermanentJobError("the step failed", "STEP_FAILED");
      return { ok: true };
    },
  });
});
afterAll(async () => {
  await worker?.stop();
  await svc?.stop();
  await db.drop();
});

/** Jobs of the flows queue in the database. */
async function jobCount(): Promise<number> {
  const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${db.bossSchema}".job WHERE name LIKE 'flows/%'`);
  return rows[0]!.n;
}

describe("job dependencies", () => {
  it("run a flow of 1,000 jobs added in one AddJobs only after every parent completed", async () => {
    const { jobs } = api(tokens.admin);
    // A tree with fan-in: 40 roots, then each job waits for one to three earlier ones.
    let seed = 42;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const entries = Array.from({ length: 1000 }, (_, i) => {
      if (i < 40) return step({ i });
      const parents = new Set<number>();
      const n = 1 + Math.floor(random() * 3);
      while (parents.size < n) parents.add(Math.floor(random() * i));
      return step({ i }, { dependsOnBatchIndexes: [...parents] } as AddJobRequest["options"]);
    });
    const { results } = await jobs.addJobs({ jobs: entries });
    expect(results).toHaveLength(1000);
    const ids = results.map((r) => r.job!.id);
    results.slice(40).forEach((r, k) => {
      const i = k + 40;
      expect(r.job!.dependsOn).toEqual(entries[i]!.options!.dependsOnBatchIndexes.map((p) => ids[p]));
      expect(r.job!.onParentFailure).toBe(ParentFailurePolicy.CANCEL);
    });
    // Children were added waiting (those whose parents could not have finished yet at least).
    expect(results.filter((r) => r.job!.state === JobState.WAITING).length).toBeGreaterThan(900);

    await eventually(
      async () => {
        const { rows } = await db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM "${db.bossSchema}".job WHERE id = ANY($1::uuid[]) AND state = 'completed'`,
          [ids],
        );
        return rows[0]!.n === 1000;
      },
      "every job of the flow completed",
      120_000,
    );

    // Every child started after each of its parents had completed (database times, one clock).
    const { rows: early } = await db.query(
      `SELECT d.child_id, d.parent_id FROM "${db.schema}".job_dependency d
       JOIN "${db.bossSchema}".job c ON c.id = d.child_id JOIN "${db.bossSchema}".job p ON p.id = d.parent_id
       WHERE d.child_id = ANY($1::uuid[]) AND c.started_on < p.completed_on`,
      [ids],
    );
    expect(early).toEqual([]);
    const { rows: edges } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${db.schema}".job_dependency WHERE child_id = ANY($1::uuid[])`, [
      ids,
    ]);
    expect(edges[0]!.n).toBe(entries.reduce((n, e) => n + (e.options?.dependsOnBatchIndexes.length ?? 0), 0));
    // Each child's events: added WAITING, then RELEASED, STARTED, COMPLETED.
    const { rows: events } = await db.query<{ types: string[] }>(
      `SELECT array_agg(type::text ORDER BY seq) AS types FROM "${db.schema}".job_event WHERE job_id = $1`,
      [ids[999]],
    );
    expect(events[0]!.types).toEqual(["waiting", "released", "started", "completed"]);
  });

  it("cancel the descendants of a failed parent, naming it, and run the children with PARENT_FAILURE_POLICY_RUN", async () => {
    const { jobs } = api(tokens.admin);
    const run = ParentFailurePolicy.RUN;
    const { results } = await jobs.addJobs({
      jobs: [
        step({ fail: true }), // 0: fails
        step({}, { dependsOnBatchIndexes: [0] } as AddJobRequest["options"]), // 1: cancelled for 0
        step({}, { dependsOnBatchIndexes: [1] } as AddJobRequest["options"]), // 2: cancelled for 1
        step({}, { dependsOnBatchIndexes: [0], onParentFailure: run } as AddJobRequest["options"]), // 3: runs
        step({}, { dependsOnBatchIndexes: [1], onParentFailure: run } as AddJobRequest["options"]), // 4: runs after 1's cancel
        step({}, { dependsOnBatchIndexes: [3, 2], onParentFailure: run } as AddJobRequest["options"]), // 5: runs
      ],
    });
    const [a, b, c, d, e, f] = results.map((r) => r.job!.id);
    const done = (j: { state: JobState }) => [JobState.COMPLETED, JobState.CANCELLED, JobState.FAILED].includes(j.state);
    const [jb, jc, jd, je, jf] = await Promise.all([b, c, d, e, f].map((id) => waitForJob(jobs, id!, done, `job ${id} finished`)));
    expect((await jobs.getJob({ id: a! })).job!.state).toBe(JobState.FAILED);
    expect(jb!.state).toBe(JobState.CANCELLED);
    expect(jb!.lastError).toMatchObject({ reason: "PARENT_FAILED", message: `parent job ${a} failed`, retryable: false });
    expect(jc!.state).toBe(JobState.CANCELLED);
    expect(jc!.lastError).toMatchObject({ reason: "PARENT_FAILED", message: `parent job ${b} was cancelled` });
    expect(jd!.state).toBe(JobState.COMPLETED);
    expect(je!.state).toBe(JobState.COMPLETED);
    expect(jf!.state).toBe(JobState.COMPLETED);
    // A cancelled parent (CancelJob) cancels its waiting child the same way.
    const { job: held } = await jobs.addJob(step({}, { schedule: { case: "delay", value: { seconds: 3600n, nanos: 0 } } } as AddJobRequest["options"]));
    const { job: child } = await jobs.addJob(step({}, { dependsOn: [held!.id] } as AddJobRequest["options"]));
    expect(child!.state).toBe(JobState.WAITING);
    await api(tokens.admin).jobs.cancelJob({ id: held!.id });
    expect((await jobs.getJob({ id: child!.id })).job).toMatchObject({ state: JobState.CANCELLED, lastError: { reason: "PARENT_FAILED" } });
    // An admin's RetryJob of a job cancelled for its parent runs it at once; so does one of a waiting
    // job cancelled by CancelJob (it no longer waits).
    await jobs.retryJob({ id: child!.id });
    await waitForJob(jobs, child!.id, (j) => j.state === JobState.COMPLETED, "the retried child ran");
    const { job: heldToo } = await jobs.addJob(step({}, { schedule: { case: "delay", value: { seconds: 3600n, nanos: 0 } } } as AddJobRequest["options"]));
    const { job: waiting } = await jobs.addJob(step({}, { dependsOn: [heldToo!.id] } as AddJobRequest["options"]));
    expect((await jobs.cancelJob({ id: waiting!.id })).job!.state).toBe(JobState.CANCELLED);
    await jobs.retryJob({ id: waiting!.id });
    await waitForJob(jobs, waiting!.id, (j) => j.state === JobState.COMPLETED, "the retried waiting job ran");
    await jobs.cancelJob({ id: heldToo!.id });
  });

  it("cancel a chain of 1,000 waiting jobs when its first job fails, each naming its own parent (no nesting limit)", async () => {
    const { jobs } = api(tokens.admin);
    const chain = [step({ fail: true }), ...Array.from({ length: 999 }, (_, i) => step({ i }, { dependsOnBatchIndexes: [i] } as AddJobRequest["options"]))];
    const ids = (await jobs.addJobs({ jobs: chain })).results.map((r) => r.job!.id);
    await waitForJob(jobs, ids[999]!, (j) => j.state === JobState.CANCELLED, "the end of the chain cancelled", 60_000);
    const { rows } = await db.query<{ id: string; state: string; parent: string }>(
      `SELECT id::text, state::text, output ->> 'parentJobId' AS parent FROM "${db.bossSchema}".job WHERE id = ANY($1::uuid[])`,
      [ids.slice(1)],
    );
    const byId = new Map(rows.map((r) => [r.id, r]));
    expect(ids.slice(1).map((id) => byId.get(id))).toEqual(ids.slice(1).map((id, k) => ({ id, state: "cancelled", parent: ids[k] })));
  });

  it("show WAITING in GetJob, ListJobs, queue stats and WatchJob, and release the child when its parent completes", async () => {
    const { jobs, queues, monitoring } = api(tokens.serviceA);
    const added = async () => (await monitoring.getMetrics({ queue: "flows" })).snapshot!.queues[0]!.added;
    const addedBefore = await added();
    const { job: parent } = await jobs.addJob(step({}, { schedule: { case: "delay", value: { seconds: 3600n, nanos: 0 } } } as AddJobRequest["options"]));
    const { job: child } = await jobs.addJob(step({ i: "child" }, { dependsOn: [parent!.id] } as AddJobRequest["options"]));
    expect(child).toMatchObject({ state: JobState.WAITING, dependsOn: [parent!.id] });
    const { jobs: waiting } = await jobs.listJobs({ queue: "flows", states: [JobState.WAITING] });
    expect(waiting.map((j) => j.id)).toEqual([child!.id]);
    const { jobs: created } = await jobs.listJobs({ queue: "flows", states: [JobState.CREATED] });
    expect(created.map((j) => j.id)).toEqual([parent!.id]);
    const { stats } = await queues.getQueueStats({ name: "flows" });
    expect(stats).toMatchObject({ waiting: 1n, delayed: 1n, queued: 0n });
    // A job added waiting counts as added in the metrics, like any other.
    expect(await added()).toBe(addedBefore + 2n);

    const events: JobEvent[] = [];
    const controller = new AbortController();
    const watching = (async () => {
      for await (const r of jobs.watchJob({ id: child!.id }, { signal: controller.signal })) {
        events.push(r.event!);
        if (r.event!.type === JobEventType.COMPLETED) return;
      }
    })();
    await eventually(async () => events.length > 0, "the watch's snapshot");
    // Cancelling the parent cancels the waiting child (the default policy), live on the watch.
    await api(tokens.admin).jobs.cancelJob({ id: parent!.id });
    await eventually(async () => events.some((e) => e.type === JobEventType.CANCELLED), "the child's CANCELLED event");
    controller.abort();
    await watching.catch(() => {});
    expect(events.map((e) => [e.type, e.job!.state])).toEqual([
      [JobEventType.SNAPSHOT, JobState.WAITING],
      [JobEventType.CANCELLED, JobState.CANCELLED],
    ]);
    expect(events[1]!.previousState).toBe(JobState.WAITING);

    // Released: a child of a parent that completes.
    const { job: p2 } = await jobs.addJob(step());
    const { job: c2 } = await jobs.addJob(step({}, { dependsOn: [p2!.id] } as AddJobRequest["options"]));
    const finished = await waitForJob(jobs, c2!.id, (j) => j.state === JobState.COMPLETED, "the child completed");
    const parentDone = (await jobs.getJob({ id: p2!.id })).job!;
    expect(finished.startedAt!.seconds * 1000n + BigInt(Math.floor(finished.startedAt!.nanos / 1e6))).toBeGreaterThanOrEqual(
      parentDone.completedAt!.seconds * 1000n + BigInt(Math.floor(parentDone.completedAt!.nanos / 1e6)),
    );
    const { rows } = await db.query<{ types: string[] }>(`SELECT array_agg(type::text ORDER BY seq) AS types FROM "${db.schema}".job_event WHERE job_id = $1`, [
      c2!.id,
    ]);
    // Added while its parent had not completed yet: WAITING then RELEASED; or CREATED if it had.
    expect([
      ["waiting", "released", "started", "completed"],
      ["created", "started", "completed"],
    ]).toContainEqual(rows[0]!.types);
    expect((await queues.getQueueStats({ name: "flows" })).stats!.waiting).toBe(0n);
  });

  it("refuse unknown, invisible, too many and forward parents naming the field, writing nothing", async () => {
    const { jobs } = api(tokens.serviceA);
    const { job: others } = await api(tokens.serviceB).jobs.addJob(
      step({}, { schedule: { case: "delay", value: { seconds: 3600n, nanos: 0 } } } as AddJobRequest["options"]),
    );
    const before = await jobCount();

    const unknown = await failure(jobs.addJob(step({}, { dependsOn: [missing] } as AddJobRequest["options"])));
    expect(unknown.code).toBe(Code.NotFound);
    expect(unknown.rawMessage).toBe(`options.depends_on[0]: job ${missing} not found`);
    const invisible = await failure(jobs.addJob(step({}, { dependsOn: [others!.id] } as AddJobRequest["options"])));
    expect(invisible.code).toBe(Code.NotFound);
    expect(invisible.rawMessage).toBe(`options.depends_on[0]: job ${others!.id} not found`);
    const inBatch = await failure(api(tokens.admin).jobs.addJobs({ jobs: [step(), step({}, { dependsOn: [missing] } as AddJobRequest["options"])] }));
    expect(inBatch.code).toBe(Code.NotFound);
    expect(inBatch.rawMessage).toBe(`jobs[1]: options.depends_on[0]: job ${missing} not found`);

    const many = Array.from({ length: 101 }, () => crypto.randomUUID());
    const tooMany = await failure(jobs.addJob(step({}, { dependsOn: many } as AddJobRequest["options"])));
    expect(tooMany.code).toBe(Code.InvalidArgument);
    expect(violations(tooMany).map((v) => [v.field, v.reason])).toEqual([["options.depends_on", "OUT_OF_RANGE"]]);

    const forward = await failure(
      api(tokens.admin).jobs.addJobs({
        jobs: [
          step({}, { dependsOnBatchIndexes: [1] } as AddJobRequest["options"]),
          step({}, { dependsOnBatchIndexes: [1] } as AddJobRequest["options"]),
          step({}, { dependsOnBatchIndexes: [0, 0] } as AddJobRequest["options"]),
        ],
      }),
    );
    expect(forward.code).toBe(Code.InvalidArgument);
    expect(violations(forward).map((v) => [v.field, v.reason])).toEqual([
      ["jobs[0].options.depends_on_batch_indexes[0]", "OUT_OF_RANGE"],
      ["jobs[1].options.depends_on_batch_indexes[0]", "OUT_OF_RANGE"],
      ["jobs[2].options.depends_on_batch_indexes[1]", "DUPLICATE"],
    ]);
    const malformed = await failure(
      jobs.addJob(step({}, { dependsOn: ["nope"], dependsOnBatchIndexes: [0], concurrencyKey: "" } as unknown as AddJobRequest["options"])),
    );
    expect(violations(malformed).map((v) => v.field)).toEqual(["options.depends_on[0]", "options.depends_on_batch_indexes[0]", "options.concurrency_key"]);
    const policyAlone = await failure(jobs.addJob(step({}, { onParentFailure: ParentFailurePolicy.RUN } as AddJobRequest["options"])));
    expect(violations(policyAlone).map((v) => v.field)).toEqual(["options.on_parent_failure"]);
    expect(await jobCount()).toBe(before);

    // A parent that already failed: FAILED_PRECONDITION unless the child runs anyway.
    const { job: failed } = await jobs.addJob(step({ fail: true }));
    await waitForJob(jobs, failed!.id, (j) => j.state === JobState.FAILED, "the parent failed");
    const after = await jobCount();
    const refused = await failure(jobs.addJob(step({}, { dependsOn: [failed!.id] } as AddJobRequest["options"])));
    expect(refused.code).toBe(Code.FailedPrecondition);
    expect(refused.rawMessage).toContain(`options.depends_on[0]: job ${failed!.id} is already failed`);
    expect(await jobCount()).toBe(after);
    const { job: runs } = await jobs.addJob(step({}, { dependsOn: [failed!.id], onParentFailure: ParentFailurePolicy.RUN } as AddJobRequest["options"]));
    expect(runs!.state).toBe(JobState.CREATED);
    await waitForJob(jobs, runs!.id, (j) => j.state === JobState.COMPLETED, "the child of a failed parent ran");
  });
});
