-- Up Migration

-- Appends to many streams in one round trip and one transaction (all or nothing): a producer's batch
-- usually spans hundreds of streams, and one client round trip per stream was the bottleneck.
-- Streams are locked in stream_id order, the same order every other writer uses, so batches never
-- deadlock each other. Per stream, the first event's p_expected applies.
CREATE FUNCTION hdt_append_batch(
  p_stream_ids text[], p_stream_types text[], p_expected text[],
  p_ids uuid[], p_types text[], p_schema_versions smallint[], p_payloads jsonb[], p_metadata jsonb[], p_occurred_at timestamptz[]
) RETURNS TABLE (out_stream_id text, out_event_id uuid, out_version integer, out_position bigint, out_tx text)
LANGUAGE plpgsql AS $fn$
DECLARE
  s record;
BEGIN
  FOR s IN
    SELECT t.sid, min(t.styp) AS styp, (array_agg(t.exp ORDER BY t.ord))[1] AS exp, array_agg(t.ord ORDER BY t.ord) AS ords
    FROM unnest(p_stream_ids, p_stream_types, p_expected) WITH ORDINALITY AS t(sid, styp, exp, ord)
    GROUP BY t.sid ORDER BY t.sid
  LOOP
    RETURN QUERY SELECT s.sid, r.out_event_id, r.out_version, r.out_position, r.out_tx
    FROM hdt_append_events(
      s.sid, s.styp, s.exp,
      ARRAY(SELECT p_ids[o] FROM unnest(s.ords) AS o),
      ARRAY(SELECT p_types[o] FROM unnest(s.ords) AS o),
      ARRAY(SELECT p_schema_versions[o] FROM unnest(s.ords) AS o),
      ARRAY(SELECT p_payloads[o] FROM unnest(s.ords) AS o),
      ARRAY(SELECT p_metadata[o] FROM unnest(s.ords) AS o),
      ARRAY(SELECT p_occurred_at[o] FROM unnest(s.ords) AS o)) AS r;
  END LOOP;
END
$fn$;

-- Down Migration
DROP FUNCTION IF EXISTS hdt_append_batch;
