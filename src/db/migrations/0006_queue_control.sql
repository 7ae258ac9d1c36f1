-- Queue control: pauses and processing rate limits, persisted and enforced in the database.

-- A paused queue (an API queue: money, communication, background). No job of it starts anywhere
-- while the row exists.
CREATE TABLE {{schema}}.queue_pause (
  queue text PRIMARY KEY,
  paused_at timestamptz NOT NULL DEFAULT now(),
  paused_by text NOT NULL
);

-- Rate limits: at most `max_events` per `interval_ms`, for a job type, a queue or an API principal.
CREATE TABLE {{schema}}.rate_limit (
  scope text NOT NULL CHECK (scope IN ('job_type', 'queue', 'api_principal')),
  key text NOT NULL,
  max_events int NOT NULL CHECK (max_events > 0),
  interval_ms bigint NOT NULL CHECK (interval_ms > 0),
  updated_at timestamptz NOT NULL DEFAULT now(),
  updated_by text NOT NULL,
  PRIMARY KEY (scope, key)
);

-- The token bucket of each processing limit (capacity max_events, refilled at max_events per
-- interval). Workers take tokens before they fetch, so a fetched job never waits for one.
CREATE TABLE {{schema}}.rate_bucket (
  scope text NOT NULL,
  key text NOT NULL,
  tokens double precision NOT NULL,
  refilled_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (scope, key),
  FOREIGN KEY (scope, key) REFERENCES {{schema}}.rate_limit (scope, key) ON DELETE CASCADE
);

-- Wakes workers when pauses or limits change (payload: what changed).
CREATE FUNCTION {{schema}}.control_channel() RETURNS text
LANGUAGE sql IMMUTABLE
AS $$ SELECT 'qs_control_' || left(md5({{schema_literal}}), 16) $$;

-- The database side of a pause: a job of a paused queue cannot become active. The move is skipped
-- (the row trigger returns NULL), so pg-boss's fetch claims nothing. A shared advisory lock per queue
-- makes PauseQueue (which takes it exclusively) wait for fetches already under way: once PauseQueue
-- has committed, every later fetch sees the pause.
CREATE FUNCTION {{schema}}.refuse_paused_start() RETURNS trigger
LANGUAGE plpgsql
AS $fn$
DECLARE
  api_queue text := split_part(NEW.name, '/', 1);
BEGIN
  PERFORM pg_advisory_xact_lock_shared(hashtextextended('queue-service:pause:' || {{schema_literal}} || ':' || api_queue, 0));
  IF EXISTS (SELECT 1 FROM {{schema}}.queue_pause p WHERE p.queue = api_queue) THEN
    RETURN NULL;
  END IF;
  RETURN NEW;
END
$fn$;

-- A row trigger on the partitioned parent is cloned to every partition, present and future.
CREATE TRIGGER qs_refuse_paused_start
BEFORE UPDATE OF state ON {{boss_schema}}.job
FOR EACH ROW
WHEN (OLD.state IN ('created', 'retry') AND NEW.state = 'active')
EXECUTE FUNCTION {{schema}}.refuse_paused_start();
