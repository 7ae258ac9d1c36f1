-- The sandbox provider's ledger: one row per job line (root_job_id), so a charge, refund or mint
-- happens once whatever the number of attempts or redrives.
CREATE TABLE {{schema}}.sandbox_ledger (
  root_job_id uuid PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('charge', 'refund', 'mint')),
  reference text NOT NULL UNIQUE,
  payment_id text,
  amount bigint,
  currency text,
  details jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sandbox_ledger_payment ON {{schema}}.sandbox_ledger (payment_id) WHERE payment_id IS NOT NULL;
