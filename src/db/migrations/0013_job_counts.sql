-- Job counts kept by triggers, so that GetQueueStats, ListQueues and the metrics sampler cost
-- O(queues x buckets), not O(jobs) or O(events) (docs/engine.md, "Stats").
--
-- Every statement that changes pg-boss's job table appends its net change per (queue, kind, bucket)
-- to job_count_delta (append-only: concurrent writers never wait on a counter row); a fold every
-- second moves the deltas into job_count. A read sums both, in one snapshot with the jobs.
--
-- Kinds and buckets:
--   created, retry  jobs waiting, bucketed by when they become due: '-infinity' for a job due when it
--                   was added (start_after <= created_on), else the minute of its start_after. So a
--                   read knows which are due without looking at them, except for the current minute,
--                   which it counts from the jobs themselves (only jobs scheduled for that minute).
--   active          running jobs ('-infinity').
--   completed, failed, cancelled
--                   transitions into the state, by the minute they happened (folded into hours,
--                   kind `<kind>:hour`, after two hours; kept 31 days).

CREATE TABLE {{schema}}.job_count (
  queue_name text NOT NULL,
  kind text NOT NULL,
  bucket timestamptz NOT NULL,
  n bigint NOT NULL,
  PRIMARY KEY (queue_name, kind, bucket)
);

CREATE TABLE {{schema}}.job_count_delta (
  queue_name text NOT NULL,
  kind text NOT NULL,
  bucket timestamptz NOT NULL,
  n bigint NOT NULL
);

-- The bucket of a waiting job (see above): a function of the row alone, so that the change that adds
-- a job and the one that takes it away name the same bucket.
CREATE FUNCTION {{schema}}.due_bucket(start_after timestamptz, created_on timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN start_after <= created_on THEN '-infinity'::timestamptz ELSE date_trunc('minute', start_after) END $$;

CREATE FUNCTION {{schema}}.count_job_inserts() RETURNS trigger
LANGUAGE plpgsql
AS $fn$
BEGIN
  INSERT INTO {{schema}}.job_count_delta (queue_name, kind, bucket, n)
  SELECT n.name, n.state::text,
         CASE WHEN n.state IN ('created', 'retry') THEN {{schema}}.due_bucket(n.start_after, n.created_on)
              WHEN n.state = 'active' THEN '-infinity'::timestamptz
              ELSE date_trunc('minute', now()) END,
         count(*)
  FROM new_jobs n
  GROUP BY 1, 2, 3;
  RETURN NULL;
END
$fn$;

CREATE FUNCTION {{schema}}.count_job_updates() RETURNS trigger
LANGUAGE plpgsql
AS $fn$
BEGIN
  INSERT INTO {{schema}}.job_count_delta (queue_name, kind, bucket, n)
  SELECT c.queue_name, c.kind, c.bucket, sum(c.n)
  FROM new_jobs n
  JOIN old_jobs o ON o.id = n.id AND o.name = n.name
  CROSS JOIN LATERAL (
    SELECT o.name AS queue_name, o.state::text AS kind,
           CASE WHEN o.state = 'active' THEN '-infinity'::timestamptz ELSE {{schema}}.due_bucket(o.start_after, o.created_on) END AS bucket,
           -1 AS n
    WHERE o.state IN ('created', 'retry', 'active')
    UNION ALL
    SELECT n.name, n.state::text,
           CASE WHEN n.state IN ('created', 'retry') THEN {{schema}}.due_bucket(n.start_after, n.created_on)
                WHEN n.state = 'active' THEN '-infinity'::timestamptz
                ELSE date_trunc('minute', now()) END,
           1
    WHERE n.state IN ('created', 'retry', 'active') OR (n.state IN ('completed', 'failed', 'cancelled') AND o.state <> n.state)
  ) c
  WHERE o.state <> n.state OR o.start_after <> n.start_after
  GROUP BY 1, 2, 3
  HAVING sum(c.n) <> 0;
  RETURN NULL;
END
$fn$;

CREATE FUNCTION {{schema}}.count_job_deletes() RETURNS trigger
LANGUAGE plpgsql
AS $fn$
BEGIN
  INSERT INTO {{schema}}.job_count_delta (queue_name, kind, bucket, n)
  SELECT o.name, o.state::text,
         CASE WHEN o.state = 'active' THEN '-infinity'::timestamptz ELSE {{schema}}.due_bucket(o.start_after, o.created_on) END,
         -count(*)
  FROM old_jobs o
  WHERE o.state IN ('created', 'retry', 'active')
  GROUP BY 1, 2, 3;
  RETURN NULL;
END
$fn$;

-- Moves the deltas into job_count and compacts it: waiting jobs' past minutes join '-infinity' (due
-- now either way), finished minutes older than two hours join their hour, and finished counts older
-- than 31 days go. One replica at a time (the others skip). Returns the deltas folded.
CREATE FUNCTION {{schema}}.fold_job_counts() RETURNS int
LANGUAGE plpgsql
AS $fn$
DECLARE
  folded int;
  this_minute timestamptz := date_trunc('minute', now());
