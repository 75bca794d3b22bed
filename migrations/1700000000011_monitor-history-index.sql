-- Up Migration
-- Alerting reads each monitor's start/stop history in global order. Monitor streams also hold every
-- AlertTriggered of the monitor (thousands over time): without this index that read walks all of them.
CREATE INDEX event_store_monitor_history ON event_store (stream_id, transaction_id, global_position) WHERE event_type IN ('MonitoringStarted', 'MonitoringStopped');
CREATE INDEX event_store_archive_monitor_history ON event_store_archive (stream_id, transaction_id, global_position) WHERE event_type IN ('MonitoringStarted', 'MonitoringStopped');

-- Down Migration
DROP INDEX IF EXISTS event_store_archive_monitor_history;
DROP INDEX IF EXISTS event_store_monitor_history;
