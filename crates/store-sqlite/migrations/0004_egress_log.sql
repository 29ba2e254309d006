-- Every outbound request of every app, allowed or denied. Hosts only: never paths or headers.
CREATE TABLE egress_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    time         TEXT NOT NULL,
    namespace    TEXT NOT NULL,
    app          TEXT NOT NULL,
    request_id   TEXT NOT NULL,
    method       TEXT NOT NULL,
    host         TEXT NOT NULL,
    address      TEXT,                -- the address connected to, when a connection was made
    decision     TEXT NOT NULL,       -- allowed | denied | failed
    code         TEXT,                -- why it was denied or failed
    status       INTEGER,
    bytes_out    INTEGER NOT NULL,
    bytes_in     INTEGER NOT NULL,
    duration_ms  INTEGER NOT NULL
);
CREATE INDEX egress_log_by_app ON egress_log (namespace, app, id);
