-- A failed parent's cancel cascades down its waiting descendants level by level in one call, instead
-- of one nested trigger call per level (a deep chain would reach PostgreSQL's stack depth limit and
-- fail the parent's own transaction). The cancels inside the loop still fire the settle triggers; a
-- transaction-local flag makes those nested calls return at once, since the loop settles the next
-- level itself.
CREATE OR REPLACE FUNCTION {{schema}}.settle_dependents(parent_ids uuid[], parent_states text[]) RETURNS void
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
