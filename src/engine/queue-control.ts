/**
 * Queue control on one replica: pauses and processing rate limits, kept in PostgreSQL and mirrored
 * in memory (refreshed on every control notification and at least every second), and the fetch gate
 * the workers ask before each fetch.
 *
 * A pause is enforced twice: the gate stops this replica's loops from fetching, and the database
 * refuses the move to `active` of a paused queue's job (the `qs_refuse_paused_start` trigger), so a
 * replica with a stale view still starts nothing. Rate limits are token buckets in PostgreSQL:
 * tokens are taken before a fetch (as many jobs are fetched as tokens were granted, unused ones are
 * given back), so the limit holds across replicas and a fetched job never waits for a token.
 */
import { inTransaction, type Pool } from "../db/pool.js";
import type { Logger } from "../logger.js";
import { coalescing } from "./coalesce.js";
import type { FetchGate } from "./dispatcher.js";
import type { Listener } from "./listener.js";
import type { ControlQueries, PauseRow, RateLimitRow } from "./queries/control-queries.js";
import type { RegisteredJobType } from "./registry.js";

/** How often the in-memory view is refreshed even without a notification. */
export const CONTROL_REFRESH_MS = 1000;

export interface QueueControlOptions {
  pool: Pool;
  queries: ControlQueries;
  listener: Listener;
  logger: Logger;
  /** Called when a queue is resumed (or limits change), to wake its loops. */
  onResume?: (queue: string) => void;
}

/** Pauses and limits of the cluster, as this replica sees them. */
export interface QueueControl extends FetchGate {
  paused(queue: string): PauseRow | undefined;
  limits(): RateLimitRow[];
  pause(queue: string, by: string): Promise<PauseRow>;
  resume(queue: string): Promise<void>;
  setLimit(row: Omit<RateLimitRow, "updated_at">): Promise<RateLimitRow>;
  deleteLimit(scope: string, key: string): Promise<boolean>;
  refresh(): Promise<void>;
  stop(): void;
}

/** Starts the replica's view of queue control. */
export async function startQueueControl(options: QueueControlOptions): Promise<QueueControl> {
  const { pool, queries, logger } = options;
  let pauses = new Map<string, PauseRow>();
  let limits: RateLimitRow[] = [];
  // Bumped by every change this replica commits. A read that overlapped one may predate it, and is
  // read again rather than laid over the newer state.
  let version = 0;

  async function load(): Promise<void> {
    for (;;) {
      const at = version;
      const [p, l] = await Promise.all([queries.pauses(pool), queries.limits(pool)]);
      if (version !== at) continue;
      const before = new Set(pauses.keys());
      pauses = new Map(p.map((row) => [row.queue, row]));
      const limitsChanged = JSON.stringify(l) !== JSON.stringify(limits);
      limits = l;
      for (const queue of before) if (!pauses.has(queue)) options.onResume?.(queue);
      if (limitsChanged) for (const row of l) if (row.scope === "queue") options.onResume?.(row.key);
      return;
    }
  }
  // A notification that arrives while a read runs gets a read of its own, after it.
  const refresh = coalescing(() => load().catch((err: Error) => logger.warn({ err: err.message }, "could not refresh pauses and limits")));

  await load();
  const timer = setInterval(() => void refresh(), CONTROL_REFRESH_MS);
  timer.unref();
  const offControl = options.listener.onControl(() => void refresh());
  const offResync = options.listener.onResync(() => void refresh());

  const scopesOf = (type: RegisteredJobType) =>
    limits
      .filter((l) => (l.scope === "job_type" && l.key === type.type) || (l.scope === "queue" && l.key === type.queue))
      .map((l) => ({ scope: l.scope, key: l.key }));

  return {
    paused: (queue) => pauses.get(queue),
    limits: () => limits,
    async allow(type, wanted) {
      if (pauses.has(type.queue)) return { allowed: 0 };
      const scopes = scopesOf(type);
      if (scopes.length === 0) return { allowed: wanted };
      const taken = await queries.take(pool, scopes, wanted);
      return taken ? { allowed: taken.granted, retryAfterMs: taken.waitMs } : { allowed: wanted };
    },
    giveBack(type, unused) {
      const scopes = scopesOf(type);
      if (scopes.length > 0 && unused > 0) void queries.giveBack(pool, scopes, unused).catch(() => {});
    },
    async pause(queue, by) {
      const row = await inTransaction(pool, (tx) => queries.pause(tx, queue, by));
      version++;
      pauses.set(queue, row);
      return row;
    },
    async resume(queue) {
      await inTransaction(pool, (tx) => queries.resume(tx, queue));
      version++;
      pauses.delete(queue);
      options.onResume?.(queue);
    },
    async setLimit(row) {
      const stored = await inTransaction(pool, (tx) => queries.setLimit(tx, row));
      version++;
      await refresh();
      return stored;
    },
    async deleteLimit(scope, key) {
      const deleted = await inTransaction(pool, (tx) => queries.deleteLimit(tx, scope, key));
      version++;
      await refresh();
      return deleted;
    },
    refresh,
    stop() {
      clearInterval(timer);
      offControl();
      offResync();
    },
  };
}
