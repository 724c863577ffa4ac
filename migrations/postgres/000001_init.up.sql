-- Registrations: one phone registered for push. No account JID is stored:
-- device is the p2 device hash (hex SHA-1), domain the account's domain.
CREATE TABLE registrations (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app          TEXT        NOT NULL DEFAULT 'default',
    service      TEXT        NOT NULL CHECK (service IN ('fcm', 'apns')),
    device       TEXT        NOT NULL CHECK (device ~ '^[0-9a-f]{40}$'),
    domain       TEXT        NOT NULL,
    token        TEXT        NOT NULL,
    node         TEXT        NOT NULL,
    secret_kind  TEXT        NOT NULL DEFAULT 'derived' CHECK (secret_kind IN ('derived', 'kept')),
    -- A kept secret (imported from p2), encrypted under the server key
    -- elsewhere; the database only stores the bytes. NULL for derived secrets.
    secret_enc   BYTEA,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    last_push_at TIMESTAMPTZ,
    -- The index behind this constraint serves every push (lookup by node).
    CONSTRAINT registrations_node_key UNIQUE (node),
    CONSTRAINT registrations_app_service_device_key UNIQUE (app, service, device)
);

-- Small facts about the installation, such as the fingerprint of the server key.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
