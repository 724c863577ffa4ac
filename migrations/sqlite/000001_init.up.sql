-- Registrations: one phone registered for push. No account JID is stored:
-- device is the p2 device hash (hex SHA-1), domain the account's domain.
--
-- Timestamps are INTEGER unix microseconds (UTC): they round-trip Go's
-- time.Time at PostgreSQL's precision and compare numerically. STRICT makes
-- SQLite refuse a value of the wrong type (such as a time formatted as text).
CREATE TABLE registrations (
    id           INTEGER PRIMARY KEY,
    app          TEXT    NOT NULL DEFAULT 'default',
    service      TEXT    NOT NULL CHECK (service IN ('fcm', 'apns')),
    device       TEXT    NOT NULL CHECK (length(device) = 40 AND device NOT GLOB '*[^0-9a-f]*'),
    domain       TEXT    NOT NULL,
    token        TEXT    NOT NULL,
    node         TEXT    NOT NULL,
    secret_kind  TEXT    NOT NULL DEFAULT 'derived' CHECK (secret_kind IN ('derived', 'kept')),
    -- A kept secret (imported from p2), encrypted under the server key
    -- elsewhere; the database only stores the bytes. NULL for derived secrets.
    secret_enc   BLOB,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    last_push_at INTEGER,
    -- The index behind this constraint serves every push (lookup by node).
    CONSTRAINT registrations_node_key UNIQUE (node),
    CONSTRAINT registrations_app_service_device_key UNIQUE (app, service, device)
) STRICT;

-- Small facts about the installation, such as the fingerprint of the server key.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
