-- Up Migration

-- Retention (npm run events:archive): events of streams whose last event is older than a cut-off move
-- from event_store to event_store_archive (created by 1700000000001 with the same shape), keeping their
-- global_position, transaction_id and version. The stream's event_streams row stays where it is, so a
-- stream appended to again continues its versions; archived_version is how far it was archived.
ALTER TABLE event_streams ADD COLUMN archived_version integer NOT NULL DEFAULT 0;

-- The archive answers the same questions as the hot table: by id (idempotent re-appends), by stream
-- (revived streams, stream reads), in the gap-free global order (rebuilds), monitors by fixture (alerting).
ALTER TABLE event_store_archive ADD CONSTRAINT event_store_archive_id_unique UNIQUE (id);
ALTER TABLE event_store_archive ADD CONSTRAINT event_store_archive_stream_version_unique UNIQUE (stream_id, version);
CREATE INDEX event_store_archive_tx_position_idx ON event_store_archive (transaction_id, global_position);
CREATE INDEX event_store_archive_monitor_fixture ON event_store_archive ((payload->>'eventName'), stream_id) WHERE event_type = 'MonitoringStarted';
-- The archiver leaves streams with an open failure in the hot table; it asks per chunk of streams.
CREATE INDEX event_processing_failures_open_stream_idx ON event_processing_failures (stream_id) WHERE status <> 'resolved';

