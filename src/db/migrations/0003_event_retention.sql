-- The newest event position deleted by retention: a cursor at or before it is OUT_OF_RANGE.
CREATE TABLE {{schema}}.event_watermark (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  xid xid8 NOT NULL,
  seq bigint NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
