-- Job dependencies (JobOptions.depends_on) and per-key concurrency (JobOptions.concurrency_key,
-- QueuePolicy.key_concurrency).
--
-- A job with parents that have not completed is inserted with pg-boss's `blocked` set, which keeps it
-- out of every fetch (pg-boss's fetch and its job_i11 index skip blocked jobs), and
-- `pending_dependencies` the number of parents it still waits for. The edges are the service's own
-- (pg-boss's job_dependency table is driven by its background resolver, which releases children
-- seconds late and knows no failure policy): when a parent reaches a final state, the statement that
-- moved it (whoever ran it: a completion, pg-boss's fail or supervisor, a cancel) releases or cancels
-- its waiting children in the same transaction. A cancelled child's own children follow (the
-- cancel is an update of the job table, so the same trigger runs for it).
--
-- The API's WAITING state is `created` and blocked: events and counts name it `waiting`.

ALTER TYPE {{schema}}.job_event_type ADD VALUE IF NOT EXISTS 'waiting';
ALTER TYPE {{schema}}.job_event_type ADD VALUE IF NOT EXISTS 'released';

CREATE TABLE {{schema}}.job_dependency (
  parent_id uuid NOT NULL,
  child_id uuid NOT NULL,
  -- The child's pg-boss queue (the job table's partition key).
  child_name text NOT NULL,
  -- The parent's final state has been applied to the child (or was known when the child was added).
  settled boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (parent_id, child_id)
);
CREATE INDEX job_dependency_child ON {{schema}}.job_dependency (child_id);
CREATE INDEX job_dependency_created ON {{schema}}.job_dependency (created_at);

-- The state as the API names it.
CREATE FUNCTION {{schema}}.job_state_name(state text, blocked boolean) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN state = 'created' AND blocked THEN 'waiting' ELSE state END $$;

-- Releases or cancels the waiting children of parents that just reached a final state. Each edge is
-- settled once (a failed parent that is retried and then completes does not count twice). A cancel
-- cascades down the waiting descendants level by level in this one call: one nested trigger call per
-- level would reach PostgreSQL's stack depth limit on a deep chain (1,000 levels did) and fail the
-- parent's own transaction. The cancels inside the loop still fire the settle triggers; a
-- transaction-local flag makes those nested calls return at once, since the loop settles the next
-- level itself.
CREATE FUNCTION {{schema}}.settle_dependents(parent_ids uuid[], parent_states text[]) RETURNS void
LANGUAGE plpgsql
AS $fn$
DECLARE
  child_ids uuid[];
  child_names text[];
  parents uuid[];
  states text[];
  cancelled uuid[];
