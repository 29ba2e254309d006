-- Namespaces are tenants; apps, revisions and audit events all carry the namespace.
CREATE TABLE namespaces (
    name        TEXT PRIMARY KEY NOT NULL,
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL
);

CREATE TABLE apps (
    namespace        TEXT NOT NULL REFERENCES namespaces(name),
    name             TEXT NOT NULL,
    owner            TEXT NOT NULL,
    runtime          TEXT NOT NULL,
    description      TEXT,
    active_revision  INTEGER NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    PRIMARY KEY (namespace, name)
);

CREATE TABLE revisions (
    namespace        TEXT NOT NULL,
    app              TEXT NOT NULL,
    revision         INTEGER NOT NULL,
    digest           TEXT NOT NULL,
    manifest_source  TEXT NOT NULL,
    deployment       TEXT NOT NULL,  -- the deployment record as JSON, served as is after a restart
    n_files          INTEGER NOT NULL,
    size_bytes       INTEGER NOT NULL,
    created_at       TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    PRIMARY KEY (namespace, app, revision),
    FOREIGN KEY (namespace, app) REFERENCES apps(namespace, name) ON DELETE CASCADE
);

-- Append-only: nothing updates or deletes audit rows.
CREATE TABLE audit_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    time       TEXT NOT NULL,
    principal  TEXT NOT NULL,
    action     TEXT NOT NULL,
    namespace  TEXT,
    app        TEXT,
    revision   INTEGER,
    outcome    TEXT NOT NULL,
    detail     TEXT NOT NULL
);
CREATE INDEX audit_events_by_app ON audit_events (namespace, app, id);
