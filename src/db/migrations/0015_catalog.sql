-- The catalog: queues and job types of your own, registered through the API (QueueService), on top
-- of the seed's built-in ones (compiled in). Every replica loads it at start and again on each change
-- (a notification on catalog_channel(), and a check of `catalog_version` every second), so a change
-- reaches every replica within a second (docs/engine.md, "Queues and job types").

CREATE TABLE {{schema}}.catalog_queue (
  name text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_-]{0,62}$'),
  description text NOT NULL DEFAULT '',
  -- The queue's policy, every field set (QueuePolicy in src/engine/registry.ts).
  policy jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE {{schema}}.catalog_job_type (
  name text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_-]{0,62}:[a-z][a-z0-9_.-]{0,62}$'),
  -- A built-in queue or a catalog queue (checked by the service: built-in queues have no row).
  queue text NOT NULL,
  payload_schema jsonb NOT NULL,
  producers text[] NOT NULL DEFAULT '{}',
  workers text[] NOT NULL DEFAULT '{}',
  description text NOT NULL DEFAULT '',
  -- Bumped on every change of the schema: validators are compiled once per version.
  version int NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX catalog_job_type_queue ON {{schema}}.catalog_job_type (queue);

-- One row: bumped by every change, so that a replica can tell in one cheap read whether to reload.
CREATE TABLE {{schema}}.catalog_version (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  version bigint NOT NULL
);
INSERT INTO {{schema}}.catalog_version (version) VALUES (0);

-- Wakes every replica when the catalog changed (payload-less).
CREATE FUNCTION {{schema}}.catalog_channel() RETURNS text
LANGUAGE sql IMMUTABLE
AS $$ SELECT 'qs_catalog_' || left(md5({{schema_literal}}), 16) $$;

CREATE FUNCTION {{schema}}.catalog_changed() RETURNS trigger
LANGUAGE plpgsql
AS $fn$
BEGIN
  UPDATE {{schema}}.catalog_version SET version = version + 1;
  PERFORM pg_notify({{schema}}.catalog_channel(), '');
  RETURN NULL;
END
$fn$;

CREATE TRIGGER catalog_queue_changed AFTER INSERT OR UPDATE OR DELETE ON {{schema}}.catalog_queue
FOR EACH STATEMENT EXECUTE FUNCTION {{schema}}.catalog_changed();
CREATE TRIGGER catalog_job_type_changed AFTER INSERT OR UPDATE OR DELETE ON {{schema}}.catalog_job_type
FOR EACH STATEMENT EXECUTE FUNCTION {{schema}}.catalog_changed();

-- Progress reported by a running attempt (WorkerService.ReportProgress, or a built-in processor).
ALTER TYPE {{schema}}.job_event_type ADD VALUE IF NOT EXISTS 'progress';

-- A change of a running job's `data.progress` is a `progress` event (the rest as in 0007).
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
        WHEN o.state = 'active' AND n.state = 'active' AND n.data -> 'progress' IS DISTINCT FROM o.data -> 'progress' THEN 'progress'
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
