-- Usage roll-ups per app: one row per hour and one per day, each the sum of the flushed counts.
CREATE TABLE usage_hourly (
    namespace      TEXT NOT NULL,
    app            TEXT NOT NULL,
    start          TEXT NOT NULL,   -- the hour's start, RFC 3339 UTC
    requests       INTEGER NOT NULL DEFAULT 0,
    client_errors  INTEGER NOT NULL DEFAULT 0,
    server_errors  INTEGER NOT NULL DEFAULT 0,
    rate_limited   INTEGER NOT NULL DEFAULT 0,
    busy           INTEGER NOT NULL DEFAULT 0,
    cpu_us         INTEGER NOT NULL DEFAULT 0,
    bytes_in       INTEGER NOT NULL DEFAULT 0,
    bytes_out      INTEGER NOT NULL DEFAULT 0,
    duration_us    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (namespace, app, start)
);

CREATE TABLE usage_daily (
    namespace      TEXT NOT NULL,
    app            TEXT NOT NULL,
    start          TEXT NOT NULL,   -- the day's start, RFC 3339 UTC
    requests       INTEGER NOT NULL DEFAULT 0,
    client_errors  INTEGER NOT NULL DEFAULT 0,
    server_errors  INTEGER NOT NULL DEFAULT 0,
    rate_limited   INTEGER NOT NULL DEFAULT 0,
    busy           INTEGER NOT NULL DEFAULT 0,
    cpu_us         INTEGER NOT NULL DEFAULT 0,
    bytes_in       INTEGER NOT NULL DEFAULT 0,
    bytes_out      INTEGER NOT NULL DEFAULT 0,
    duration_us    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (namespace, app, start)
);
