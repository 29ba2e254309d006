-- Apps' key-value namespaces (capability-kv). The namespace and app are in the key of every
-- row: no query reaches across tenants. `version` changes with every write (the etag).
CREATE TABLE kv_entries (
    namespace  TEXT    NOT NULL,
    app        TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    value      BLOB    NOT NULL,
    metadata   TEXT,
    expiration INTEGER,
    version    INTEGER NOT NULL,
    PRIMARY KEY (namespace, app, key)
) WITHOUT ROWID;

CREATE INDEX kv_entries_expiration ON kv_entries (expiration) WHERE expiration IS NOT NULL;
