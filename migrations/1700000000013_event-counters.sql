-- Up Migration

-- Monitoring costs that do not grow with the store (ARCHITECTURE §7). Every monitoring surface (overview,
-- statistics, projections, /metrics, events:monitor, the npm start status line) used to count or group
-- event_store, event_streams or projection_checkpoints on each call: 10k → 1M events made them 40–212×
-- slower. Now the counts are kept as events are appended and checkpoints advance.
--
-- No hot counter row on the append path: appends run concurrently, and one row updated by every append
-- transaction would queue them all on its row lock. Instead the append's own INSERT statement also
-- appends a few pre-aggregated delta rows (one per minute, type, stream type and platform of the
-- batch) to an append-only table, which takes no row lock anyone else waits for. A folder (hdt_fold_counters,
-- called by readers and by the worker's timer, one at a time via an advisory lock) moves the deltas into
-- the counter tables in one transaction. Readers read counters + the unfolded deltas in one snapshot,
-- so a fold is never seen half done and nothing is counted twice.
--
-- Counters only grow: archiving (DELETE from event_store) does not touch them, so totals include
-- archived events, as the overview's total always did.

-- One row per (append statement, minute, type, stream type, platform). A single-event append writes one.
CREATE TABLE event_counter_deltas (
  minute      timestamptz NOT NULL,
  event_type  text NOT NULL,
  stream_type text NOT NULL,
  platform    text,
  events      bigint NOT NULL,
  -- Events with version 1: streams created.
  streams     bigint NOT NULL
)
-- A queue-like table: every fold deletes all of it. Readers scan it whole, dead rows included, so
-- autovacuum should clean it after a few thousand folded rows, not after 20 % of a tiny table.
WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000, autovacuum_vacuum_insert_threshold = 5000);

-- grain 'all' (bucket = epoch): dim 'type' (key = event type), 'stream_type' (events and streams per stream type).
-- grain 'hour' / 'minute': dim 'type' and 'platform' (events in that hour/minute).
CREATE TABLE event_counters (
  grain   text NOT NULL CHECK (grain IN ('all', 'hour', 'minute')),
  bucket  timestamptz NOT NULL,
  dim     text NOT NULL CHECK (dim IN ('type', 'stream_type', 'platform')),
  key     text NOT NULL,
  events  bigint NOT NULL DEFAULT 0,
  streams bigint NOT NULL DEFAULT 0,
  -- Bucket before dim: windows (grain, bucket range) and the pruning of old minute rows are range scans.
  PRIMARY KEY (grain, bucket, dim, key)
);

-- hdt_append_events / hdt_append_batch as in 1700000000010, plus one CTE in the statement that inserts
-- the events: their delta rows. (A statement trigger on event_store did the same at 0.72× the rate of
-- single-event appends, measured on/off alternated in one run: the transition table and the trigger
-- call cost more than the insert itself. Every append goes through these two functions.)
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
    RETURNING es.id, es.version, es.global_position, es.transaction_id, es.event_type, es.recorded_at, es.payload->>'platform' AS platform
  ), outbox AS (
    INSERT INTO event_outbox (global_position, event_id, stream_id, event_type)
    SELECT ins.global_position, ins.id, p_stream_id, ins.event_type FROM ins
  ), counted AS (
    INSERT INTO event_counter_deltas (minute, event_type, stream_type, platform, events, streams)
    SELECT date_trunc('minute', ins.recorded_at), ins.event_type, p_stream_type, ins.platform, count(*), count(*) FILTER (WHERE ins.version = 1)
    FROM ins GROUP BY 1, 2, 4
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
    RETURNING e.id, e.stream_id, e.version, e.global_position, e.transaction_id, e.event_type, e.stream_type, e.recorded_at, e.payload->>'platform' AS platform
  ), outbox AS (
    INSERT INTO event_outbox (global_position, event_id, stream_id, event_type)
    SELECT ins.global_position, ins.id, ins.stream_id, ins.event_type FROM ins
  ), counted AS (
    INSERT INTO event_counter_deltas (minute, event_type, stream_type, platform, events, streams)
    SELECT date_trunc('minute', ins.recorded_at), ins.event_type, ins.stream_type, ins.platform, count(*), count(*) FILTER (WHERE ins.version = 1)
    FROM ins GROUP BY 1, 2, 3, 4
  )
  SELECT ins.stream_id, ins.id, ins.version, ins.global_position, ins.transaction_id::text FROM ins ORDER BY ins.stream_id, ins.version;
