-- Timings for analytics, kept with the events that end them: `ready_at` on a `started` event (when
-- the job became ready to run, so wait = occurred_at - ready_at) and `attempt_started_at` on the
-- events that end an attempt (completed, retry_scheduled, failed, cancelled, expired; so run time =
-- occurred_at - attempt_started_at). Then per-minute rollups of job activity.

ALTER TABLE {{schema}}.job_event ADD COLUMN ready_at timestamptz, ADD COLUMN attempt_started_at timestamptz;

CREATE OR REPLACE FUNCTION {{schema}}.capture_job_inserts() RETURNS trigger
LANGUAGE plpgsql
AS $fn$
DECLARE
  captured int;
BEGIN
  INSERT INTO {{schema}}.job_event (job_id, queue_name, type, state, previous_state, retry_count, detail, attempt_started_at)
  SELECT e.job_id, e.queue_name, e.type::{{schema}}.job_event_type, e.state, e.previous_state, e.retry_count, e.detail, e.attempt_started_at
  FROM (
    SELECT n.id AS job_id, n.name AS queue_name,
           CASE WHEN n.source_root_id IS NOT NULL THEN 'redriven' ELSE 'created' END AS type,
           n.state::text AS state, NULL::text AS previous_state, n.retry_count, NULL::jsonb AS detail,
           NULL::timestamptz AS attempt_started_at, 0 AS rank
    FROM new_jobs n
    WHERE n.state = 'created' AND n.source_id IS NULL AND n.started_on IS NULL
    UNION ALL
    SELECT n.id, n.name, 'expired', n.state::text, 'active', n.retry_count, n.output, n.started_on, 1
    FROM new_jobs n
    WHERE n.state IN ('retry', 'failed') AND n.started_on IS NOT NULL
      AND n.output -> 'value' ->> 'message' IN ('job timed out', 'job heartbeat timeout')
    UNION ALL
    SELECT n.id, n.name, CASE WHEN n.state = 'retry' THEN 'retry_scheduled' ELSE 'failed' END,
           n.state::text, 'active', n.retry_count, n.output, n.started_on, 2
    FROM new_jobs n
    WHERE n.state IN ('retry', 'failed') AND n.started_on IS NOT NULL
    UNION ALL
    SELECT n.id, n.name, 'dead_lettered', 'failed', 'failed', n.retry_count, jsonb_build_object('deadLetterJobId', d.id), NULL, 3
    FROM new_jobs n
    JOIN {{boss_schema}}.job d
      ON d.source_root_id = COALESCE(n.source_root_id, n.id) AND d.source_id = n.id AND d.name = n.dead_letter
    WHERE n.state = 'failed' AND n.dead_letter IS NOT NULL
  ) e
  ORDER BY e.job_id, e.rank;
  GET DIAGNOSTICS captured = ROW_COUNT;
  IF captured > 0 THEN
    PERFORM pg_notify({{schema}}.event_channel(), '');
    PERFORM pg_notify({{schema}}.work_channel(), q.name)
    FROM (SELECT DISTINCT n.name FROM new_jobs n
          WHERE n.state IN ('created', 'retry') AND n.source_id IS NULL AND n.start_after <= now()) q;
  END IF;
  RETURN NULL;
END
$fn$;

CREATE OR REPLACE FUNCTION {{schema}}.capture_job_updates() RETURNS trigger
LANGUAGE plpgsql
AS $fn$
DECLARE
  captured int;
  runnable_queues text[];
  cancel_ids uuid[];
  q text;
  id uuid;