BEGIN
  IF current_setting('qs.settling_dependents', true) = 'on' THEN
    RETURN;
  END IF;
  PERFORM set_config('qs.settling_dependents', 'on', true);
  LOOP
    WITH settled AS (
      UPDATE {{schema}}.job_dependency d SET settled = true
      FROM unnest(parent_ids, parent_states) AS p(id, state)
      WHERE d.parent_id = p.id AND NOT d.settled
      RETURNING d.child_id, d.child_name, p.id AS parent_id, p.state AS parent_state
    )
    SELECT array_agg(e.child_id), array_agg(e.child_name), array_agg(e.parent_id), array_agg(e.parent_state)
    INTO child_ids, child_names, parents, states
    FROM settled e;
    EXIT WHEN child_ids IS NULL;
    -- Children locked in one order (by id) before either update: two transactions settling parents
    -- of the same children cannot deadlock.
    PERFORM 1 FROM {{boss_schema}}.job c
    JOIN unnest(child_ids, child_names) AS e(child_id, child_name) ON c.name = e.child_name AND c.id = e.child_id
    ORDER BY c.id
    FOR UPDATE OF c;

    -- A parent failed or was cancelled: a child with the default policy is cancelled, naming the parent.
    WITH doomed AS (
      SELECT DISTINCT ON (e.child_id) e.child_id, e.child_name, e.parent_id, e.parent_state
      FROM unnest(child_ids, child_names, parents, states) AS e(child_id, child_name, parent_id, parent_state)
      JOIN {{boss_schema}}.job c ON c.name = e.child_name AND c.id = e.child_id
      WHERE e.parent_state <> 'completed' AND c.state = 'created' AND c.blocked
        AND COALESCE(c.data ->> 'onParentFailure', 'cancel') = 'cancel'
      ORDER BY e.child_id, e.parent_id
    ), done AS (
      UPDATE {{boss_schema}}.job c
      SET state = 'cancelled', completed_on = now(), blocked = false, pending_dependencies = 0,
          output = jsonb_build_object(
            'message', format('parent job %s %s', d.parent_id, CASE WHEN d.parent_state = 'failed' THEN 'failed' ELSE 'was cancelled' END),
            'reason', 'PARENT_FAILED', 'retryable', false, 'attempt', 0, 'parentJobId', d.parent_id,
            'occurredAt', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
      FROM doomed d
      WHERE c.name = d.child_name AND c.id = d.child_id AND c.state = 'created' AND c.blocked
      RETURNING c.id
    )
    SELECT array_agg(id) INTO cancelled FROM done;

    -- Otherwise one parent fewer to wait for; at none the child is due now (or at its own later start).
    WITH waits AS (
      SELECT e.child_name, e.child_id, count(*) AS n
      FROM unnest(child_ids, child_names) AS e(child_id, child_name)
      GROUP BY 1, 2
    )
    UPDATE {{boss_schema}}.job c
    SET pending_dependencies = GREATEST(c.pending_dependencies - w.n, 0),
        blocked = c.pending_dependencies - w.n > 0,
        start_after = CASE WHEN c.pending_dependencies - w.n > 0 THEN c.start_after ELSE GREATEST(c.start_after, now()) END
    FROM waits w
    WHERE c.name = w.child_name AND c.id = w.child_id AND c.state = 'created' AND c.blocked;

    -- The cancelled children are the next level's finished parents.
    EXIT WHEN cancelled IS NULL;
    parent_ids := cancelled;
    parent_states := array_fill('cancelled'::text, ARRAY[cardinality(cancelled)]);
  END LOOP;
  PERFORM set_config('qs.settling_dependents', 'off', true);
END
$fn$;

CREATE FUNCTION {{schema}}.settle_dependents_of_updates() RETURNS trigger
LANGUAGE plpgsql
AS $fn$
DECLARE
  ids uuid[];
  states text[];
BEGIN
  SELECT array_agg(n.id), array_agg(n.state::text) INTO ids, states
  FROM new_jobs n JOIN old_jobs o ON o.id = n.id AND o.name = n.name
  WHERE n.state IN ('completed', 'failed', 'cancelled') AND o.state <> n.state
    AND EXISTS (SELECT 1 FROM {{schema}}.job_dependency d WHERE d.parent_id = n.id AND NOT d.settled);
  IF ids IS NOT NULL THEN
    PERFORM {{schema}}.settle_dependents(ids, states);
  END IF;
  RETURN NULL;
END
$fn$;

-- pg-boss's fail moves a job to `failed` by deleting and inserting its row.
CREATE FUNCTION {{schema}}.settle_dependents_of_inserts() RETURNS trigger
LANGUAGE plpgsql
AS $fn$
DECLARE
  ids uuid[];
  states text[];
BEGIN
  SELECT array_agg(n.id), array_agg(n.state::text) INTO ids, states
  FROM new_jobs n
  WHERE n.state IN ('failed', 'cancelled')
    AND EXISTS (SELECT 1 FROM {{schema}}.job_dependency d WHERE d.parent_id = n.id AND NOT d.settled);
  IF ids IS NOT NULL THEN
    PERFORM {{schema}}.settle_dependents(ids, states);
  END IF;
  RETURN NULL;
END
$fn$;

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
           CASE WHEN n.source_root_id IS NOT NULL THEN 'redriven' WHEN n.blocked THEN 'waiting' ELSE 'created' END AS type,
           {{schema}}.job_state_name(n.state::text, n.blocked) AS state, NULL::text AS previous_state, n.retry_count, NULL::jsonb AS detail,
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
          WHERE n.state IN ('created', 'retry') AND NOT n.blocked AND n.source_id IS NULL AND n.start_after <= now()) q;
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
    SELECT n.id, n.name, t.type, {{schema}}.job_state_name(n.state::text, n.blocked) AS state,
           {{schema}}.job_state_name(o.state::text, o.blocked) AS previous_state, n.retry_count,
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
        WHEN o.state = 'created' AND n.state = 'created' AND o.blocked AND NOT n.blocked THEN 'released'
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
         array_agg(DISTINCT c.name) FILTER (WHERE c.type IN ('redriven', 'released') AND c.runnable),
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

CREATE OR REPLACE FUNCTION {{schema}}.count_job_inserts() RETURNS trigger
LANGUAGE plpgsql
AS $fn$
BEGIN
  INSERT INTO {{schema}}.job_count_delta (queue_name, kind, bucket, n)
  SELECT n.name, {{schema}}.job_state_name(n.state::text, n.blocked),
         CASE WHEN n.state = 'created' AND n.blocked THEN '-infinity'::timestamptz
              WHEN n.state IN ('created', 'retry') THEN {{schema}}.due_bucket(n.start_after, n.created_on)
              WHEN n.state = 'active' THEN '-infinity'::timestamptz
              ELSE date_trunc('minute', now()) END,
         count(*)
  FROM new_jobs n
  GROUP BY 1, 2, 3;
  RETURN NULL;
END
$fn$;

