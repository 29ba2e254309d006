-- Policy governance: approval requests with their votes and grants, exceptions, and the
-- violations the background audit found. Every row carries the namespace.

CREATE TABLE approvals (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace     TEXT NOT NULL,
    app           TEXT NOT NULL,
    state         TEXT NOT NULL,          -- pending, approved, denied, superseded
    requested_by  TEXT NOT NULL,
    requested_at  TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    digest        TEXT NOT NULL,
    requests      TEXT NOT NULL,          -- JSON array of the elevated requests
    required      INTEGER NOT NULL,
    approvers     TEXT NOT NULL,          -- JSON array of subjects; empty: the namespace's operators
    revision      INTEGER,
    decided_at    TEXT,
    outcome       TEXT,
    pending       TEXT NOT NULL           -- the revision to write, as JSON
);
CREATE INDEX approvals_by_app ON approvals (namespace, app, state);

CREATE TABLE approval_votes (
    approval_id  INTEGER NOT NULL REFERENCES approvals(id) ON DELETE CASCADE,
    approver     TEXT NOT NULL,
    decision     TEXT NOT NULL,
    reason       TEXT NOT NULL,
    time         TEXT NOT NULL,
    PRIMARY KEY (approval_id, approver)
);

CREATE TABLE policy_grants (
    namespace    TEXT NOT NULL,
    app          TEXT NOT NULL,
    policy       TEXT NOT NULL,
    message      TEXT NOT NULL,
    approval_id  INTEGER NOT NULL,
    granted_at   TEXT NOT NULL,
    PRIMARY KEY (namespace, app, policy, message)
);

CREATE TABLE policy_exceptions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace   TEXT NOT NULL,
    app         TEXT NOT NULL,
    policy      TEXT NOT NULL,
    reason      TEXT NOT NULL,
    granted_by  TEXT NOT NULL,
    granted_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    removed_at  TEXT
);
CREATE INDEX policy_exceptions_by_namespace ON policy_exceptions (namespace, app);

CREATE TABLE policy_violations (
    namespace   TEXT NOT NULL,
    app         TEXT NOT NULL,
    revision    INTEGER NOT NULL,
    policy      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    mode        TEXT NOT NULL,
    message     TEXT NOT NULL,            -- in full, never truncated
    first_seen  TEXT NOT NULL,
    last_seen   TEXT NOT NULL,
    PRIMARY KEY (namespace, app, policy, kind, message)
);
CREATE INDEX policy_violations_by_policy ON policy_violations (policy);
