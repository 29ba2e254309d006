-- Outbound calls and the function heap's high-water mark in the usage roll-ups.
ALTER TABLE usage_hourly ADD COLUMN outbound_requests INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hourly ADD COLUMN outbound_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hourly ADD COLUMN heap_bytes_max INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_daily ADD COLUMN outbound_requests INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_daily ADD COLUMN outbound_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_daily ADD COLUMN heap_bytes_max INTEGER NOT NULL DEFAULT 0;
