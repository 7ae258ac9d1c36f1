/**
 * Schedules: recurring jobs on a cron expression in a time zone (croner computes the ticks, daylight
 * saving changes included). Every replica runs a ticker; a due schedule is claimed with FOR UPDATE
 * SKIP LOCKED, its tick's job added with the idempotency key `schedule:<name>:<tick>` (a tick retried
 * after a crash finds its job instead of adding another), and `next_run_at` moved on, all before the
 * row lock is released: exactly one job per tick across replicas.
 *
 * A late ticker (a busy replica) still runs each tick once, in order. Ticks missed while no replica
 * ran (more than MISSED_AFTER_MS overdue) collapse into one: the oldest runs, and the next tick is
 * the first one after now.
 */
import { Cron } from "croner";
import { inTransaction, type Pool } from "../db/pool.js";
import type { Logger } from "../logger.js";
import type { Enqueuer } from "./enqueue.js";
import type { FieldViolation } from "./errors.js";
import { AlreadyExistsError, NotFoundError, ValidationError } from "./errors.js";
import { fingerprint } from "./fingerprint.js";
import type { NewJob } from "./new-job.js";
import type { ScheduleOptions, ScheduleQueries, ScheduleRow } from "./queries/schedule-queries.js";
import type { JobRegistry } from "./registry.js";

export type { ScheduleOptions, ScheduleRow };

export const SCHEDULE_NAME = /^[a-z][a-z0-9_.:-]{0,99}$/;
const MAX_CRON = 200;
/** A tick more overdue than this was missed (no replica ran): it runs once, later ones are skipped. */
export const MISSED_AFTER_MS = 5000;
/** Longest the ticker sleeps (a schedule created on another replica is seen within this). */
const TICK_MS = 1000;

/** A schedule as the API sets it. */
export interface ScheduleInput {
  name: string;
  type: string;
  cron: string;
  timeZone: string;
  payload: Record<string, unknown>;
  options: ScheduleOptions;
}

export interface SchedulesDeps {
  pool: Pool;
  queries: ScheduleQueries;
  registry: JobRegistry;
  enqueuer: Enqueuer;
  logger: Logger;
}

/** The cron of `s`, or the violations of its cron and time zone (fields under `prefix`). */
function cronOf(cron: string, timeZone: string, prefix: string): { cron: Cron; violations?: undefined } | { violations: FieldViolation[] } {
  const violations: FieldViolation[] = [];
  if (!cron) violations.push({ field: `${prefix}cron`, description: "is required (e.g. `*/5 * * * *`)", reason: "REQUIRED" });
  else if (cron.length > MAX_CRON) violations.push({ field: `${prefix}cron`, description: `must be at most ${MAX_CRON} characters`, reason: "TOO_BIG" });
  let zone = timeZone || "UTC";
  if (timeZone) {
    try {
      new Intl.DateTimeFormat("en", { timeZone });
    } catch {
      violations.push({ field: `${prefix}time_zone`, description: "is not an IANA time zone (e.g. Europe/Paris)", reason: "INVALID_TIME_ZONE" });
      zone = "UTC"; // the cron is still checked
    }
  }
  if (!cron || cron.length > MAX_CRON) return { violations };
  try {
    const c = new Cron(cron, { timezone: zone, paused: true });
    if (!c.nextRun()) violations.push({ field: `${prefix}cron`, description: "never fires", reason: "INVALID_CRON" });
    return violations.length > 0 ? { violations } : { cron: c };
  } catch (err) {
    violations.push({
      field: `${prefix}cron`,
      description: `is not a cron expression: ${(err as Error).message.replace(/^CronPattern: /, "")}`,
      reason: "INVALID_CRON",
    });
    return { violations };
  }
}

/** The first tick of `cron` in `timeZone` strictly after `after`. */
export function nextTick(cron: string, timeZone: string, after: Date): Date | null {
  return new Cron(cron, { timezone: timeZone || "UTC", paused: true }).nextRun(after);
}

/** What is wrong with a schedule's name, cron and time zone (fields under `prefix`). */
export function scheduleViolations(s: Pick<ScheduleInput, "name" | "cron" | "timeZone">, prefix = "schedule."): FieldViolation[] {
  const violations: FieldViolation[] = [];
  if (!SCHEDULE_NAME.test(s.name)) violations.push({ field: `${prefix}name`, description: `must match ${SCHEDULE_NAME.source}`, reason: "INVALID_FORMAT" });
  const c = cronOf(s.cron, s.timeZone, prefix);
  if (c.violations) violations.push(...c.violations);
  return violations;
}

