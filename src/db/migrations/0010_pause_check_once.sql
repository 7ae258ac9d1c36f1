-- The pause check ran its advisory lock and its lookup for every row a fetch claimed. One fetch claims
-- up to a hundred jobs of one queue in one transaction, and the answer cannot change within it: the
-- shared advisory lock taken at the first row keeps PauseQueue (which takes it exclusively) from
-- committing until this transaction ends. So the first row of a queue checks, and the rest of the
-- transaction reads the answer from a transaction-local setting. A resume committed meanwhile is seen
-- by the next fetch.
CREATE OR REPLACE FUNCTION {{schema}}.refuse_paused_start() RETURNS trigger
LANGUAGE plpgsql
AS $fn$
DECLARE
  api_queue text := split_part(NEW.name, '/', 1);
  memo_name text := 'qs_pause.q' || md5({{schema_literal}} || ':' || api_queue);
  memo text := current_setting(memo_name, true);
BEGIN
  -- Unset is NULL, or '' once the setting has existed in this session.
  IF memo = 'open' THEN
    RETURN NEW;
  ELSIF memo = 'paused' THEN
    RETURN NULL;
  END IF;
  PERFORM pg_advisory_xact_lock_shared(hashtextextended('queue-service:pause:' || {{schema_literal}} || ':' || api_queue, 0));
  IF EXISTS (SELECT 1 FROM {{schema}}.queue_pause p WHERE p.queue = api_queue) THEN
    PERFORM set_config(memo_name, 'paused', true);
    RETURN NULL;
  END IF;
  PERFORM set_config(memo_name, 'open', true);
  RETURN NEW;
END
$fn$;
