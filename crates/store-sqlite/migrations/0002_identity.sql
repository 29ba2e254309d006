-- Local accounts. Identity-provider users get rows too, without a password, on first sign-in.
CREATE TABLE users (
    name           TEXT PRIMARY KEY NOT NULL,
    password_hash  TEXT,              -- argon2id PHC string; NULL for users of an identity provider
    display_name   TEXT,
    email          TEXT,
    groups         TEXT NOT NULL,     -- JSON array of group names
    disabled       INTEGER NOT NULL DEFAULT 0,
    created_at     TEXT NOT NULL,
    created_by     TEXT NOT NULL
);

-- Roles granted per namespace to a user (`user:<name>`) or a group (`group:<name>`).
-- The namespace `*` grants the role on every namespace (platform-wide).
CREATE TABLE role_bindings (
    namespace   TEXT NOT NULL,
    subject     TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('viewer', 'builder', 'operator', 'admin')),
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    PRIMARY KEY (namespace, subject, role)
);
CREATE INDEX role_bindings_by_subject ON role_bindings (subject);
