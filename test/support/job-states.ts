/**
 * Puts a job into any state the way pg-boss's workers and supervisor would: fetched (active),
 * completed, failed with a retry scheduled, failed for good (with its dead letter copy).
 */

import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import type { PgBoss } from "pg-boss";
import type { AddJobRequestSchema, JobService } from "../../gen/jobs/v1/job_service_pb.js";
import { bossQueueName } from "../../src/engine/registry.js";
import type { TestDatabase } from "./database.js";

type Jobs = Client<typeof JobService>;
type Options = NonNullable<Exclude<MessageInitShape<typeof AddJobRequestSchema>, { $typeName: string }>["options"]>;
type Request = { type: string; payload: Record<string, unknown>; options?: Options & { retryLimit?: number } };

const queueOf: Record<string, string> = {
  "payment:process": "money",
  "refund:process": "money",
  "nft:mint": "money",
  "email:send": "communication",
  "analytics:aggregate": "background",
};

/** The pg-boss queue of a job type. */
export const bossQueueOf = (type: string) => bossQueueName(queueOf[type]!, type);

/** Job factories on top of the API and a plain pg-boss client. */
export function jobStates(jobs: Jobs, boss: PgBoss, db: TestDatabase) {
  const add = async (request: Request) => (await jobs.addJob({ type: request.type, payload: request.payload as never, options: request.options ?? {} })).job!;
  /** Claims this job as pg-boss's fetch claims a job (same columns), so tests need not race for it. */
  const fetchIt = async (type: string, id: string) => {
    const { rows } = await db.query<{ retry_count: number }>(
      `UPDATE "${db.bossSchema}".job SET state = 'active', started_on = now(), heartbeat_on = now(),
         retry_count = CASE WHEN started_on IS NOT NULL THEN retry_count + 1 ELSE retry_count END
       WHERE name = $1 AND id = $2 AND state < 'active' RETURNING retry_count`,
      [bossQueueOf(type), id],
    );
    if (!rows[0]) throw new Error(`job ${id} is not waiting`);
    return { id, retryCount: rows[0].retry_count };
  };
  return {
    add,
    async active(request: Request) {
      const job = await add(request);
      await fetchIt(request.type, job.id);
      return job;
    },
    async completed(request: Request, result: object = { ok: true }) {
      const job = await add(request);
      const fetched = await fetchIt(request.type, job.id);
      await boss.complete(bossQueueOf(request.type), { id: job.id, retryCount: fetched.retryCount }, result);
      return job;
    },
    async retrying(request: Request, error = { message: "gateway timeout", retryable: true }) {
      const job = await add({ ...request, options: { retryLimit: 2, ...request.options } });
      const fetched = await fetchIt(request.type, job.id);
      await boss.fail(bossQueueOf(request.type), { id: job.id, retryCount: fetched.retryCount }, { ...error, attempt: 1 });
      return job;
    },
    async failed(request: Request, error = { message: "card declined", reason: "CARD_DECLINED", retryable: false }) {
      const job = await add({ ...request, options: { retryLimit: 0, ...request.options } });
      const fetched = await fetchIt(request.type, job.id);
      await boss.fail(bossQueueOf(request.type), { id: job.id, retryCount: fetched.retryCount }, { ...error, attempt: 1 });
      return job;
    },
  };
}
