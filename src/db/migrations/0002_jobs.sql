-- Jobs: the event log, its capture triggers on pg-boss's job tables, idempotency keys, and the
-- indexes the job API needs on pg-boss's tables. See docs/engine.md.

-- Lookups by id alone (pg-boss's primary key is (name, id)) and a service principal's newest jobs.
-- Created on the partitioned parent, so every partition (including ones pg-boss creates later) gets
-- them. The tables are empty at install; an index added later to a large installation must be built
-- partition by partition with CREATE INDEX CONCURRENTLY and attached (docs/engine.md, "Upgrades").
CREATE INDEX IF NOT EXISTS qs_job_id ON {{boss_schema}}.job (id);
CREATE INDEX IF NOT EXISTS qs_job_principal_created ON {{boss_schema}}.job ((data ->> 'principal'), created_on, id);

-- The NOTIFY channel that wakes event readers (payload-less; per service schema).
CREATE FUNCTION {{schema}}.event_channel() RETURNS text
LANGUAGE sql IMMUTABLE
AS $$ SELECT 'qs_events_' || left(md5({{schema_literal}}), 16) $$;

CREATE TYPE {{schema}}.job_event_type AS ENUM (
  'created', 'started', 'completed', 'retry_scheduled', 'failed', 'cancel_requested', 'cancelled',
  'expired', 'dead_lettered', 'redriven'
);

-- Every state change of every job, in commit-safe order: (xid, seq). A reader serves only events
-- whose transaction id is below the oldest transaction still running, so an event that commits late
-- is never skipped (docs/engine.md, "Job events").
CREATE TABLE {{schema}}.job_event (
  xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
  seq bigint GENERATED ALWAYS AS IDENTITY,
  occurred_at timestamptz NOT NULL DEFAULT now(),
  job_id uuid NOT NULL,
  queue_name text NOT NULL,
  type {{schema}}.job_event_type NOT NULL,
  state text NOT NULL,
  previous_state text,
  retry_count int NOT NULL,
  detail jsonb,
  PRIMARY KEY (xid, seq)
);
CREATE INDEX job_event_occurred_at ON {{schema}}.job_event USING brin (occurred_at);

-- Inserts: added and redriven jobs, and the DELETE+INSERT pg-boss uses to fail an attempt (a retry,
-- a failure, an expiry by the supervisor) with the dead letter copy written by the same statement.
CREATE FUNCTION {{schema}}.capture_job_inserts() RETURNS trigger
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
  END IF;
  RETURN NULL;
END
$fn$;

-- Updates: starts, completions, cancellations, retries of failed or cancelled jobs, cancel requests.
-- Heartbeats and other updates that change no state record nothing.
CREATE FUNCTION {{schema}}.capture_job_updates() RETURNS trigger
LANGUAGE plpgsql
AS $fn$
DECLARE
  captured int;
BEGIN
  INSERT INTO {{schema}}.job_event (job_id, queue_name, type, state, previous_state, retry_count)
  SELECT n.id, n.name, t.type::{{schema}}.job_event_type, n.state::text, o.state::text, n.retry_count
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
  ORDER BY n.id;
  GET DIAGNOSTICS captured = ROW_COUNT;
  IF captured > 0 THEN
    PERFORM pg_notify({{schema}}.event_channel(), '');
  END IF;
  RETURN NULL;
END
$fn$;

-- pg-boss writes straight into its partitions (and into the parent for dead letters and redrives),
-- and statement triggers fire only for the table a statement names: the capture triggers sit on the
-- parent and on every partition. Run at every start, after the queues are ensured.
CREATE FUNCTION {{schema}}.ensure_event_triggers() RETURNS int
LANGUAGE plpgsql
AS $fn$
DECLARE
  t regclass;
  created int := 0;
BEGIN
  FOR t IN
    SELECT '{{boss_schema}}.job'::regclass
    UNION ALL
    SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = '{{boss_schema}}.job'::regclass
  LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = t AND tgname = 'qs_capture_inserts') THEN
      EXECUTE format('CREATE TRIGGER qs_capture_inserts AFTER INSERT ON %s REFERENCING NEW TABLE AS new_jobs '
        'FOR EACH STATEMENT EXECUTE FUNCTION {{schema}}.capture_job_inserts()', t);
      created := created + 1;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = t AND tgname = 'qs_capture_updates') THEN
      EXECUTE format('CREATE TRIGGER qs_capture_updates AFTER UPDATE ON %s REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs '
        'FOR EACH STATEMENT EXECUTE FUNCTION {{schema}}.capture_job_updates()', t);
      created := created + 1;
    END IF;
  END LOOP;
  RETURN created;
END
$fn$;

-- Idempotency keys, scoped to the principal. The request's fingerprint tells a repeat from a
-- conflicting reuse. Kept for IDEMPOTENCY_WINDOW_SECONDS.
CREATE TABLE {{schema}}.idempotency_key (
  principal text NOT NULL,
  key text NOT NULL,
  request_hash bytea NOT NULL,
  job_id uuid NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (principal, key)
);
CREATE INDEX idempotency_key_created_at ON {{schema}}.idempotency_key (created_at);