-- Every event, hot or archived, with the columns of event_store. Readers that must see history
-- (rebuilds, stream reads, alerting's monitor histories) read this; live catch-up reads event_store.
CREATE VIEW event_store_all AS
  SELECT global_position, id, stream_id, stream_type, version, event_type, schema_version, payload, metadata,
         transaction_id, occurred_at, recorded_at FROM event_store
  UNION ALL
  SELECT global_position, id, stream_id, stream_type, version, event_type, schema_version, payload, metadata,
         transaction_id, occurred_at, recorded_at FROM event_store_archive;

-- Counters kept by the archiver in the same transaction as each chunk it moves or deletes, so the
-- overview and /metrics never count the archive.
CREATE TABLE event_archive_stats (
  id               boolean PRIMARY KEY DEFAULT true CHECK (id),
  streams          bigint NOT NULL DEFAULT 0,
  events           bigint NOT NULL DEFAULT 0,
  ledger_deleted   bigint NOT NULL DEFAULT 0,
  failures_deleted bigint NOT NULL DEFAULT 0,
  last_cutoff      timestamptz,
  last_run_at      timestamptz
);
INSERT INTO event_archive_stats DEFAULT VALUES;

-- hdt_append_events / hdt_append_batch as before (1700000000001 / 1700000000005), plus one check that
-- runs only for streams that have archived events (archived_version > 0, returned by the stream upsert
-- the append does anyway): an id of the batch already in the archive raises the same unique violation
-- as an id already in the hot table, and the client answers the idempotent retry with the stored
-- positions (it looks ids up in both tables). The hot path of never-archived streams is unchanged.
CREATE OR REPLACE FUNCTION hdt_append_events(
  p_stream_id text, p_stream_type text, p_expected text,
  p_ids uuid[], p_types text[], p_schema_versions smallint[], p_payloads jsonb[], p_metadata jsonb[], p_occurred_at timestamptz[]
) RETURNS TABLE (out_event_id uuid, out_version integer, out_position bigint, out_tx text)
LANGUAGE plpgsql AS $fn$
DECLARE
  n integer := cardinality(p_ids);
  expected_number integer;
  new_version integer;
  inserted boolean;
  archived integer;
  actual integer;
BEGIN
  IF p_expected ~ '^[0-9]+$' THEN expected_number := p_expected::integer; END IF;

  INSERT INTO event_streams AS s (stream_id, stream_type, version) VALUES (p_stream_id, p_stream_type, n)
  ON CONFLICT (stream_id) DO UPDATE SET version = s.version + n, updated_at = now()
    WHERE p_expected IN ('any', 'stream_exists') OR s.version = expected_number
  RETURNING s.version, (s.xmax = 0), s.archived_version INTO new_version, inserted, archived;

  IF NOT FOUND OR (inserted AND (p_expected = 'stream_exists' OR expected_number > 0)) THEN
    SELECT s.version INTO actual FROM event_streams s WHERE s.stream_id = p_stream_id;
    RAISE EXCEPTION USING ERRCODE = 'HD409',
      MESSAGE = format('stream %s: expected %s, actual %s', p_stream_id, p_expected,
                       CASE WHEN inserted OR actual IS NULL THEN 'no_stream' ELSE actual::text END);
  END IF;

  IF archived > 0 AND EXISTS (SELECT 1 FROM event_store_archive a WHERE a.id = ANY(p_ids)) THEN
    RAISE EXCEPTION USING ERRCODE = 'unique_violation', CONSTRAINT = 'event_store_id_unique',
      MESSAGE = format('stream %s: an event id of this append is already stored (archived)', p_stream_id);
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

CREATE OR REPLACE FUNCTION hdt_append_batch(
  p_stream_ids text[], p_stream_types text[], p_expected text[],
  p_ids uuid[], p_types text[], p_schema_versions smallint[], p_payloads jsonb[], p_metadata jsonb[], p_occurred_at timestamptz[]
) RETURNS TABLE (out_stream_id text, out_event_id uuid, out_version integer, out_position bigint, out_tx text)
LANGUAGE plpgsql AS $fn$
DECLARE
  bad record;
BEGIN
  -- As in 1700000000005, plus: does any stream of the batch have archived events?
  WITH s AS (
    SELECT t.sid, min(t.styp) AS styp, (array_agg(t.exp ORDER BY t.ord))[1] AS exp, count(*)::integer AS n
    FROM unnest(p_stream_ids, p_stream_types, p_expected) WITH ORDINALITY AS t(sid, styp, exp, ord)
    GROUP BY t.sid
  ), up AS (
    INSERT INTO event_streams AS es (stream_id, stream_type, version)
    SELECT s.sid, s.styp, s.n FROM s ORDER BY s.sid
    ON CONFLICT (stream_id) DO UPDATE SET version = es.version + EXCLUDED.version, updated_at = now()
    RETURNING es.stream_id, es.version, (es.xmax = 0) AS inserted, es.archived_version
  ), j AS (
    SELECT s.sid, s.exp, CASE WHEN up.inserted THEN NULL ELSE up.version - s.n END AS actual, up.archived_version > 0 AS archived,
      CASE
        WHEN s.exp = 'any' THEN false
        WHEN s.exp = 'no_stream' THEN NOT up.inserted
        WHEN s.exp = 'stream_exists' THEN up.inserted
        WHEN s.exp ~ '^[0-9]+$' THEN (up.inserted AND s.exp::integer > 0) OR (NOT up.inserted AND up.version - s.n <> s.exp::integer)
        ELSE true
      END AS mismatch
    FROM s JOIN up ON up.stream_id = s.sid
  )
  SELECT (array_agg(j.sid ORDER BY j.sid) FILTER (WHERE j.mismatch))[1] AS sid,
         (array_agg(j.exp ORDER BY j.sid) FILTER (WHERE j.mismatch))[1] AS exp,
         (array_agg(j.actual ORDER BY j.sid) FILTER (WHERE j.mismatch))[1] AS actual,
         coalesce(bool_or(j.archived), false) AS any_archived
  INTO bad
  FROM j;

  IF bad.sid IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'HD409',
      MESSAGE = format('stream %s: expected %s, actual %s', bad.sid, bad.exp, coalesce(bad.actual::text, 'no_stream'));
  END IF;

  IF bad.any_archived AND EXISTS (SELECT 1 FROM event_store_archive a WHERE a.id = ANY(p_ids)) THEN
    RAISE EXCEPTION USING ERRCODE = 'unique_violation', CONSTRAINT = 'event_store_id_unique',
      MESSAGE = 'an event id of this append is already stored (archived)';
  END IF;

  RETURN QUERY
  WITH t AS (
    SELECT t.*, row_number() OVER (PARTITION BY t.sid ORDER BY t.ord)::integer AS rn,
           count(*) OVER (PARTITION BY t.sid)::integer AS n,
           min(t.styp) OVER (PARTITION BY t.sid) AS stream_type
    FROM unnest(p_stream_ids, p_stream_types, p_ids, p_types, p_schema_versions, p_payloads, p_metadata, p_occurred_at)
      WITH ORDINALITY AS t(sid, styp, id, typ, sv, pl, md, oc, ord)
  ), ins AS (
    INSERT INTO event_store AS e (id, stream_id, stream_type, version, event_type, schema_version, payload, metadata, occurred_at)
    SELECT t.id, t.sid, t.stream_type, es.version - t.n + t.rn, t.typ, t.sv, t.pl, coalesce(t.md, '{}'::jsonb), coalesce(t.oc, now())
    FROM t JOIN event_streams es ON es.stream_id = t.sid
    ORDER BY t.sid, t.rn
    RETURNING e.id, e.stream_id, e.version, e.global_position, e.transaction_id, e.event_type
  ), outbox AS (
    INSERT INTO event_outbox (global_position, event_id, stream_id, event_type)
    SELECT ins.global_position, ins.id, ins.stream_id, ins.event_type FROM ins
  )
  SELECT ins.stream_id, ins.id, ins.version, ins.global_position, ins.transaction_id::text FROM ins ORDER BY ins.stream_id, ins.version;
END
$fn$;

-- Down Migration
-- Moves archived events back, then restores the functions of 1700000000001 / 1700000000005.
INSERT INTO event_store (global_position, id, stream_id, stream_type, version, event_type, schema_version, payload, metadata, transaction_id, occurred_at, recorded_at)
  OVERRIDING SYSTEM VALUE
  SELECT global_position, id, stream_id, stream_type, version, event_type, schema_version, payload, metadata, transaction_id, occurred_at, recorded_at
  FROM event_store_archive ON CONFLICT DO NOTHING;
TRUNCATE event_store_archive;
DROP VIEW IF EXISTS event_store_all;
DROP TABLE IF EXISTS event_archive_stats;
DROP INDEX IF EXISTS event_processing_failures_open_stream_idx;
DROP INDEX IF EXISTS event_store_archive_monitor_fixture;
DROP INDEX IF EXISTS event_store_archive_tx_position_idx;
ALTER TABLE event_store_archive DROP CONSTRAINT IF EXISTS event_store_archive_stream_version_unique;
ALTER TABLE event_store_archive DROP CONSTRAINT IF EXISTS event_store_archive_id_unique;
-- hdt_append_events as created by 1700000000001:
CREATE OR REPLACE FUNCTION hdt_append_events(
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
-- hdt_append_batch as created by 1700000000005:
CREATE OR REPLACE FUNCTION hdt_append_batch(
  p_stream_ids text[], p_stream_types text[], p_expected text[],
  p_ids uuid[], p_types text[], p_schema_versions smallint[], p_payloads jsonb[], p_metadata jsonb[], p_occurred_at timestamptz[]
) RETURNS TABLE (out_stream_id text, out_event_id uuid, out_version integer, out_position bigint, out_tx text)
LANGUAGE plpgsql AS $fn$
DECLARE
  bad record;
BEGIN
  -- Per stream: its type, the expected version given with its first event, and its event count.
  -- ON CONFLICT DO UPDATE locks existing streams and always returns the row, so the expectation is
  -- checked against the version before this append (new version - n) in one pass.
  WITH s AS (
    SELECT t.sid, min(t.styp) AS styp, (array_agg(t.exp ORDER BY t.ord))[1] AS exp, count(*)::integer AS n
    FROM unnest(p_stream_ids, p_stream_types, p_expected) WITH ORDINALITY AS t(sid, styp, exp, ord)
    GROUP BY t.sid
  ), up AS (
    INSERT INTO event_streams AS es (stream_id, stream_type, version)
    SELECT s.sid, s.styp, s.n FROM s ORDER BY s.sid
    ON CONFLICT (stream_id) DO UPDATE SET version = es.version + EXCLUDED.version, updated_at = now()
    RETURNING es.stream_id, es.version, (es.xmax = 0) AS inserted
  )
  SELECT s.sid, s.exp, CASE WHEN up.inserted THEN NULL ELSE up.version - s.n END AS actual
  INTO bad
  FROM s JOIN up ON up.stream_id = s.sid
  WHERE CASE
    WHEN s.exp = 'any' THEN false
    WHEN s.exp = 'no_stream' THEN NOT up.inserted
    WHEN s.exp = 'stream_exists' THEN up.inserted
    WHEN s.exp ~ '^[0-9]+$' THEN (up.inserted AND s.exp::integer > 0) OR (NOT up.inserted AND up.version - s.n <> s.exp::integer)
    ELSE true
  END
  ORDER BY s.sid LIMIT 1;

  IF FOUND THEN
    RAISE EXCEPTION USING ERRCODE = 'HD409',
      MESSAGE = format('stream %s: expected %s, actual %s', bad.sid, bad.exp, coalesce(bad.actual::text, 'no_stream'));
  END IF;

  -- The streams are locked by this transaction now, so their versions are the ones just written.
  RETURN QUERY
  WITH t AS (
    SELECT t.*, row_number() OVER (PARTITION BY t.sid ORDER BY t.ord)::integer AS rn,
           count(*) OVER (PARTITION BY t.sid)::integer AS n,
           min(t.styp) OVER (PARTITION BY t.sid) AS stream_type
    FROM unnest(p_stream_ids, p_stream_types, p_ids, p_types, p_schema_versions, p_payloads, p_metadata, p_occurred_at)
      WITH ORDINALITY AS t(sid, styp, id, typ, sv, pl, md, oc, ord)
  ), ins AS (
    INSERT INTO event_store AS e (id, stream_id, stream_type, version, event_type, schema_version, payload, metadata, occurred_at)
    SELECT t.id, t.sid, t.stream_type, es.version - t.n + t.rn, t.typ, t.sv, t.pl, coalesce(t.md, '{}'::jsonb), coalesce(t.oc, now())
    FROM t JOIN event_streams es ON es.stream_id = t.sid
    -- Positions follow (stream, version), as the per-stream version did.
    ORDER BY t.sid, t.rn
    RETURNING e.id, e.stream_id, e.version, e.global_position, e.transaction_id, e.event_type
  ), outbox AS (
    INSERT INTO event_outbox (global_position, event_id, stream_id, event_type)
    SELECT ins.global_position, ins.id, ins.stream_id, ins.event_type FROM ins
  )
  SELECT ins.stream_id, ins.id, ins.version, ins.global_position, ins.transaction_id::text FROM ins ORDER BY ins.stream_id, ins.version;
END
$fn$;
ALTER TABLE event_streams DROP COLUMN IF EXISTS archived_version;
