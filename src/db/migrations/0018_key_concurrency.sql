-- Per-key concurrency (JobOptions.concurrency_key, QueuePolicy.key_concurrency). A job's key is
-- pg-boss's `group_id`; a claim of a keyed queue counts the running jobs of each key across the
-- queue's job types (store/work-queries.ts, claimKeyed). When a keyed job stops running, a place of
-- its key is free: the work channel wakes every job type of its queue (a key's jobs may be of any of
-- them), on every replica, as an insert of a runnable job does.

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
