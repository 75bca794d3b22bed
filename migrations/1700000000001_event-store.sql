-- Up Migration

-- One row per stream: the compare-and-set target of optimistic concurrency.
CREATE TABLE event_streams (
  stream_id   text PRIMARY KEY CHECK (length(stream_id) BETWEEN 1 AND 256),
  stream_type text NOT NULL CHECK (length(stream_type) BETWEEN 1 AND 64),
  version     integer NOT NULL CHECK (version >= 0),
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE event_store (
  global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id              uuid NOT NULL,
  stream_id       text NOT NULL,
  stream_type     text NOT NULL,
  version         integer NOT NULL CHECK (version >= 1),
  event_type      text NOT NULL CHECK (length(event_type) BETWEEN 1 AND 128),
  schema_version  smallint NOT NULL DEFAULT 1 CHECK (schema_version >= 1),
  payload         jsonb NOT NULL,
  metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
  -- A sequence value becomes visible at commit, not at insert: global readers filter and order by
  -- (transaction_id, global_position) below the snapshot xmin so that no late commit is skipped.
  transaction_id  xid8 NOT NULL DEFAULT pg_current_xact_id(),
  occurred_at     timestamptz NOT NULL DEFAULT now(),
  recorded_at     timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT event_store_id_unique UNIQUE (id),
  CONSTRAINT event_store_stream_version_unique UNIQUE (stream_id, version)
);
CREATE INDEX event_store_tx_position_idx ON event_store (transaction_id, global_position);
CREATE INDEX event_store_type_position_idx ON event_store (event_type, global_position);
-- BRIN: nearly free on append, enough for "events today / since" range scans on an append-only table.
CREATE INDEX event_store_recorded_at_brin ON event_store USING brin (recorded_at);

-- Same shape, for retention: archived events keep their positions so read models stay valid.
CREATE TABLE event_store_archive (LIKE event_store INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
ALTER TABLE event_store_archive ADD PRIMARY KEY (global_position);

CREATE TABLE event_snapshots (
  stream_id      text NOT NULL,
  version        integer NOT NULL CHECK (version >= 1),
  schema_version smallint NOT NULL DEFAULT 1,
  state          jsonb NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (stream_id, version)
);

-- Rows are written in the append transaction and removed once the jobs are in Redis:
-- an event committed while Redis is down is still delivered later.
CREATE TABLE event_outbox (
  global_position bigint PRIMARY KEY,
  event_id        uuid NOT NULL,
  stream_id       text NOT NULL,
  event_type      text NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now()
);

-- Appends events to one stream in one round trip: one stream upsert (the optimistic-concurrency
-- compare-and-set) and one insert of events plus outbox rows. Returns one row per event.
-- p_expected: 'any' | 'no_stream' | 'stream_exists' | a decimal version ('0' = no stream yet).
-- Raises SQLSTATE 'HD409' on a version mismatch. Idempotent retries (ids already stored) surface as
-- HD409 or a unique violation on event_store_id_unique; the client then looks the ids up, which keeps
-- that lookup off the hot path.
CREATE FUNCTION hdt_append_events(
  p_stream_id text, p_stream_type text, p_expected text,
  p_ids uuid[], p_types text[], p_schema_versions smallint[], p_payloads jsonb[], p_metadata jsonb[], p_occurred_at timestamptz[]
) RETURNS TABLE (out_event_id uuid, out_version integer, out_position bigint, out_tx text)
LANGUAGE plpgsql AS $fn$
DECLARE
  n integer := cardinality(p_ids);
  expected_number integer;
  new_version integer;
  inserted boolean;
  actual integer;
BEGIN
  IF p_expected ~ '^[0-9]+$' THEN expected_number := p_expected::integer; END IF;

  INSERT INTO event_streams AS s (stream_id, stream_type, version) VALUES (p_stream_id, p_stream_type, n)
  ON CONFLICT (stream_id) DO UPDATE SET version = s.version + n, updated_at = now()
    WHERE p_expected IN ('any', 'stream_exists') OR s.version = expected_number
  RETURNING s.version, (s.xmax = 0) INTO new_version, inserted;

  IF NOT FOUND OR (inserted AND (p_expected = 'stream_exists' OR expected_number > 0)) THEN
    SELECT s.version INTO actual FROM event_streams s WHERE s.stream_id = p_stream_id;
    RAISE EXCEPTION USING ERRCODE = 'HD409',
      MESSAGE = format('stream %s: expected %s, actual %s', p_stream_id, p_expected,
                       CASE WHEN inserted OR actual IS NULL THEN 'no_stream' ELSE actual::text END);
  END IF;

  RETURN QUERY
  WITH ins AS (
    INSERT INTO event_store AS es (id, stream_id, stream_type, version, event_type, schema_version, payload, metadata, occurred_at)
    SELECT t.id, p_stream_id, p_stream_type, new_version - n + t.ord::integer, t.typ, t.sv, t.pl, coalesce(t.md, '{}'::jsonb), coalesce(t.oc, now())
    FROM unnest(p_ids, p_types, p_schema_versions, p_payloads, p_metadata, p_occurred_at) WITH ORDINALITY AS t(id, typ, sv, pl, md, oc, ord)
    RETURNING es.id, es.version, es.global_position, es.transaction_id, es.event_type
  ), outbox AS (
    INSERT INTO event_outbox (global_position, event_id, stream_id, event_type)
    SELECT ins.global_position, ins.id, p_stream_id, ins.event_type FROM ins
  )
  SELECT ins.id, ins.version, ins.global_position, ins.transaction_id::text FROM ins ORDER BY ins.version;
END
$fn$;

-- Down Migration
DROP FUNCTION IF EXISTS hdt_append_events;
DROP TABLE IF EXISTS event_outbox, event_snapshots, event_store_archive, event_store, event_streams;
