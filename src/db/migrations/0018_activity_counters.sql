-- Activity counters kept by a trigger on the event log, so that GetMetrics, the WatchMetrics sampler
-- and the alert evaluator cost O(queues x minutes x histogram bins), not O(events) (docs/engine.md,
-- "Metrics").
--
-- Every statement that writes events appends, per (queue, minute of the event, kind, bin), how many
-- it wrote to job_activity_delta, in the same transaction as the events: the counters commit with
-- the events they count, so they never miss a late-committing transaction and never count twice.
-- The stats fold (every second, beside fold_job_counts) moves the deltas into job_activity, folds
-- minutes older than two hours into hours, and drops hours older than eight days (GetMetrics windows
-- reach back seven).
--
-- Kinds: added (created, waiting, redriven), started, completed, failed, dead_lettered, cancelled,
-- retried (retry_scheduled), expired, with bin 0; and two duration histograms: wait (a started
-- event's occurred_at - ready_at) and run (occurred_at - attempt_started_at of a completed,
-- retry_scheduled, failed or cancelled event), by duration_bin.

CREATE TABLE {{schema}}.job_activity (
  queue_name text NOT NULL,
  bucket timestamptz NOT NULL,
  hourly boolean NOT NULL,
  kind text NOT NULL,
  bin int NOT NULL,
  n bigint NOT NULL,
  PRIMARY KEY (queue_name, bucket, hourly, kind, bin)
);
-- The fold finds the minutes to fold into hours, and the hours past retention, without a scan.
CREATE INDEX job_activity_bucket ON {{schema}}.job_activity (hourly, bucket);

CREATE TABLE {{schema}}.job_activity_delta (
  queue_name text NOT NULL,
  bucket timestamptz NOT NULL,
  kind text NOT NULL,
  bin int NOT NULL,
  n bigint NOT NULL
);

-- The histogram bin of a duration: 16 bins per doubling from one microsecond (bin 1 holds
-- [1 us, 2^(1/16) us)); bin 0 holds everything under a microsecond, negative durations included.
-- src/engine/activity.ts reads a bin back as its geometric middle: within 2.2% of any value in it.
CREATE FUNCTION {{schema}}.duration_bin(d interval) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT CASE WHEN extract(epoch FROM d)::float8 * 1e6 < 1 THEN 0
         ELSE 1 + floor(16 * ln(extract(epoch FROM d)::float8 * 1e6) / ln(2))::int END
$$;

-- The count an event of `type` adds to (NULL: none).
CREATE FUNCTION {{schema}}.activity_kind(type {{schema}}.job_event_type) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT CASE type
    WHEN 'created' THEN 'added' WHEN 'waiting' THEN 'added' WHEN 'redriven' THEN 'added'
    WHEN 'retry_scheduled' THEN 'retried'
    WHEN 'started' THEN 'started' WHEN 'completed' THEN 'completed' WHEN 'failed' THEN 'failed'
    WHEN 'dead_lettered' THEN 'dead_lettered' WHEN 'cancelled' THEN 'cancelled' WHEN 'expired' THEN 'expired'
  END
$$;

-- Three filtered scans of the statement's events (a count per event, a wait per start, a run time per
-- finished attempt): a lateral VALUES list per event cost four times as much.
CREATE FUNCTION {{schema}}.count_job_activity() RETURNS trigger
LANGUAGE plpgsql
AS $fn$
BEGIN
  INSERT INTO {{schema}}.job_activity_delta (queue_name, bucket, kind, bin, n)
  SELECT queue_name, date_trunc('minute', occurred_at), kind, bin, count(*)
  FROM (
    SELECT queue_name, occurred_at, {{schema}}.activity_kind(type) AS kind, 0 AS bin
    FROM new_events
    UNION ALL
    SELECT queue_name, occurred_at, 'wait', {{schema}}.duration_bin(occurred_at - ready_at)
    FROM new_events WHERE type = 'started' AND ready_at IS NOT NULL
    UNION ALL
    SELECT queue_name, occurred_at, 'run', {{schema}}.duration_bin(occurred_at - attempt_started_at)
    FROM new_events WHERE type IN ('completed', 'retry_scheduled', 'failed', 'cancelled') AND attempt_started_at IS NOT NULL
  ) e
  WHERE kind IS NOT NULL
  GROUP BY 1, 2, 3, 4;
  RETURN NULL;
END
$fn$;

CREATE TRIGGER qs_count_activity AFTER INSERT ON {{schema}}.job_event
  REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION {{schema}}.count_job_activity();

-- The events already logged, counted once (a database upgraded to this version).
INSERT INTO {{schema}}.job_activity (queue_name, bucket, hourly, kind, bin, n)
SELECT queue_name, date_trunc('minute', occurred_at), false, kind, bin, count(*)
FROM (
  SELECT queue_name, occurred_at, {{schema}}.activity_kind(type) AS kind, 0 AS bin
  FROM {{schema}}.job_event
  UNION ALL
  SELECT queue_name, occurred_at, 'wait', {{schema}}.duration_bin(occurred_at - ready_at)
  FROM {{schema}}.job_event WHERE type = 'started' AND ready_at IS NOT NULL
  UNION ALL
  SELECT queue_name, occurred_at, 'run', {{schema}}.duration_bin(occurred_at - attempt_started_at)
  FROM {{schema}}.job_event WHERE type IN ('completed', 'retry_scheduled', 'failed', 'cancelled') AND attempt_started_at IS NOT NULL
) e
WHERE kind IS NOT NULL AND occurred_at >= now() - interval '8 days'
GROUP BY 1, 2, 4, 5;

-- Folds the deltas into job_activity, minutes older than two hours into hours, and drops hours past
-- eight days. Run with fold_job_counts (one statement, so one transaction and its advisory lock).
CREATE FUNCTION {{schema}}.fold_job_activity() RETURNS void
LANGUAGE plpgsql
AS $fn$
DECLARE
  this_minute timestamptz := date_trunc('minute', now());
BEGIN
  IF NOT pg_try_advisory_xact_lock(hashtextextended('queue-service:fold-counts:' || {{schema_literal}}, 0)) THEN
    RETURN;
  END IF;
  WITH gone AS (
    DELETE FROM {{schema}}.job_activity_delta RETURNING queue_name, bucket, kind, bin, n
  )
  INSERT INTO {{schema}}.job_activity AS a (queue_name, bucket, hourly, kind, bin, n)
  SELECT queue_name, bucket, false, kind, bin, sum(n) FROM gone GROUP BY 1, 2, 4, 5
  ON CONFLICT (queue_name, bucket, hourly, kind, bin) DO UPDATE SET n = a.n + EXCLUDED.n;

  WITH old_minutes AS (
    DELETE FROM {{schema}}.job_activity
    WHERE NOT hourly AND bucket < this_minute - interval '2 hours'
    RETURNING queue_name, bucket, kind, bin, n
  )
  INSERT INTO {{schema}}.job_activity AS a (queue_name, bucket, hourly, kind, bin, n)
  SELECT queue_name, date_trunc('hour', bucket), true, kind, bin, sum(n) FROM old_minutes GROUP BY 1, 2, 4, 5
  ON CONFLICT (queue_name, bucket, hourly, kind, bin) DO UPDATE SET n = a.n + EXCLUDED.n;

  DELETE FROM {{schema}}.job_activity WHERE hourly AND bucket < this_minute - interval '8 days';
END
$fn$;
