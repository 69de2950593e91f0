-- Event types a tenant declares for its own events (the built-in ones live in the code), each
-- with an optional JSON Schema that POST /v1/events enforces.

CREATE TABLE event_types (
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    name         TEXT NOT NULL,
    description  TEXT NOT NULL,
    schema       TEXT,                  -- JSON Schema (draft 2020-12) of the parameters
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, name)
);
-- Bumped with each declaration: the ingest caches of every process reload.
INSERT INTO counters (name, value) VALUES ('event_types', 0);
