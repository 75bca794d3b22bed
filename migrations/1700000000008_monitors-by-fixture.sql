-- Up Migration
-- Alerts read the monitors of a fixture from the store, as of each ticket event's place in the global
-- order (not from a read model that may lag): MonitoringStarted events by fixture name.
CREATE INDEX event_store_monitor_fixture ON event_store ((payload->>'eventName'), stream_id) WHERE event_type = 'MonitoringStarted';

-- Down Migration
DROP INDEX IF EXISTS event_store_monitor_fixture;
