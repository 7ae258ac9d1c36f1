/**
 * SQL of the activity counters (migration 0018): what the event log's trigger counted per queue,
 * minute (hour, past two hours), kind and duration bin. A read costs O(queues x buckets x bins) of the
 * window, whatever the number of events.
 */
import type { Queryable } from "../../db/pool.js";
import { qualified } from "../../db/sql.js";

/** One counter summed over a window: a kind's count (bin 0), or one bin of the wait or run histogram. */
export interface ActivityCountRow {
  queue_name: string;
  kind: string;
  bin: number;
  n: number;
}

/** The activity queries of one installation. */
export function activityQueries(schema: string) {
  const activity = qualified(schema, "job_activity");
  const deltas = qualified(schema, "job_activity_delta");
  return {
    /**
     * The counters of the given pg-boss queues since `since`, rounded out to its minute (to its hour
     * for the part folded into hours), with the deltas not folded yet.
     */
    async since(db: Queryable, names: readonly string[], since: Date): Promise<ActivityCountRow[]> {
      const { rows } = await db.query<ActivityCountRow>(
        `SELECT queue_name, kind, bin, sum(n)::float8 AS n FROM (
           SELECT queue_name, kind, bin, n FROM ${activity}
           WHERE queue_name = ANY($1::text[]) AND bucket >= date_trunc('hour', $2::timestamptz)
             AND (hourly OR bucket >= date_trunc('minute', $2::timestamptz))
           UNION ALL
           SELECT queue_name, kind, bin, n FROM ${deltas}
           WHERE queue_name = ANY($1::text[]) AND bucket >= date_trunc('minute', $2::timestamptz)
         ) c
         GROUP BY 1, 2, 3`,
        [names, since],
      );
      return rows;
    },
  };
}

export type ActivityQueries = ReturnType<typeof activityQueries>;