BEGIN
  IF NOT pg_try_advisory_xact_lock(hashtextextended('queue-service:fold-counts:' || {{schema_literal}}, 0)) THEN
    RETURN 0;
  END IF;
  WITH gone AS (
    DELETE FROM {{schema}}.job_count_delta RETURNING queue_name, kind, bucket, n
  ), merged AS (
    INSERT INTO {{schema}}.job_count AS c (queue_name, kind, bucket, n)
    SELECT queue_name, kind, bucket, sum(n) FROM gone GROUP BY 1, 2, 3
    ON CONFLICT (queue_name, kind, bucket) DO UPDATE SET n = c.n + EXCLUDED.n
    RETURNING 1
  )
  SELECT count(*) INTO folded FROM merged;

  WITH past AS (
    DELETE FROM {{schema}}.job_count
    WHERE kind IN ('created', 'retry') AND bucket > '-infinity' AND bucket < this_minute
    RETURNING queue_name, kind, n
  )
  INSERT INTO {{schema}}.job_count AS c (queue_name, kind, bucket, n)
  SELECT queue_name, kind, '-infinity', sum(n) FROM past GROUP BY 1, 2
  ON CONFLICT (queue_name, kind, bucket) DO UPDATE SET n = c.n + EXCLUDED.n;

  WITH old_minutes AS (
    DELETE FROM {{schema}}.job_count
    WHERE kind IN ('completed', 'failed', 'cancelled') AND bucket < this_minute - interval '2 hours'
    RETURNING queue_name, kind, bucket, n
  )
  INSERT INTO {{schema}}.job_count AS c (queue_name, kind, bucket, n)
  SELECT queue_name, kind || ':hour', date_trunc('hour', bucket), sum(n) FROM old_minutes GROUP BY 1, 2, 3
  ON CONFLICT (queue_name, kind, bucket) DO UPDATE SET n = c.n + EXCLUDED.n;

  DELETE FROM {{schema}}.job_count
  WHERE (kind LIKE '%:hour' AND bucket < this_minute - interval '31 days')
     OR (n = 0 AND bucket > '-infinity');
  RETURN folded;
END
$fn$;

-- Every partition gets the counting triggers with the capture triggers (pg-boss writes straight into
-- its partitions; statement triggers fire only for the table a statement names).
CREATE OR REPLACE FUNCTION {{schema}}.ensure_event_triggers() RETURNS int
LANGUAGE plpgsql
AS $fn$
DECLARE
  t regclass;
  created int := 0;
  spec record;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended('queue-service:event-triggers:' || {{schema_literal}}, 0));
  FOR t IN
    SELECT '{{boss_schema}}.job'::regclass
    UNION ALL
    SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = '{{boss_schema}}.job'::regclass
  LOOP
    FOR spec IN
      SELECT * FROM (VALUES
        ('qs_capture_inserts', 'AFTER INSERT', 'REFERENCING NEW TABLE AS new_jobs', 'capture_job_inserts'),
        ('qs_capture_updates', 'AFTER UPDATE', 'REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs', 'capture_job_updates'),
        ('qs_count_inserts', 'AFTER INSERT', 'REFERENCING NEW TABLE AS new_jobs', 'count_job_inserts'),
        ('qs_count_updates', 'AFTER UPDATE', 'REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs', 'count_job_updates'),
        ('qs_count_deletes', 'AFTER DELETE', 'REFERENCING OLD TABLE AS old_jobs', 'count_job_deletes')
      ) AS s(name, timing, refs, fn)
    LOOP
      IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = t AND tgname = spec.name) THEN
        EXECUTE format('CREATE TRIGGER %I %s ON %s %s FOR EACH STATEMENT EXECUTE FUNCTION {{schema}}.%I()', spec.name, spec.timing, t, spec.refs, spec.fn);
        created := created + 1;
      END IF;
    END LOOP;
  END LOOP;
  RETURN created;
END
$fn$;

-- Start from the jobs as they are, with writers held off so that no change falls between this count
-- and the triggers (ensure_event_triggers runs right after the migrations, in this same start).
LOCK TABLE {{boss_schema}}.job IN SHARE ROW EXCLUSIVE MODE;
SELECT {{schema}}.ensure_event_triggers();
INSERT INTO {{schema}}.job_count (queue_name, kind, bucket, n)
SELECT name, state::text,
       CASE WHEN state = 'active' THEN '-infinity'::timestamptz ELSE {{schema}}.due_bucket(start_after, created_on) END,
       count(*)
FROM {{boss_schema}}.job
WHERE state IN ('created', 'retry', 'active')
GROUP BY 1, 2, 3;
INSERT INTO {{schema}}.job_count (queue_name, kind, bucket, n)
SELECT queue_name, type::text, date_trunc('minute', occurred_at), count(*)
FROM {{schema}}.job_event
WHERE type IN ('completed', 'failed', 'cancelled') AND occurred_at >= now() - interval '31 days'
GROUP BY 1, 2, 3;
