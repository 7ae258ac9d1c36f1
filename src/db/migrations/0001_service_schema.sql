-- The service's own schema. Later migrations add job events, idempotency keys, pauses, rate limits,
-- rollups and alerts.

-- Secrets the replicas share, generated once by whichever replica needs one first (e.g. the key that
-- signs page tokens).
CREATE TABLE {{schema}}.service_secret (
  name text PRIMARY KEY,
  secret bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
