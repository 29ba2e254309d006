-- Apps' vector searches, vectors written and embedding tokens, in the usage roll-ups.
ALTER TABLE usage_hourly ADD COLUMN vector_queries INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hourly ADD COLUMN vectors_written INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hourly ADD COLUMN embedding_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_daily ADD COLUMN vector_queries INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_daily ADD COLUMN vectors_written INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_daily ADD COLUMN embedding_tokens INTEGER NOT NULL DEFAULT 0;
