-- Each app's expiry: its last deploy plus ttlDays, moved by extensions (NULL: no TTL).
ALTER TABLE apps ADD COLUMN expires_at TEXT;
-- An archived app: when, and the digest of its archive in the blob store (NULL: live).
ALTER TABLE apps ADD COLUMN archived_at TEXT;
ALTER TABLE apps ADD COLUMN archive_digest TEXT;
