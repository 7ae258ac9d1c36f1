/**
 * Schedules (ScheduleService): create, read, change, pause, resume and delete over the API; bad
 * input refused naming each field with nothing written; jobs added on the cron's ticks with
 * `last_run_at` and `last_job_id` true; and, on three replica processes, exactly one job per tick,
 * also across a restart of every replica.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobService } from "../gen/jobs/v1/job_service_pb.js";
import { ScheduleService } from "../gen/jobs/v1/schedule_service_pb.js";
import { client } from "./support/clients.js";
import { testDatabase } from "./support/database.js";
import { Code, failure, violations } from "./support/errors.js";
import { type ServiceProcess, startReplica } from "./support/process.js";
import { runAlone } from "./support/run-alone.js";
import { startTestService, type TestService, tokens } from "./support/service.js";
import { eventually } from "./support/wait.js";

runAlone();

const db = testDatabase();
const processes: ServiceProcess[] = [];
let svc: TestService;
const schedules = (baseUrl: string, token: string = tokens.admin) => client(ScheduleService, baseUrl, { protocol: "grpc", token });
const email = { to: ["ops@example.com"], subject: "daily report", text: "attached" };

/** Jobs a schedule added: the tick each was added for (from its idempotency key), oldest first. */
async function ticksOf(name: string): Promise<{ tick: string; n: number; added: Date }[]> {
  const { rows } = await db.query<{ tick: string; n: number; added: Date }>(
    `SELECT substr(data->>'idempotencyKey', length($1) + 1) AS tick, count(*)::int AS n, min(created_on) AS added FROM "${db.bossSchema}".job
     WHERE data->>'idempotencyKey' LIKE $1 || '%' AND name = 'communication/email.send' GROUP BY 1 ORDER BY 1`,
    [`schedule:${name}:`],
  );
  return rows;
}

beforeAll(async () => {
  svc = await startTestService(db);
});
let svcStopped = false;
afterAll(async () => {
  if (!svcStopped) await svc?.stop();
  await Promise.all(processes.map((p) => p.stop("SIGTERM")));
  await db.drop();
});

describe("schedules over the API", () => {
  it("refuse a bad cron, time zone, type, payload or option, naming each field, and write nothing", async () => {
    const api = schedules(svc.baseUrl);
    const err = await failure(
      api.createSchedule({
        schedule: {
          name: "Bad Name",
          type: "email:send",
          cron: "61 * * * *",
          timeZone: "Mars/Olympus",
          payload: { subject: 1 },
          options: { idempotencyKey: "k", dependsOn: ["7d4f0a52-3f6e-4c59-9a0e-2f1d3c4b5a69"] },
        },
      }),
    );
    expect(err.code).toBe(Code.InvalidArgument);
    const fields = violations(err).map((v) => v.field);
    expect(fields).toEqual(
      expect.arrayContaining([
        "schedule.name",
        "schedule.cron",
        "schedule.time_zone",
        "schedule.options.idempotency_key",
        "schedule.options.depends_on",
        "schedule.payload.to",
        "schedule.payload.subject",
      ]),
    );
    const unknown = await failure(api.createSchedule({ schedule: { name: "x", type: "nope:nope", cron: "* * * * *", payload: {} } }));
    expect(violations(unknown).map((v) => [v.field, v.reason])).toEqual([["schedule.type", "UNKNOWN_JOB_TYPE"]]);
    const delayed = await failure(
      api.createSchedule({
        schedule: { name: "x", type: "email:send", cron: "* * * * *", payload: email, options: { schedule: { case: "delay", value: { seconds: 5n } } } },
      }),
    );
    expect(violations(delayed).map((v) => v.field)).toEqual(["schedule.options.delay"]);
    expect((await api.listSchedules({})).schedules).toEqual([]);
    // Only admins write; service principals read.
    expect(
      (
        await failure(
          schedules(svc.baseUrl, tokens.serviceA).createSchedule({ schedule: { name: "x", type: "email:send", cron: "* * * * *", payload: email } }),
        )
      ).code,
    ).toBe(Code.PermissionDenied);
  });

  it("are created, read, changed, paused, resumed and deleted, with next_run_at true at each step", async () => {
    const api = schedules(svc.baseUrl);
    const { schedule } = await api.createSchedule({
      schedule: { name: "daily-report", type: "email:send", cron: "0 7 * * *", timeZone: "Europe/Paris", payload: email, options: { priority: 5 } },
    });
    expect(schedule).toMatchObject({ name: "daily-report", cron: "0 7 * * *", timeZone: "Europe/Paris", paused: false, createdBy: "admin" });
    expect(schedule!.options?.priority).toBe(5);
    const next = new Date(Number(schedule!.nextRunAt!.seconds) * 1000);
    expect(new Intl.DateTimeFormat("en-GB", { timeZone: "Europe/Paris", hour: "2-digit", minute: "2-digit" }).format(next)).toBe("07:00");
    expect(next.getTime() - Date.now()).toBeLessThanOrEqual(25 * 3600_000);
    expect((await failure(api.createSchedule({ schedule: { name: "daily-report", type: "email:send", cron: "* * * * *", payload: email } }))).code).toBe(
      Code.AlreadyExists,
    );

    const { schedule: moved } = await api.updateSchedule({ schedule: { name: "daily-report", cron: "30 18 * * 1-5" }, updateMask: { paths: ["cron"] } });
    expect(moved).toMatchObject({ cron: "30 18 * * 1-5", timeZone: "Europe/Paris" });
    expect(moved!.options?.priority).toBe(5); // kept: not in the mask
    expect(
      new Intl.DateTimeFormat("en-GB", { timeZone: "Europe/Paris", hour: "2-digit", minute: "2-digit" }).format(
        new Date(Number(moved!.nextRunAt!.seconds) * 1000),
      ),
    ).toBe("18:30");

    const { schedule: paused } = await api.pauseSchedule({ name: "daily-report" });
    expect([paused!.paused, paused!.nextRunAt]).toEqual([true, undefined]);
    const { schedule: resumed } = await api.resumeSchedule({ name: "daily-report" });
    expect(resumed!.paused).toBe(false);
    expect(resumed!.nextRunAt).toBeDefined();
    expect((await schedules(svc.baseUrl, tokens.serviceA).getSchedule({ name: "daily-report" })).schedule!.name).toBe("daily-report");

    await api.deleteSchedule({ name: "daily-report" });
    expect((await failure(api.getSchedule({ name: "daily-report" }))).code).toBe(Code.NotFound);
  });

  it("add a job on each tick, with last_run_at and last_job_id", async () => {
    const api = schedules(svc.baseUrl);
    await api.createSchedule({ schedule: { name: "every-second", type: "email:send", cron: "* * * * * *", payload: email } });
    await eventually(async () => (await ticksOf("every-second")).length >= 3, "three ticks", 10_000);
    await api.pauseSchedule({ name: "every-second" });
    const { schedule } = await api.getSchedule({ name: "every-second" });
    const ticks = await ticksOf("every-second");
    expect(ticks.every((t) => t.n === 1)).toBe(true);
    expect(new Date(Number(schedule!.lastRunAt!.seconds) * 1000).toISOString()).toBe(ticks.at(-1)!.tick);
    const { job } = await client(JobService, svc.baseUrl, { protocol: "grpc", token: tokens.admin }).getJob({ id: schedule!.lastJobId });
    expect(job).toMatchObject({ type: "email:send", createdBy: "admin", idempotencyKey: `schedule:every-second:${ticks.at(-1)!.tick}` });
    await api.deleteSchedule({ name: "every-second" });
  });
});

