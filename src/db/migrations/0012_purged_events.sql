-- PurgeDeadLetters discards dead letters for good and records each as a `purged` event.
ALTER TYPE {{schema}}.job_event_type ADD VALUE IF NOT EXISTS 'purged';
