-- ListJobs filtered by state: one branch per (pg-boss queue, state) walks this index backwards from
-- the keyset position, so a rare state among many newer jobs (the completed ones under a backlog of
-- a million waiting) is found without walking the others (docs/engine.md, "Reading jobs and
-- indexes"). On the partitioned parent, so every partition gets it; on a large installation build it
-- partition by partition first (docs/engine.md, "Upgrades").
CREATE INDEX IF NOT EXISTS qs_job_state_created ON {{boss_schema}}.job (name, state, created_on, id);