CREATE OR REPLACE FUNCTION {{schema}}.count_job_updates() RETURNS trigger
LANGUAGE plpgsql
AS $fn$
BEGIN
  INSERT INTO {{schema}}.job_count_delta (queue_name, kind, bucket, n)
  SELECT c.queue_name, c.kind, c.bucket, sum(c.n)
  FROM new_jobs n
  JOIN old_jobs o ON o.id = n.id AND o.name = n.name
  CROSS JOIN LATERAL (
    SELECT o.name AS queue_name, {{schema}}.job_state_name(o.state::text, o.blocked) AS kind,
           CASE WHEN o.state = 'active' OR o.blocked THEN '-infinity'::timestamptz ELSE {{schema}}.due_bucket(o.start_after, o.created_on) END AS bucket,
           -1 AS n
    WHERE o.state IN ('created', 'retry', 'active')
    UNION ALL
    SELECT n.name, {{schema}}.job_state_name(n.state::text, n.blocked),
           CASE WHEN n.state = 'created' AND n.blocked THEN '-infinity'::timestamptz
                WHEN n.state IN ('created', 'retry') THEN {{schema}}.due_bucket(n.start_after, n.created_on)
                WHEN n.state = 'active' THEN '-infinity'::timestamptz
                ELSE date_trunc('minute', now()) END,
           1
    WHERE n.state IN ('created', 'retry', 'active') OR (n.state IN ('completed', 'failed', 'cancelled') AND o.state <> n.state)
  ) c
  WHERE o.state <> n.state OR o.start_after <> n.start_after OR o.blocked <> n.blocked
  GROUP BY 1, 2, 3
  HAVING sum(c.n) <> 0;
  RETURN NULL;
END
$fn$;

CREATE OR REPLACE FUNCTION {{schema}}.count_job_deletes() RETURNS trigger
LANGUAGE plpgsql
AS $fn$
BEGIN
  INSERT INTO {{schema}}.job_count_delta (queue_name, kind, bucket, n)
  SELECT o.name, {{schema}}.job_state_name(o.state::text, o.blocked),
         CASE WHEN o.state = 'active' OR o.blocked THEN '-infinity'::timestamptz ELSE {{schema}}.due_bucket(o.start_after, o.created_on) END,
         -count(*)
  FROM old_jobs o
  WHERE o.state IN ('created', 'retry', 'active')
  GROUP BY 1, 2, 3;
  RETURN NULL;
END
$fn$;

-- Per-key concurrency: a job's key is pg-boss's `group_id`; a claim of a keyed queue counts the
-- running jobs of each key across the queue's job types (store/work-queries.ts, claimKeyed). When a
-- keyed job stops running, a place of its key is free: the work channel wakes every job type of its
-- queue (a key's jobs may be of any of them), on every replica, as an insert of a runnable job does.

CREATE FUNCTION {{schema}}.notify_key_freed(queues text[]) RETURNS void
LANGUAGE sql
AS $$
  SELECT pg_notify({{schema}}.work_channel(), b.name)
  FROM {{boss_schema}}.queue b
  WHERE split_part(b.name, '/', 1) = ANY(queues)
$$;

CREATE FUNCTION {{schema}}.notify_key_freed_updates() RETURNS trigger
LANGUAGE plpgsql
AS $fn$
DECLARE
  queues text[];
BEGIN
  SELECT array_agg(DISTINCT split_part(n.name, '/', 1)) INTO queues
  FROM new_jobs n JOIN old_jobs o ON o.id = n.id AND o.name = n.name
  WHERE o.state = 'active' AND n.state <> 'active' AND n.group_id IS NOT NULL;
  IF queues IS NOT NULL THEN
    PERFORM {{schema}}.notify_key_freed(queues);
  END IF;
  RETURN NULL;
END
$fn$;

-- pg-boss's fail ends an attempt by deleting and inserting its row (state retry or failed).
CREATE FUNCTION {{schema}}.notify_key_freed_inserts() RETURNS trigger
LANGUAGE plpgsql
AS $fn$
DECLARE
  queues text[];
BEGIN
  SELECT array_agg(DISTINCT split_part(n.name, '/', 1)) INTO queues
  FROM new_jobs n
  WHERE n.state IN ('retry', 'failed') AND n.started_on IS NOT NULL AND n.group_id IS NOT NULL;
  IF queues IS NOT NULL THEN
    PERFORM {{schema}}.notify_key_freed(queues);
  END IF;
  RETURN NULL;
END
$fn$;

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
        ('qs_count_deletes', 'AFTER DELETE', 'REFERENCING OLD TABLE AS old_jobs', 'count_job_deletes'),
        ('qs_settle_inserts', 'AFTER INSERT', 'REFERENCING NEW TABLE AS new_jobs', 'settle_dependents_of_inserts'),
        ('qs_settle_updates', 'AFTER UPDATE', 'REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs', 'settle_dependents_of_updates'),
        ('qs_key_freed_inserts', 'AFTER INSERT', 'REFERENCING NEW TABLE AS new_jobs', 'notify_key_freed_inserts'),
        ('qs_key_freed_updates', 'AFTER UPDATE', 'REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs', 'notify_key_freed_updates')
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

SELECT {{schema}}.ensure_event_triggers();
