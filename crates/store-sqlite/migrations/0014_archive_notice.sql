-- When an archived app's owner was told its archive will be deleted (NULL: not yet). The
-- archive is deleted no sooner than a week after this, however late the notice went out.
ALTER TABLE apps ADD COLUMN archive_notice_at TEXT;