END
$fn$;

-- Per (projection, generation): the sum of checkpoint versions (events applied; a projection's lag is
-- the events of its stream types minus this), the highest checkpoint position and the newest checkpoint
-- change (projection_checkpoints has no index on updated_at, on purpose: 1700000000006). Same scheme: the
-- projection workers and the replay write checkpoints concurrently, so their triggers append deltas.
CREATE TABLE projection_counter_deltas (
  projection   text NOT NULL,
  generation   integer NOT NULL,
  versions     bigint NOT NULL,
  max_position bigint,
  last_updated timestamptz
) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000, autovacuum_vacuum_insert_threshold = 5000);

CREATE TABLE projection_counters (
  projection   text NOT NULL,
  generation   integer NOT NULL,
  versions     bigint NOT NULL DEFAULT 0,
  max_position bigint,
  last_updated timestamptz,
  PRIMARY KEY (projection, generation)
);

-- Inserts: a row trigger that runs only for a checkpoint inserted with a version (a replay --from
-- seeding where to start). The catch-up inserts its new checkpoints at version 0 and advances them
-- with an UPDATE; a statement trigger here would capture every one of those rows for nothing (it cost
-- a rebuild about a fifth of its rate, with the UPDATE trigger).
CREATE FUNCTION hdt_count_checkpoints_ins() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  INSERT INTO projection_counter_deltas (projection, generation, versions, max_position, last_updated)
  VALUES (NEW.projection, NEW.generation, NEW.version, NEW.global_position, NEW.updated_at);
  RETURN NULL;
END
$fn$;

