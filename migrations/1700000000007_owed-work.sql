-- Up Migration

-- Who is owed events is not one process's opinion: every consumer (handler or projection) that any
-- process knows is registered here, with the event types it handles. The owed set of a published
-- event is decided from this table. last_seen_at is the heartbeat of the newest live worker running it.
CREATE TABLE event_consumers (
  name          text PRIMARY KEY,
  kind          text NOT NULL CHECK (kind IN ('handler', 'projection')),
  version       integer NOT NULL DEFAULT 1,
  event_types   text[] NOT NULL,
  registered_at timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  last_seen_at  timestamptz
);

-- A published batch: the global positions of its events, once, as runs of consecutive positions (a
-- producer's batch is usually one run, so the row stays small). A redelivery reads them from here.
-- Removed by the reconciler once no consumer owes it any more.
CREATE TABLE owed_batches (
  job_key    text PRIMARY KEY,
  positions  int8multirange NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Owed work: one thin row per (published batch, consumer) until that consumer's effect for the batch
-- is committed; the row is deleted in the same transaction as the effect (or as the failure record).
-- Redis jobs only speed delivery: the relay's reconciler re-enqueues rows whose job is gone.
CREATE TABLE consumer_owed (
  consumer       text NOT NULL,
  job_key        text NOT NULL,
  kind           text NOT NULL CHECK (kind IN ('handler', 'projection')),
  -- Events of the batch this consumer handles.
  events         integer NOT NULL,
  -- When the oldest event of the batch was stored (what "oldest owed" ages from).
  created_at     timestamptz NOT NULL,
  -- When the reconciler looks at this row next (pushed forward while its job is alive).
  due_at         timestamptz NOT NULL,
  job_queue      text NOT NULL,
  job_id         text NOT NULL,
  deliveries     integer NOT NULL DEFAULT 1,
  -- Keyed by batch first: a batch's rows are found (and settled) through the primary key.
  PRIMARY KEY (job_key, consumer)
);
CREATE INDEX consumer_owed_due_idx ON consumer_owed (due_at);

-- An operator's "resolve" skips the event for that consumer, for good: later rebuilds skip it too.
ALTER TABLE event_processing_failures ADD COLUMN skipped boolean NOT NULL DEFAULT false;
CREATE INDEX event_processing_failures_skipped_idx ON event_processing_failures (consumer) WHERE skipped;

-- Down Migration
DROP INDEX IF EXISTS event_processing_failures_skipped_idx;
ALTER TABLE event_processing_failures DROP COLUMN IF EXISTS skipped;
DROP TABLE IF EXISTS consumer_owed, owed_batches, event_consumers;
