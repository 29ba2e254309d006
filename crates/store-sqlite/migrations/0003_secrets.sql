-- One data key per namespace, stored only wrapped by the key-encryption key.
CREATE TABLE secret_data_keys (
    namespace   TEXT NOT NULL,
    version     INTEGER NOT NULL,
    kek_id      TEXT NOT NULL,       -- which key-encryption key wrapped it
    wrapped     BLOB NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (namespace, version)
);

-- Every version of every secret, sealed with AES-256-GCM under its namespace's data key.
CREATE TABLE secret_versions (
    namespace         TEXT NOT NULL,
    app               TEXT NOT NULL,
    name              TEXT NOT NULL,
    version           INTEGER NOT NULL,
    data_key_version  INTEGER NOT NULL,
    sealed            BLOB NOT NULL,  -- nonce || ciphertext || tag
    created_at        TEXT NOT NULL,
    created_by        TEXT NOT NULL,
    expires_at        TEXT,
    expiry_notice     TEXT,           -- the reminder sent for this version: expiring | expired
    PRIMARY KEY (namespace, app, name, version)
);

-- Per secret: when the app last read it, and why it should be rotated.
CREATE TABLE secret_state (
    namespace        TEXT NOT NULL,
    app              TEXT NOT NULL,
    name             TEXT NOT NULL,
    last_read_at     TEXT,
    rotation_reason  TEXT,
    PRIMARY KEY (namespace, app, name)
);
