-- Each app's expiry: its last deploy plus ttlDays, moved by extensions (NULL: no TTL).
ALTER TABLE apps ADD COLUMN expires_at TEXT;