-- Updates: the statement's new versions minus its old ones, per (projection, generation); no join of
-- the two transition tables (a checkpoint's projection and generation never change). The catch-up's
-- locking upsert (ON CONFLICT DO UPDATE SET version = version) changes no version and writes no delta;
-- its rows' positions and times are old ones, never above what is counted, so skipping it loses nothing.
CREATE FUNCTION hdt_count_checkpoints_upd() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  INSERT INTO projection_counter_deltas (projection, generation, versions, max_position, last_updated)
  SELECT n.projection, n.generation, n.versions - o.versions, n.max_position, n.last_updated
  FROM (SELECT projection, generation, sum(version) AS versions, max(global_position) AS max_position, max(updated_at) AS last_updated
        FROM new_ck GROUP BY 1, 2) n
  JOIN (SELECT projection, generation, sum(version) AS versions, max(updated_at) AS last_updated FROM old_ck GROUP BY 1, 2) o
    USING (projection, generation)
  WHERE n.versions <> o.versions OR n.last_updated > o.last_updated;
  RETURN NULL;
END
$fn$;

CREATE FUNCTION hdt_count_checkpoints_del() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  INSERT INTO projection_counter_deltas (projection, generation, versions, max_position, last_updated)
  SELECT o.projection, o.generation, -sum(o.version), NULL, NULL FROM old_ck o GROUP BY 1, 2;
  RETURN NULL;
END
$fn$;

CREATE TRIGGER projection_checkpoints_count_ins AFTER INSERT ON projection_checkpoints
  FOR EACH ROW WHEN (NEW.version <> 0 OR NEW.global_position <> 0) EXECUTE FUNCTION hdt_count_checkpoints_ins();
CREATE TRIGGER projection_checkpoints_count_upd AFTER UPDATE ON projection_checkpoints
  REFERENCING OLD TABLE AS old_ck NEW TABLE AS new_ck FOR EACH STATEMENT EXECUTE FUNCTION hdt_count_checkpoints_upd();
CREATE TRIGGER projection_checkpoints_count_del AFTER DELETE ON projection_checkpoints
  REFERENCING OLD TABLE AS old_ck FOR EACH STATEMENT EXECUTE FUNCTION hdt_count_checkpoints_del();

-- What readers see: folded counters plus the deltas not folded yet, expanded to the same grains.
CREATE VIEW event_counts AS
  SELECT grain, bucket, dim, key, events, streams FROM event_counters
  UNION ALL SELECT 'all', 'epoch'::timestamptz, 'type', event_type, events, 0 FROM event_counter_deltas
  UNION ALL SELECT 'all', 'epoch'::timestamptz, 'stream_type', stream_type, events, streams FROM event_counter_deltas
  UNION ALL SELECT 'hour', date_trunc('hour', minute), 'type', event_type, events, 0 FROM event_counter_deltas
  UNION ALL SELECT 'hour', date_trunc('hour', minute), 'platform', platform, events, 0 FROM event_counter_deltas WHERE platform IS NOT NULL
  UNION ALL SELECT 'minute', minute, 'type', event_type, events, 0 FROM event_counter_deltas
  UNION ALL SELECT 'minute', minute, 'platform', platform, events, 0 FROM event_counter_deltas WHERE platform IS NOT NULL;

CREATE VIEW projection_counts AS
  SELECT projection, generation, sum(versions)::int8 AS versions, max(max_position) AS max_position, max(last_updated) AS last_updated
  FROM (SELECT projection, generation, versions, max_position, last_updated FROM projection_counters
        UNION ALL SELECT projection, generation, versions, max_position, last_updated FROM projection_counter_deltas) u
  GROUP BY projection, generation;

-- Moves every visible delta into the counters, in one transaction; returns how many delta rows it
-- folded, or -1 when another session is folding (the caller just reads counters + deltas). Minute
-- rows older than the longest statistics window (31 days) plus a day are dropped; hour and all-time
-- rows are kept.
CREATE FUNCTION hdt_fold_counters() RETURNS integer LANGUAGE plpgsql AS $fn$
DECLARE
  folded integer := 0;
  folded_ck integer := 0;
BEGIN
  -- Transaction-scoped: released at the caller's commit, together with the fold's writes.
  IF NOT pg_try_advisory_xact_lock(hashtext('hdt_fold_counters')) THEN
    RETURN -1;
  END IF;

  WITH d AS (
    DELETE FROM event_counter_deltas RETURNING *
  ), agg AS (
    SELECT 'all' AS grain, 'epoch'::timestamptz AS bucket, 'type' AS dim, event_type AS key, sum(events) AS events, 0::numeric AS streams FROM d GROUP BY event_type
    UNION ALL SELECT 'all', 'epoch'::timestamptz, 'stream_type', stream_type, sum(events), sum(streams) FROM d GROUP BY stream_type
    UNION ALL SELECT 'hour', date_trunc('hour', minute), 'type', event_type, sum(events), 0 FROM d GROUP BY 2, 4
    UNION ALL SELECT 'hour', date_trunc('hour', minute), 'platform', platform, sum(events), 0 FROM d WHERE platform IS NOT NULL GROUP BY 2, 4
    UNION ALL SELECT 'minute', minute, 'type', event_type, sum(events), 0 FROM d GROUP BY 2, 4
    UNION ALL SELECT 'minute', minute, 'platform', platform, sum(events), 0 FROM d WHERE platform IS NOT NULL GROUP BY 2, 4
  ), up AS (
    INSERT INTO event_counters AS c (grain, bucket, dim, key, events, streams)
    SELECT grain, bucket, dim, key, events, streams FROM agg
    -- One row per key in agg (grouped above), so ON CONFLICT never meets the same key twice.
    ON CONFLICT (grain, bucket, dim, key) DO UPDATE SET events = c.events + EXCLUDED.events, streams = c.streams + EXCLUDED.streams
  )
  SELECT count(*) INTO folded FROM d;

  WITH d AS (
    DELETE FROM projection_counter_deltas RETURNING *
  ), agg AS (
    SELECT projection, generation, sum(versions) AS versions, max(max_position) AS max_position, max(last_updated) AS last_updated FROM d GROUP BY 1, 2
  ), up AS (
    INSERT INTO projection_counters AS c (projection, generation, versions, max_position, last_updated)
    SELECT projection, generation, versions, max_position, last_updated FROM agg
    ON CONFLICT (projection, generation) DO UPDATE SET versions = c.versions + EXCLUDED.versions,
      max_position = greatest(c.max_position, EXCLUDED.max_position), last_updated = greatest(c.last_updated, EXCLUDED.last_updated)
  )
  SELECT count(*) INTO folded_ck FROM d;
  -- A generation whose checkpoints are all gone (an old generation after a switch-over).
  DELETE FROM projection_counters c WHERE c.versions = 0
    AND NOT EXISTS (SELECT 1 FROM projection_checkpoints k WHERE k.projection = c.projection AND k.generation = c.generation);

  DELETE FROM event_counters WHERE grain = 'minute' AND bucket < now() - interval '32 days';
  RETURN folded + folded_ck;
END
$fn$;

-- Backfill from what is stored (a one-time scan at migration time; archived events count too).
INSERT INTO event_counter_deltas (minute, event_type, stream_type, platform, events, streams)
SELECT date_trunc('minute', recorded_at), event_type, stream_type, payload->>'platform', count(*), count(*) FILTER (WHERE version = 1)
FROM event_store_all GROUP BY 1, 2, 3, 4;
INSERT INTO projection_counter_deltas (projection, generation, versions, max_position, last_updated)
SELECT projection, generation, sum(version), max(global_position), max(updated_at) FROM projection_checkpoints GROUP BY 1, 2;
SELECT hdt_fold_counters();

-- TRUNCATE event_store (tests, a wiped demo) also wipes what was counted of it: recount the archive.
CREATE FUNCTION hdt_recount_after_truncate() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  DELETE FROM event_counter_deltas;
  DELETE FROM event_counters;
  INSERT INTO event_counter_deltas (minute, event_type, stream_type, platform, events, streams)
  SELECT date_trunc('minute', recorded_at), event_type, stream_type, payload->>'platform', count(*), count(*) FILTER (WHERE version = 1)
  FROM event_store_archive GROUP BY 1, 2, 3, 4;
  RETURN NULL;
END
$fn$;
CREATE TRIGGER event_store_recount_after_truncate AFTER TRUNCATE ON event_store
  FOR EACH STATEMENT EXECUTE FUNCTION hdt_recount_after_truncate();

CREATE FUNCTION hdt_projection_counts_after_truncate() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  DELETE FROM projection_counter_deltas;
  DELETE FROM projection_counters;
  RETURN NULL;
END
$fn$;
CREATE TRIGGER projection_checkpoints_after_truncate AFTER TRUNCATE ON projection_checkpoints
  FOR EACH STATEMENT EXECUTE FUNCTION hdt_projection_counts_after_truncate();

-- Down Migration
-- The append functions as 1700000000010 defined them (without the counted CTE):
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

DROP TRIGGER IF EXISTS projection_checkpoints_after_truncate ON projection_checkpoints;
DROP TRIGGER IF EXISTS event_store_recount_after_truncate ON event_store;
DROP TRIGGER IF EXISTS projection_checkpoints_count_del ON projection_checkpoints;
DROP TRIGGER IF EXISTS projection_checkpoints_count_upd ON projection_checkpoints;
DROP TRIGGER IF EXISTS projection_checkpoints_count_ins ON projection_checkpoints;
DROP FUNCTION IF EXISTS hdt_projection_counts_after_truncate();
DROP FUNCTION IF EXISTS hdt_recount_after_truncate();
DROP FUNCTION IF EXISTS hdt_fold_counters();
DROP VIEW IF EXISTS projection_counts;
DROP VIEW IF EXISTS event_counts;
DROP FUNCTION IF EXISTS hdt_count_checkpoints_del();
DROP FUNCTION IF EXISTS hdt_count_checkpoints_upd();
DROP FUNCTION IF EXISTS hdt_count_checkpoints_ins();
DROP TABLE IF EXISTS projection_counters;
DROP TABLE IF EXISTS projection_counter_deltas;
DROP TABLE IF EXISTS event_counters;
DROP TABLE IF EXISTS event_counter_deltas;
