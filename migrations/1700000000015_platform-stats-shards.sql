-- Up Migration
-- Every handler batch counts into the same few platform rows; with one row per platform, concurrent
-- handler transactions queued on its row lock (measured: most of the lock waits of a 3-worker drain).
-- Each platform now has up to 256 rows, one per database session (pg_backend_pid() % 256): two
-- transactions running at once are on two sessions, so they write different rows. Readers sum a
-- platform's rows (the view platform_stats_totals).
ALTER TABLE platform_stats ADD COLUMN shard smallint NOT NULL DEFAULT 0;
ALTER TABLE platform_stats DROP CONSTRAINT platform_stats_pkey;
ALTER TABLE platform_stats ADD PRIMARY KEY (platform, shard);
CREATE VIEW platform_stats_totals AS
  SELECT platform, sum(tickets_discovered)::int8 AS tickets_discovered, sum(price_changes)::int8 AS price_changes,
         sum(price_drops)::int8 AS price_drops, sum(alerts_triggered)::int8 AS alerts_triggered,
         max(last_event_at) AS last_event_at, max(updated_at) AS updated_at
  FROM platform_stats GROUP BY platform;

-- Down Migration
DROP VIEW IF EXISTS platform_stats_totals;
CREATE TABLE platform_stats_merged AS
  SELECT platform, sum(tickets_discovered)::int8 AS tickets_discovered, sum(price_changes)::int8 AS price_changes,
         sum(price_drops)::int8 AS price_drops, sum(alerts_triggered)::int8 AS alerts_triggered,
         max(last_event_at) AS last_event_at, max(updated_at) AS updated_at
  FROM platform_stats GROUP BY platform;
DELETE FROM platform_stats;
ALTER TABLE platform_stats DROP CONSTRAINT platform_stats_pkey;
ALTER TABLE platform_stats DROP COLUMN shard;
ALTER TABLE platform_stats ADD PRIMARY KEY (platform);
INSERT INTO platform_stats (platform, tickets_discovered, price_changes, price_drops, alerts_triggered, last_event_at, updated_at)
  SELECT * FROM platform_stats_merged;
DROP TABLE platform_stats_merged;
