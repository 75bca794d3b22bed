-- Up Migration
-- The handlers' cache (ticket fields, platform status) when the queues run on PostgreSQL
-- (QUEUE_BACKEND=postgres) and there is no Redis to hold it. UNLOGGED like a cache: no WAL, emptied
-- after a crash, never replicated. Every field carries the stream version that wrote it, so a late
-- old event never overwrites a newer value (the same guard as the Redis script); expires_at NULL
-- means no expiry (platform status).
CREATE UNLOGGED TABLE handler_cache (
  key text NOT NULL,
  field text NOT NULL,
  value text NOT NULL,
  version integer NOT NULL,
  expires_at timestamptz,
  PRIMARY KEY (key, field)
);
CREATE INDEX handler_cache_expires ON handler_cache (expires_at) WHERE expires_at IS NOT NULL;

-- Down Migration
DROP TABLE IF EXISTS handler_cache;