BEGIN
  WITH changes AS (
    SELECT n.id, n.name, t.type, n.state::text AS state, o.state::text AS previous_state, n.retry_count,
           n.start_after <= now() AS runnable,
           CASE WHEN t.type = 'started' THEN n.start_after END AS ready_at,
           CASE WHEN t.type IN ('completed', 'cancelled') AND o.state = 'active' THEN o.started_on END AS attempt_started_at
    FROM new_jobs n
    JOIN old_jobs o ON o.id = n.id AND o.name = n.name
    CROSS JOIN LATERAL (
      SELECT CASE
        WHEN o.state IN ('created', 'retry') AND n.state = 'active' THEN 'started'
        WHEN o.state = 'active' AND n.state = 'completed' THEN 'completed'
        WHEN o.state <> 'cancelled' AND n.state = 'cancelled' THEN 'cancelled'
        WHEN o.state IN ('failed', 'cancelled') AND n.state IN ('created', 'retry') THEN 'redriven'
        WHEN o.state = 'active' AND n.state = 'active'
          AND n.data ->> 'cancelRequested' = 'true' AND o.data ->> 'cancelRequested' IS DISTINCT FROM 'true' THEN 'cancel_requested'
      END AS type
    ) t
    WHERE t.type IS NOT NULL
  ), recorded AS (
    INSERT INTO {{schema}}.job_event (job_id, queue_name, type, state, previous_state, retry_count, ready_at, attempt_started_at)
    SELECT c.id, c.name, c.type::{{schema}}.job_event_type, c.state, c.previous_state, c.retry_count, c.ready_at, c.attempt_started_at
    FROM changes c
    ORDER BY c.id
  )
  SELECT count(*),
         array_agg(DISTINCT c.name) FILTER (WHERE c.type = 'redriven' AND c.runnable),
         array_agg(c.id) FILTER (WHERE c.type = 'cancel_requested')
  INTO captured, runnable_queues, cancel_ids
  FROM changes c;
  IF captured = 0 THEN
    RETURN NULL;
  END IF;
  PERFORM pg_notify({{schema}}.event_channel(), '');
  FOREACH q IN ARRAY COALESCE(runnable_queues, '{}') LOOP
    PERFORM pg_notify({{schema}}.work_channel(), q);
  END LOOP;
  FOREACH id IN ARRAY COALESCE(cancel_ids, '{}') LOOP
    PERFORM pg_notify({{schema}}.cancel_channel(), id::text);
  END LOOP;
  RETURN NULL;
END
$fn$;

-- Job activity per minute and pg-boss queue (job type), rolled up from the events by the
-- analytics:aggregate job. Durations are kept whole (sorted, in milliseconds) so percentiles over any
-- window of minutes are exact. A minute is rewritten whole each time it is computed.
CREATE TABLE {{schema}}.job_stats_minute (
  minute timestamptz NOT NULL,
  queue_name text NOT NULL,
  added int NOT NULL,
  started int NOT NULL,
  completed int NOT NULL,
  failed int NOT NULL,
  dead_lettered int NOT NULL,
  cancelled int NOT NULL,
  retried int NOT NULL,
  expired int NOT NULL,
  wait_ms double precision[] NOT NULL,
  run_ms double precision[] NOT NULL,
  computed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (minute, queue_name)
);

-- The same per hour, with percentiles instead of every duration, for a longer retention.
CREATE TABLE {{schema}}.job_stats_hour (
  hour timestamptz NOT NULL,
  queue_name text NOT NULL,
  added int NOT NULL,
  started int NOT NULL,
  completed int NOT NULL,
  failed int NOT NULL,
  dead_lettered int NOT NULL,
  cancelled int NOT NULL,
  retried int NOT NULL,
  expired int NOT NULL,
  wait_count int NOT NULL,
  wait_p50_ms double precision, wait_p90_ms double precision, wait_p95_ms double precision, wait_p99_ms double precision, wait_max_ms double precision,
  run_count int NOT NULL,
  run_p50_ms double precision, run_p90_ms double precision, run_p95_ms double precision, run_p99_ms double precision, run_max_ms double precision,
  computed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (hour, queue_name)
);

-- How far the minutes are final: every minute before `rolled_through` was computed after the last
-- transaction that could write an event into it had ended.
CREATE TABLE {{schema}}.analytics_state (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  rolled_through timestamptz NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
