-- Up Migration

-- GET /api/events/statistics reads "what did handlers process since X" (rates, p50/p99 processing lag).
-- The ledger is append-only in processed_at order, so BRIN is nearly free on the insert path.
CREATE INDEX event_handler_ledger_processed_brin ON event_handler_ledger USING brin (processed_at);

-- Down Migration
DROP INDEX IF EXISTS event_handler_ledger_processed_brin;
