-- Schedules (ScheduleService): recurring jobs on a cron expression in a time zone. Every replica's
-- ticker claims due rows with FOR UPDATE SKIP LOCKED, adds the tick's job (idempotency key
-- `schedule:<name>:<tick>`, so a tick retried after a crash adds nothing twice) and moves
-- `next_run_at` past now: exactly one job per tick, a tick missed while no replica ran runs once.

CREATE TABLE {{schema}}.schedule (
  name text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_.:-]{0,99}$'),
  type text NOT NULL,
  cron text NOT NULL,
  time_zone text NOT NULL DEFAULT '',
  payload jsonb NOT NULL,
  -- JobOptions of each job as the service stores them (priority, retries, expiry).
  options jsonb NOT NULL DEFAULT '{}',
  paused boolean NOT NULL DEFAULT false,
  -- Null while paused.
  next_run_at timestamptz,
  last_run_at timestamptz,
  last_job_id uuid,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
-- The ticker's read: due schedules, soonest first.
CREATE INDEX schedule_due ON {{schema}}.schedule (next_run_at) WHERE NOT paused;
