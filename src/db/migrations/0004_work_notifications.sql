-- Wake-ups for workers: the capture triggers also notify
--   work_channel()   with the pg-boss queue's name, when a job of it became runnable now
--                    (added, redriven, retried without delay);
--   cancel_channel() with the job's id, when a running job was asked to cancel.
-- Delayed jobs and retries with a delay send nothing; workers poll for them.

CREATE FUNCTION {{schema}}.work_channel() RETURNS text
LANGUAGE sql IMMUTABLE
AS $$ SELECT 'qs_work_' || left(md5({{schema_literal}}), 16) $$;

CREATE FUNCTION {{schema}}.cancel_channel() RETURNS text
LANGUAGE sql IMMUTABLE
AS $$ SELECT 'qs_cancel_' || left(md5({{schema_literal}}), 16) $$;

CREATE OR REPLACE FUNCTION {{schema}}.capture_job_inserts() RETURNS trigger
LANGUAGE plpgsql
AS $fn$
DECLARE
  captured int;
BEGIN
  INSERT INTO {{schema}}.job_event (job_id, queue_name, type, state, previous_state, retry_count, detail)
  SELECT e.job_id, e.queue_name, e.type::{{schema}}.job_event_type, e.state, e.previous_state, e.retry_count, e.detail
  FROM (
    SELECT n.id AS job_id, n.name AS queue_name,
           CASE WHEN n.source_root_id IS NOT NULL THEN 'redriven' ELSE 'created' END AS type,
           n.state::text AS state, NULL::text AS previous_state, n.retry_count, NULL::jsonb AS detail, 0 AS rank
    FROM new_jobs n
    WHERE n.state = 'created' AND n.source_id IS NULL AND n.started_on IS NULL
    UNION ALL
    SELECT n.id, n.name, 'expired', n.state::text, 'active', n.retry_count, n.output, 1
    FROM new_jobs n
    WHERE n.state IN ('retry', 'failed') AND n.started_on IS NOT NULL
      AND n.output -> 'value' ->> 'message' IN ('job timed out', 'job heartbeat timeout')
    UNION ALL
    SELECT n.id, n.name, CASE WHEN n.state = 'retry' THEN 'retry_scheduled' ELSE 'failed' END,
           n.state::text, 'active', n.retry_count, n.output, 2
    FROM new_jobs n
    WHERE n.state IN ('retry', 'failed') AND n.started_on IS NOT NULL
    UNION ALL
    SELECT n.id, n.name, 'dead_lettered', 'failed', 'failed', n.retry_count, jsonb_build_object('deadLetterJobId', d.id), 3
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
           n.start_after <= now() AS runnable
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
    INSERT INTO {{schema}}.job_event (job_id, queue_name, type, state, previous_state, retry_count)
    SELECT c.id, c.name, c.type::{{schema}}.job_event_type, c.state, c.previous_state, c.retry_count
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
