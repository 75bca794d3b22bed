-- Up Migration
-- A failed job retried from outside the API (bull-board, job.retry()) finds the failure rows it
-- recorded by its job id, to unpark them before it runs and resolve them when it succeeds.
CREATE INDEX event_processing_failures_open_job_idx ON event_processing_failures (job_id) WHERE status <> 'resolved';

-- Down Migration
DROP INDEX IF EXISTS event_processing_failures_open_job_idx;
