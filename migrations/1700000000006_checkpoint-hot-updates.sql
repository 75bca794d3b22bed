-- Up Migration

-- Every projection batch updates the checkpoints of its streams (version, position, updated_at).
-- The index on updated_at made each of those updates a non-HOT update writing three index entries;
-- nothing reads through it (status takes max(updated_at) over all of a projection's rows anyway).
-- Without it, and with room left on each page, the updates stay HOT: heap-only, no index writes.
DROP INDEX IF EXISTS projection_checkpoints_updated_idx;
ALTER TABLE projection_checkpoints SET (fillfactor = 70);

-- Down Migration
ALTER TABLE projection_checkpoints RESET (fillfactor);
CREATE INDEX IF NOT EXISTS projection_checkpoints_updated_idx ON projection_checkpoints (projection, generation, updated_at);
