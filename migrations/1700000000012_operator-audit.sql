-- Up Migration
-- Operator actions (retry, resolve, rebuild), single and bulk: who, when, with which filter, how many.
-- Append-only; read newest first by id.
CREATE TABLE operator_audit (
  id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at       timestamptz NOT NULL DEFAULT now(),
  actor    text NOT NULL,
  action   text NOT NULL,
  filter   jsonb NOT NULL DEFAULT '{}'::jsonb,
  counts   jsonb NOT NULL DEFAULT '{}'::jsonb,
  details  jsonb NOT NULL DEFAULT '{}'::jsonb
);

-- The failures explorer filters by consumer and by time and pages by id (newest first); after an
-- outage there are thousands of rows, so these filters must not scan the whole table.
CREATE INDEX event_processing_failures_consumer_idx ON event_processing_failures (consumer, status, id DESC);
CREATE INDEX event_processing_failures_last_failed_idx ON event_processing_failures (last_failed_at);

-- Down Migration
DROP INDEX IF EXISTS event_processing_failures_last_failed_idx;
DROP INDEX IF EXISTS event_processing_failures_consumer_idx;
DROP TABLE IF EXISTS operator_audit;
