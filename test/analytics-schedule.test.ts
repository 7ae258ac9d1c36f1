/**
 * The analytics rollup runs on its default schedule (`analytics-aggregate`, created from
 * ANALYTICS_SCHEDULE, visible and changeable through ScheduleService): with two replicas, once per
 * minute in all, and each run completes. (This file takes two minutes: it waits for two minute
 * boundaries.)
 */
import { afterAll, describe, expect, it } from "vitest";
import { ScheduleService } from "../gen/jobs/v1/schedule_service_pb.js";
import { client } from "./support/clients.js";
import { testDatabase } from "./support/database.js";
import { bossQueueOf } from "./support/job-states.js";
import { type ServiceProcess, startReplica } from "./support/process.js";
import { tokens } from "./support/service.js";
import { eventually } from "./support/wait.js";

const db = testDatabase();
const processes: ServiceProcess[] = [];
afterAll(async () => {
  await Promise.all(processes.map((p) => p.stop("SIGKILL")));
  await db.drop();
});

describe("the analytics schedule", () => {
  it("runs once per minute across two replicas", async () => {
    for (let i = 0; i < 2; i++) await startReplica(db, processes, { WORKERS_ENABLED: "true", ANALYTICS_SCHEDULE: "* * * * *" });
    const api = client(ScheduleService, processes[1]!.baseUrl, { protocol: "grpc", token: tokens.admin });
    expect((await api.getSchedule({ name: "analytics-aggregate" })).schedule).toMatchObject({ type: "analytics:aggregate", cron: "* * * * *", paused: false });
    const firstBoundary = Math.ceil(Date.now() / 60_000) * 60_000;
    const runs = async () =>
      (
        await db.query<{ minute: Date; n: number; done: number }>(
          `SELECT date_trunc('minute', created_on) AS minute, count(*)::int AS n, count(*) FILTER (WHERE state = 'completed')::int AS done
         FROM "${db.bossSchema}".job WHERE name = $1 GROUP BY 1 ORDER BY 1`,
          [bossQueueOf("analytics:aggregate")],
        )
      ).rows;
    // Two minute boundaries, then time for the second run to be sent and to finish.
    await eventually(async () => Date.now() > firstBoundary + 60_000 + 20_000, "two minute boundaries", 150_000, 1000);
    const seen = await eventually(
      async () => {
        const r = await runs();
        return r.filter((m) => m.minute.getTime() >= firstBoundary).length >= 2 && r.every((m) => m.done === m.n) ? r : undefined;
      },
      "two completed runs",
      30_000,
      500,
    );
    for (const m of seen) expect(m.n, `runs in minute ${m.minute.toISOString()}`).toBe(1);
    const { schedule } = await api.getSchedule({ name: "analytics-aggregate" });
    expect(schedule!.lastJobId).not.toBe("");
    expect(Number(schedule!.lastRunAt!.seconds) * 1000).toBeGreaterThanOrEqual(firstBoundary + 60_000);
    const { rows } = await db.query(`SELECT rolled_through FROM "${db.schema}".analytics_state`);
    expect(rows[0]!.rolled_through.getTime()).toBeGreaterThanOrEqual(firstBoundary);
    await Promise.all(processes.map((p) => p.stop("SIGTERM")));
  }, 200_000);
});
