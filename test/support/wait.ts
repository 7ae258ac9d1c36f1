/**
 * Waiting on a condition with a deadline (never a bare sleep).
 */
import type { Client } from "@connectrpc/connect";
import type { Job } from "../../gen/jobs/v1/job_pb.js";
import type { JobService } from "../../gen/jobs/v1/job_service_pb.js";

/** Polls `check` until it returns a value (not undefined/false) or the deadline passes. */
export async function eventually<T>(check: () => Promise<T | undefined | false>, what: string, timeoutMs = 20_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Waits until the job satisfies `done` (GetJob polling) and returns it. */
export function waitForJob(jobs: Client<typeof JobService>, id: string, done: (job: Job) => boolean, what: string, timeoutMs = 20_000): Promise<Job> {
  return eventually(
    async () => {
      const { job } = await jobs.getJob({ id });
      return job && done(job) ? job : undefined;
    },
    `job ${id} ${what}`,
    timeoutMs,
  );
}
