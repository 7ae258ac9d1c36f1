/**
 * Loads jobs into a scratch schema (default 1,000,000) and prints the plans of the job API's reads:
 * GetJob by id, and ListJobs pages for an admin and for a service principal. The output is quoted in
 * docs/engine.md ("Indexes").
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npx tsx scripts/explain-job-queries.ts [count]
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { startEngine } from "../src/engine/engine.js";
import { jobQueries } from "../src/engine/store/job-queries.js";
import { type BossState, JOB_COLUMNS } from "../src/engine/store/job-record.js";
import { createLogger } from "../src/logger.js";
import { serviceRegistry } from "../src/workers/registry.js";

const url = process.env.DATABASE_URL;
if (!url) throw new Error("set DATABASE_URL");
const count = Number(process.argv[2] ?? 1_000_000);
const suffix = randomBytes(4).toString("hex");
const schema = `qs_explain_${suffix}`;
const bossSchema = `pgboss_explain_${suffix}`;
const registry = serviceRegistry();
const engine = await startEngine({
  url,
  schema,
  bossSchema,
  poolMax: 2,
  bossPoolMax: 2,
  registry,
  logger: createLogger("warn"),
  idempotencyWindowSeconds: 86400,
  eventRetentionSeconds: 86400,
});
await engine.parts.boss.stop({ graceful: false, close: true });
const db = new pg.Client(url);
await db.connect();
try {
  const queues = registry.types.map((t) => t.bossQueue);
  console.log(`loading ${count} jobs over ${queues.length} queues and 50 principals...`);
  const started = Date.now();
  // Bulk load without the event triggers (the plans are about pg-boss's table).
  await db.query(`SET session_replication_role = replica`);
  await db.query(
    `INSERT INTO "${bossSchema}".job (id, name, data, state, created_on, start_after, completed_on)
     SELECT gen_random_uuid(), ($2::text[])[1 + i % array_length($2::text[], 1)],
            jsonb_build_object('payload', jsonb_build_object('n', i), 'principal', 'svc-' || (i % 50), 'rootJobId', gen_random_uuid()),
            CASE WHEN i > $1 * 0.9 THEN 'created' ELSE 'completed' END::"${bossSchema}".job_state,
            now() - (i || ' seconds')::interval, now() - (i || ' seconds')::interval,
            CASE WHEN i > $1 * 0.9 THEN NULL ELSE now() - (i || ' seconds')::interval END
     FROM generate_series(1, $1) AS i`,
    [count, queues],
  );
  await db.query(`SET session_replication_role = origin`);
  await db.query(`ANALYZE "${bossSchema}".job`);
  console.log(`loaded in ${Date.now() - started} ms\n`);
  const {
    rows: [sample],
  } = await db.query(
    `SELECT id, (extract(epoch FROM created_on) * 1000000)::bigint AS micros FROM "${bossSchema}".job WHERE data ->> 'principal' = 'svc-7' ORDER BY created_on DESC OFFSET 500 LIMIT 1`,
  );
  const explain = async (title: string, sql: string, values: unknown[]) => {
    const { rows } = await db.query(`EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, SUMMARY ON) ${sql}`, values);
    console.log(`### ${title}\n`);
    console.log(rows.map((r) => `    ${r["QUERY PLAN"]}`).join("\n"), "\n");
  };
  const everyQueue = registry.types.flatMap((t) => [t.bossQueue, t.deadLetterBossQueue]);
  await explain(
    "GetJob (by id, any queue)",
    `SELECT ${JOB_COLUMNS} FROM "${bossSchema}".job WHERE id = ANY($1::uuid[]) AND name = ANY($2::text[]) AND ($3::text IS NULL OR data ->> 'principal' = $3)`,
    [[sample.id], everyQueue, "svc-7"],
  );
  const plan = async (title: string, principal: string | null, after: boolean, filter: { bossQueues?: string[]; states?: BossState[] } = {}) => {
    // Capture the list query's SQL and values as the reader sends them.
    let captured: [string, unknown[]] | undefined;
    const spy = {
      query: async (text: string, values: unknown[]) => {
        captured = [text, values];
        return { rows: [] };
      },
    } as never;
    await jobQueries(bossSchema).list(spy, {
      bossQueues: filter.bossQueues ?? queues,
      states: filter.states,
      principal: principal ?? undefined,
      after: after ? { createdMicros: sample.micros, id: sample.id } : undefined,
      limit: 100,
    });
    await explain(title, captured![0], captured![1]);
  };
  await plan("ListJobs, admin, first page", null, false);
  await plan("ListJobs, admin, page after a token", null, true);
  await plan("ListJobs, service principal, first page", "svc-7", false);
  await plan("ListJobs, service principal, page after a token", "svc-7", true);
  // The rare state: one job in ten waits, nine in ten completed, the waiting ones the oldest.
  await plan("ListJobs, admin, one type, a rare state", null, false, { bossQueues: [queues[0]!], states: ["created"] });
  await plan("ListJobs, admin, every type, two states", null, false, { states: ["created", "failed"] });
} finally {
  await db.query(`DROP SCHEMA "${bossSchema}" CASCADE; DROP SCHEMA "${schema}" CASCADE`);
  await db.end();
  await engine.parts.pool.end();
}
