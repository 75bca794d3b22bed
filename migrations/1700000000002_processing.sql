-- Up Migration

-- One row per projection: its version, status and which generation of its read-model tables is live.
CREATE TABLE event_projections (
  name                     text PRIMARY KEY,
  version                  integer NOT NULL DEFAULT 1,
  status                   text NOT NULL DEFAULT 'live' CHECK (status IN ('live', 'rebuilding', 'paused')),
  generation               integer NOT NULL DEFAULT 1,
  rebuild_job_id           text,
  last_rebuild_started_at  timestamptz,
  last_rebuild_finished_at timestamptz,
  last_rebuild_duration_ms integer,
  last_rebuild_events      bigint,
  updated_at               timestamptz NOT NULL DEFAULT now()
);

-- Per (projection, generation, stream) checkpoint: locked and advanced in the same transaction as the
-- read-model write, which is what makes projection effects exactly-once and in stream order.
CREATE TABLE projection_checkpoints (
  projection      text NOT NULL,
  generation      integer NOT NULL,
  stream_id       text NOT NULL,
  version         integer NOT NULL DEFAULT 0,
  global_position bigint NOT NULL DEFAULT 0,
  parked          boolean NOT NULL DEFAULT false,
  parked_event_id uuid,
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (projection, generation, stream_id)
);
CREATE INDEX projection_checkpoints_parked_idx ON projection_checkpoints (projection, generation) WHERE parked;
CREATE INDEX projection_checkpoints_updated_idx ON projection_checkpoints (projection, generation, updated_at);

-- Global-order subscribers (replay, catch-up): the checkpoint is the (transaction_id, global_position) pair.
CREATE TABLE event_subscriptions (
  name                 text PRIMARY KEY,
  last_transaction_id  xid8 NOT NULL DEFAULT '0'::xid8,
  last_global_position bigint NOT NULL DEFAULT 0,
  events_processed     bigint NOT NULL DEFAULT 0,
  state                jsonb NOT NULL DEFAULT '{}'::jsonb,
  updated_at           timestamptz NOT NULL DEFAULT now()
);

-- (handler, event) pairs that took effect; inserted in the same transaction as the handler's Postgres effects.
CREATE TABLE event_handler_ledger (
  handler      text NOT NULL,
  event_id     uuid NOT NULL,
  processed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (handler, event_id)
);

CREATE TABLE event_processing_failures (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  consumer         text NOT NULL,
  consumer_kind    text NOT NULL CHECK (consumer_kind IN ('handler', 'projection')),
  event_id         uuid NOT NULL,
  stream_id        text NOT NULL,
  event_type       text NOT NULL,
  global_position  bigint NOT NULL,
  attempts         integer NOT NULL,
  error_message    text NOT NULL,
  error_stack      text,
  job_id           text,
  status           text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'retrying', 'resolved')),
  resolution_note  text,
  retry_count      integer NOT NULL DEFAULT 0,
  first_failed_at  timestamptz NOT NULL DEFAULT now(),
  last_failed_at   timestamptz NOT NULL DEFAULT now(),
  resolved_at      timestamptz,
  CONSTRAINT event_processing_failures_consumer_event_unique UNIQUE (consumer, event_id)
);
CREATE INDEX event_processing_failures_status_idx ON event_processing_failures (status, id DESC);

-- Effects of the platform-stats handler (the read models belong to projections; this is handler state).
CREATE TABLE platform_stats (
  platform          text PRIMARY KEY,
  tickets_discovered bigint NOT NULL DEFAULT 0,
  price_changes     bigint NOT NULL DEFAULT 0,
  price_drops       bigint NOT NULL DEFAULT 0,
  alerts_triggered  bigint NOT NULL DEFAULT 0,
  last_event_at     timestamptz,
  updated_at        timestamptz NOT NULL DEFAULT now()
);

-- Alert deliveries to the webhook (one row per alert event; the event id is the idempotency key).
CREATE TABLE alert_deliveries (
  event_id      uuid PRIMARY KEY,
  alert_id      text NOT NULL,
  delivered_at  timestamptz NOT NULL DEFAULT now(),
  response_code integer,
  attempts      integer NOT NULL DEFAULT 1
);

-- Notifications for users (purchase outcomes, alerts) and operators (critical errors); one per (kind, event).
CREATE TABLE user_notifications (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id    text NOT NULL,
  kind       text NOT NULL,
  event_id   uuid NOT NULL,
  title      text NOT NULL,
  body       jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT user_notifications_kind_event_unique UNIQUE (kind, event_id)
);
CREATE INDEX user_notifications_user_idx ON user_notifications (user_id, id DESC);

-- Read models: one document per key (Marten-style), with the columns people filter on generated from it.
CREATE TABLE ticket_read_models (
  id              text PRIMARY KEY,
  doc             jsonb NOT NULL,
  platform        text GENERATED ALWAYS AS (doc->>'platform') STORED,
  status          text GENERATED ALWAYS AS (doc->>'status') STORED,
  event_name      text GENERATED ALWAYS AS (doc->>'eventName') STORED,
  last_position   bigint NOT NULL,
  updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ticket_read_models_platform_idx ON ticket_read_models (platform, status);
CREATE INDEX ticket_read_models_event_idx ON ticket_read_models (event_name);

CREATE TABLE purchase_read_models (
  id              text PRIMARY KEY,
  doc             jsonb NOT NULL,
  status          text GENERATED ALWAYS AS (doc->>'status') STORED,
  user_id         text GENERATED ALWAYS AS (doc->>'userId') STORED,
  last_position   bigint NOT NULL,
  updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX purchase_read_models_user_idx ON purchase_read_models (user_id);
CREATE INDEX purchase_read_models_status_idx ON purchase_read_models (status);

-- kind 'monitor' = per-monitor state, 'platform' = per-platform scraping stats.
CREATE TABLE monitoring_read_models (
  id              text PRIMARY KEY,
  doc             jsonb NOT NULL,
  kind            text GENERATED ALWAYS AS (doc->>'kind') STORED,
  last_position   bigint NOT NULL,
  updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX monitoring_read_models_kind_idx ON monitoring_read_models (kind);
-- The alerting handlers look up active monitors by fixture.
CREATE INDEX monitoring_read_models_monitor_event_idx ON monitoring_read_models ((doc->>'eventName')) WHERE kind = 'monitor';

-- Down Migration
DROP TABLE IF EXISTS monitoring_read_models, purchase_read_models, ticket_read_models, user_notifications, alert_deliveries, platform_stats,
  event_processing_failures, event_handler_ledger, event_subscriptions, projection_checkpoints, event_projections;