/** The schedules of one replica: the API's operations and the ticker. */
export function createSchedules(deps: SchedulesDeps) {
  const { pool, queries, registry, logger } = deps;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;

  function check(s: ScheduleInput): Date | null {
    const violations = scheduleViolations(s);
    if (violations.length > 0) throw new ValidationError(violations);
    return nextTick(s.cron, s.timeZone, new Date());
  }

  /** The job of a tick: the schedule's payload and options, unset options from the queue's policy now. */
  function jobOf(row: ScheduleRow, tick: Date): NewJob | undefined {
    const type = registry.type(row.type);
    if (!type) return undefined;
    const p = type.queueDefinition.policy;
    const o = row.options;
    const idempotencyKey = `schedule:${row.name}:${tick.toISOString()}`;
    return {
      type,
      payload: row.payload,
      priority: o.priority ?? p.priority,
      delayMs: 0,
      retryLimit: o.retryLimit ?? p.retryLimit,
      retryDelaySeconds: o.retryDelaySeconds ?? p.retryDelaySeconds,
      retryBackoff: o.retryBackoff ?? p.retryBackoff,
      expireInSeconds: o.expireInSeconds ?? p.expireInSeconds,
      idempotencyKey,
      requestHash: fingerprint({ type: type.type, payload: row.payload, idempotencyKey }),
      concurrencyKey: o.concurrencyKey,
    };
  }

  /** Runs every due tick once; returns how many jobs were added. */
  async function tick(): Promise<number> {
    let added = 0;
    for (;;) {
      const n = await inTransaction(pool, async (client) => {
        const due = await queries.claimDue(client, 20);
        for (const row of due) {
          const at = row.next_run_at!;
          const job = jobOf(row, at);
          let jobId: string | null = null;
          if (!job) logger.warn({ schedule: row.name, type: row.type }, "a schedule names a job type that is not registered; its tick is skipped");
          else {
            // A database failure throws (the transaction rolls back, the tick stays due and runs on
            // the next pass); an answer about this one job (its key reused with another payload after
            // the schedule changed) skips the tick rather than failing it every second.
            const [outcome] = await deps.enqueuer.add([{ principal: row.created_by, admin: true, exemptFromQuotas: true, job }], true);
            if (outcome?.ok) jobId = outcome.record.id;
            else logger.error({ schedule: row.name, tick: at.toISOString(), err: outcome?.error?.message }, "a scheduled job was refused; its tick is skipped");
          }
          const now = Date.now();
          let next = nextTick(row.cron, row.time_zone, at);
          if (next && now - next.getTime() > MISSED_AFTER_MS) next = nextTick(row.cron, row.time_zone, new Date(now)); // missed ticks: once
          await queries.ticked(client, row.name, at, jobId, next);
          if (jobId) added++;
        }
        return due.length;
      });
      if (n < 20) return added;
    }
  }

  async function loop(): Promise<void> {
    if (stopped) return;
    let wait = TICK_MS;
    try {
      await tick();
      const due = await queries.nextDue(pool);
      if (due) wait = Math.max(5, Math.min(TICK_MS, due.getTime() - Date.now() + 5));
    } catch (err) {
      logger.warn({ err: (err as Error).message }, "schedule ticker failed; retrying");
    }
    if (!stopped) timer = setTimeout(() => (running = loop()), wait);
  }

  const rowOrNotFound = (row: ScheduleRow | undefined, name: string) => {
    if (!row) throw new NotFoundError(`schedule ${name} not found`);
    return row;
  };

  return {
    start(): void {
      running = loop();
    },
    async stop(): Promise<void> {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
    /** Runs due ticks now (tests; the ticker does the same every second). */
    tick,

    async create(s: ScheduleInput, createdBy: string): Promise<ScheduleRow> {
      const next = check(s);
      const row = await queries.insert(pool, { ...s, nextRunAt: next }, createdBy);
      if (!row) throw new AlreadyExistsError(`schedule ${s.name} already exists`, "SCHEDULE_EXISTS");
      return row;
    },
    /** Creates `s` unless a schedule of its name exists (a default: the API owns it afterwards). */
    async ensure(s: ScheduleInput, createdBy: string): Promise<void> {
      const row = await queries.insert(pool, { ...s, nextRunAt: check(s) }, createdBy);
      if (row) logger.info({ schedule: s.name, cron: s.cron }, "created a default schedule");
    },
    async get(name: string): Promise<ScheduleRow> {
      return rowOrNotFound(await queries.get(pool, name), name);
    },
    list(limit: number, after?: string): Promise<ScheduleRow[]> {
      return queries.list(pool, limit, after);
    },
    /** Replaces the definition; `patch(current)` gives the new one (validated here). */
    async update(name: string, patch: (current: ScheduleRow) => ScheduleInput): Promise<ScheduleRow> {
      return inTransaction(pool, async (client) => {
        const current = rowOrNotFound(await queries.get(client, name, true), name);
        const s = patch(current);
        const next = check(s);
        return rowOrNotFound(await queries.update(client, { ...s, nextRunAt: next }), name);
      });
    },
    async remove(name: string): Promise<void> {
      if (!(await queries.remove(pool, name))) throw new NotFoundError(`schedule ${name} not found`);
    },
    async pause(name: string): Promise<ScheduleRow> {
      return rowOrNotFound(await queries.setPaused(pool, name, true, null), name);
    },
    /** Resumes from the next tick after now (ticks while paused are not made up). */
    async resume(name: string): Promise<ScheduleRow> {
      const current = rowOrNotFound(await queries.get(pool, name), name);
      if (!current.paused) return current;
      return rowOrNotFound(await queries.setPaused(pool, name, false, nextTick(current.cron, current.time_zone, new Date())), name);
    },
  };
}

export type Schedules = ReturnType<typeof createSchedules>;
