-- Billing: price models (versioned), preliminary billing information, subscriptions.
-- Amounts are stored as decimal text: exact, and compared only in Python as Decimal.

CREATE TABLE price_models (
    id          TEXT NOT NULL,
    version     INTEGER NOT NULL,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    spec        TEXT NOT NULL,                 -- the validated model as JSON
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (id, version)
);
CREATE INDEX price_models_tenant ON price_models (tenant_id, id, version);
INSERT INTO counters (name, value) VALUES ('price_models', 0);

CREATE TABLE billing_information (
    id                    TEXT PRIMARY KEY,
    tenant_id             TEXT NOT NULL REFERENCES tenants (id),
    event_id              TEXT NOT NULL UNIQUE REFERENCES events (id),
    source                TEXT NOT NULL,       -- usage_completion | charge | bill | subscription
    transaction_id        TEXT NOT NULL,
    customer_number       TEXT NOT NULL,
    external_contract_id  TEXT,
    currency              TEXT NOT NULL,
    total_gross           TEXT NOT NULL,
    total_net             TEXT NOT NULL,
    invoice_date          TEXT NOT NULL,
    request               BYTEA NOT NULL,       -- the request as received, for 409 differences
    price_models          TEXT NOT NULL,       -- JSON [[id, version], …] used to price it
    subscription_id       TEXT,
    memo                  TEXT,
    metadata              TEXT NOT NULL DEFAULT '{}',
    status                TEXT NOT NULL DEFAULT 'open',   -- open | invoiced
    invoice_number        TEXT,
    created_at            BIGINT NOT NULL
);
CREATE UNIQUE INDEX billing_transaction ON billing_information (tenant_id, transaction_id);
CREATE INDEX billing_open ON billing_information
    (tenant_id, status, customer_number, external_contract_id, currency);
CREATE INDEX billing_customer ON billing_information (tenant_id, customer_number, id);

CREATE TABLE subscriptions (
    id                    TEXT PRIMARY KEY,
    tenant_id             TEXT NOT NULL REFERENCES tenants (id),
    transaction_id        TEXT NOT NULL,       -- of the bill that created it (idempotency)
    customer_number       TEXT NOT NULL,
    external_contract_id  TEXT NOT NULL,
    product_id            TEXT NOT NULL,
    price_model_id        TEXT NOT NULL,
    price_model_version   INTEGER NOT NULL,
    terms                 TEXT NOT NULL,       -- JSON: variables, addresses, anchor, memo, …
    status                TEXT NOT NULL,       -- active | ended
    next_period_start     TEXT,                -- the next period to bill (YYYY-MM-DD)
    -- active: when the next cycle is billed; while a worker bills it, its lease's end.
    next_bill_at          BIGINT,
    cycles_billed         INTEGER NOT NULL DEFAULT 0,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);
CREATE INDEX subscriptions_due ON subscriptions (next_bill_at) WHERE status = 'active';
CREATE INDEX subscriptions_tenant ON subscriptions (tenant_id, id);
CREATE UNIQUE INDEX subscriptions_transaction ON subscriptions (tenant_id, transaction_id);
