-- The console: sessions signed with a secret every process shares, one-time sign-in links, and
-- the indexes its pages read through (each page is a bounded range of one of them).

CREATE TABLE hub_secrets (
    name        TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE console_links (
    id          TEXT PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE,
    tenant_id   TEXT,                      -- NULL: the operator's view over all tenants
    role        TEXT NOT NULL,             -- viewer | operator | admin
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT,
    created_at  BIGINT NOT NULL
);

CREATE INDEX attempts_tenant ON attempts (tenant_id, id);
CREATE INDEX deliveries_tenant_open ON deliveries (tenant_id, created_at)
    WHERE status IN ('pending', 'delivering');
DROP INDEX deliveries_endpoint;
CREATE INDEX deliveries_endpoint ON deliveries (endpoint_id, status, id);
CREATE INDEX events_customer ON events (tenant_id, customer_number, id);
CREATE INDEX events_contract ON events (tenant_id, external_contract_id, id);
CREATE INDEX billing_tenant ON billing_information (tenant_id, id);