describe("three replicas", () => {
  it("add exactly one job per tick; ticks missed while every replica was down run once", async () => {
    // The in-process service above is a replica too: only the three processes tick here.
    await svc.stop();
    svcStopped = true;
    const env = { WORKERS_ENABLED: "false" };
    const replicas = await Promise.all([0, 1, 2].map(() => startReplica(db, processes, env)));
    const api = schedules(replicas[0]!.baseUrl);
    await api.createSchedule({ schedule: { name: "replicated", type: "email:send", cron: "* * * * * *", payload: email } });
    await new Promise((r) => setTimeout(r, 10_000));
    // Every replica stops for longer than MISSED_AFTER_MS (5 s): the ticks meanwhile are missed.
    await Promise.all(replicas.map((p) => p.stop("SIGTERM")));
    const downAt = Date.now();
    await new Promise((r) => setTimeout(r, 8000));
    const upAt = Date.now();
    const again = await Promise.all([0, 1, 2].map(() => startReplica(db, processes, env)));
    await new Promise((r) => setTimeout(r, 6000));
    await schedules(again[1]!.baseUrl).pauseSchedule({ name: "replicated" });

    const ticks = await ticksOf("replicated");
    const list = ticks.map((t) => t.tick).join(" ");
    expect(
      ticks.filter((t) => t.n !== 1),
      "ticks with more than one job",
    ).toEqual([]);
    const at = ticks.map((t) => Date.parse(t.tick));
    // One second apart, but for one jump: the ticks skipped over the restart.
    const jumps = at.flatMap((t, i) => (i > 0 && t - at[i - 1]! !== 1000 ? [i] : []));
    expect(jumps, list).toHaveLength(1);
    // The missed ticks ran once in all: the first of them, added when the replicas were back.
    const madeUp = ticks.filter((t) => Date.parse(t.tick) < downAt + 1000 && t.added.getTime() >= upAt);
    expect(
      madeUp.map((t) => t.tick),
      list,
    ).toEqual([ticks[jumps[0]! - 1]!.tick]);
    expect(at.filter((t) => t < downAt).length).toBeGreaterThanOrEqual(8);
    expect(at.filter((t) => t >= upAt).length).toBeGreaterThanOrEqual(3);
  }, 90_000);
});
