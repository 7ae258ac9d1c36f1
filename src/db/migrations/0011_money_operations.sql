-- Money moves once per business key, not per job line (docs/engine.md, "Money operations").

-- One row per money operation: a charge per (principal, paymentId), a mint per (principal, ticketId),
-- a refund per (principal, refundId), or per job line when a refund names no refundId. The first job
-- that tries an operation fixes its terms; a repeat with the same terms gets the first one's outcome,
-- with other terms it fails. The attempt named by (job_id, retry_count) holds the operation: only it
-- may call the provider while it runs.
CREATE TABLE {{schema}}.money_operation (
  kind text NOT NULL CHECK (kind IN ('charge', 'refund', 'mint')),
  principal text NOT NULL,
  business_key text NOT NULL,
  terms jsonb NOT NULL,
  state text NOT NULL CHECK (state IN ('pending', 'succeeded', 'failed')),
  job_id uuid NOT NULL,
  retry_count int NOT NULL,
  -- Charges and refunds: the payment (its payer, paymentId), amount and currency.
  payer text,
  payment_id text,
  amount bigint,
  currency text,
  result jsonb,
  error jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (kind, principal, business_key)
);
CREATE INDEX money_operation_refunds_of ON {{schema}}.money_operation (payer, payment_id) WHERE kind = 'refund';

-- The sandbox gateway keys its ledger by the idempotency key the service sends (derived from the
-- business key), like a real gateway, and keeps each principal's payments apart (its account).
-- Rows written before keep the key they were made under, so a retry of such a job still finds them;
-- root_job_id stays, as the job line that made the effect (a record, no longer a key).
ALTER TABLE {{schema}}.sandbox_ledger DROP CONSTRAINT sandbox_ledger_pkey;
ALTER TABLE {{schema}}.sandbox_ledger ALTER COLUMN root_job_id DROP NOT NULL;
ALTER TABLE {{schema}}.sandbox_ledger
  ADD COLUMN idempotency_key text,
  ADD COLUMN account text,
  ADD COLUMN charge_reference text;
UPDATE {{schema}}.sandbox_ledger SET idempotency_key = 'queue-service:' || kind || ':' || root_job_id;
ALTER TABLE {{schema}}.sandbox_ledger ALTER COLUMN idempotency_key SET NOT NULL;
ALTER TABLE {{schema}}.sandbox_ledger ADD PRIMARY KEY (idempotency_key);
DROP INDEX {{schema}}.sandbox_ledger_payment;
CREATE INDEX sandbox_ledger_refunds_of ON {{schema}}.sandbox_ledger (charge_reference) WHERE kind = 'refund';
