-- Alert rules, their instances (firing -> acknowledged -> resolved), and the replicas that are alive
-- (API rate limits share a principal's limit among them).

CREATE TABLE {{schema}}.alert_rule (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL UNIQUE,
  description text NOT NULL DEFAULT '',
  metric text NOT NULL CHECK (metric IN ('queue_depth', 'failure_rate', 'dead_letter_count', 'oldest_queued_age', 'run_time_percentile')),
  queue text NOT NULL,
  job_type text,
  threshold double precision NOT NULL,
  window_seconds int NOT NULL,
  percentile double precision,
  targets jsonb NOT NULL DEFAULT '[]',
  enabled boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE {{schema}}.alert (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  rule_id uuid REFERENCES {{schema}}.alert_rule (id) ON DELETE SET NULL,
  rule_name text NOT NULL,
  state text NOT NULL CHECK (state IN ('firing', 'acknowledged', 'resolved')),
  value double precision NOT NULL,
  threshold double precision NOT NULL,
  last_value double precision NOT NULL,
  summary text NOT NULL,
  fired_at timestamptz NOT NULL DEFAULT now(),
  acknowledged_at timestamptz,
  acknowledged_by text,
  resolved_at timestamptz,
  notified_at timestamptz,
  notify_attempts int NOT NULL DEFAULT 0,
  notify_error text
);
-- At most one open alert per rule: a firing is one alert until it resolves.
CREATE UNIQUE INDEX alert_open_per_rule ON {{schema}}.alert (rule_id) WHERE state IN ('firing', 'acknowledged');
CREATE INDEX alert_newest ON {{schema}}.alert (fired_at DESC, id DESC);

CREATE TABLE {{schema}}.replica (
  id uuid PRIMARY KEY,
  name text NOT NULL,
  started_at timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now()
);
