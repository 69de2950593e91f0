-- Hub core: tenants and keys, endpoints, events, deliveries (the queue) and attempts.
-- The PostgreSQL twin of migrations/sqlite/0001_core.sql (same tables, same names):
-- times are unix milliseconds (BIGINT), bodies BYTEA, flags INTEGER 0/1 as on SQLite.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    key_hash    TEXT NOT NULL UNIQUE,
    source      TEXT NOT NULL,            -- 'env' (BILLHOOK_API_KEY) or 'api'
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

-- Bumped whenever any endpoint changes, so processes can cache endpoint lists safely.
CREATE TABLE counters (
    name   TEXT PRIMARY KEY,
    value  BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('endpoints', 0);

CREATE TABLE endpoints (
    id                          TEXT PRIMARY KEY,
    tenant_id                   TEXT NOT NULL REFERENCES tenants (id),
    url                         TEXT NOT NULL,
    description                 TEXT NOT NULL DEFAULT '',
    event_types                 TEXT,          -- JSON array, NULL = every type
    filter_customer_number      TEXT,
    filter_external_contract_id TEXT,
    metadata                    TEXT NOT NULL DEFAULT '{}',
    rate_limit_per_s            INTEGER,
    ordered                     INTEGER NOT NULL DEFAULT 0,
    status                      TEXT NOT NULL DEFAULT 'active',
    disabled_reason             TEXT,
    secret                      TEXT NOT NULL,
    previous_secret             TEXT,
    previous_secret_expires_at  BIGINT,
    created_at                  BIGINT NOT NULL,
    updated_at                  BIGINT NOT NULL,
    deleted_at                  BIGINT
);
CREATE INDEX endpoints_tenant ON endpoints (tenant_id, id);

CREATE TABLE events (
    id                    TEXT PRIMARY KEY,
    tenant_id             TEXT NOT NULL REFERENCES tenants (id),
    type                  TEXT NOT NULL,
    idempotency_key       TEXT,
    request_hash          TEXT NOT NULL,
    customer_number       TEXT,
    external_contract_id  TEXT,
    ordering_key          TEXT,
    body                  BYTEA NOT NULL,       -- the exact bytes sent: {"parameters":…,"type":…}
    created_at            BIGINT NOT NULL
);
CREATE UNIQUE INDEX events_idempotency ON events (tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX events_tenant ON events (tenant_id, id);

CREATE TABLE deliveries (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL,
    event_id          TEXT NOT NULL REFERENCES events (id),
    endpoint_id       TEXT NOT NULL REFERENCES endpoints (id),
    status            TEXT NOT NULL,     -- pending | delivering | succeeded | failed | cancelled
    trigger           TEXT NOT NULL,     -- scheduled | replay | test
    attempts          INTEGER NOT NULL DEFAULT 0,
    -- pending: when it is due (NULL = held, e.g. endpoint disabled);
    -- delivering: when the worker's lease runs out and it becomes claimable again.
    next_attempt_at   BIGINT,
    last_status_code  INTEGER,
    last_error        TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at)
    WHERE status IN ('pending', 'delivering');
CREATE INDEX deliveries_event ON deliveries (event_id);
CREATE INDEX deliveries_endpoint ON deliveries (endpoint_id, status);

CREATE TABLE attempts (
    id             TEXT PRIMARY KEY,
    delivery_id    TEXT NOT NULL REFERENCES deliveries (id),
    tenant_id      TEXT NOT NULL,
    attempt        INTEGER NOT NULL,
    trigger        TEXT NOT NULL,
    started_at     BIGINT NOT NULL,
    duration_ms    INTEGER NOT NULL,
    status_code    INTEGER,
    error          TEXT,
    response_body  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX attempts_delivery ON attempts (delivery_id, id);
