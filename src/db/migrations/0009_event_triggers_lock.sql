-- Replicas starting together (a first install, or a deploy whose new job type adds a partition) each
-- run ensure_event_triggers(): its check-then-create raced, and the loser failed with "trigger
-- already exists". The check and the creation now happen under a transaction-level advisory lock.

CREATE OR REPLACE FUNCTION {{schema}}.ensure_event_triggers() RETURNS int
LANGUAGE plpgsql
AS $fn$
DECLARE
  t regclass;
  created int := 0;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended('queue-service:event-triggers:' || {{schema_literal}}, 0));
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
