-- Endpoints of other types than webhooks: a RabbitMQ exchange, a NATS JetStream subject, a
-- Redis stream (app/destinations.py), with their configuration, their credentials (sealed like
-- signing secrets) and the format of what they get (standard, or CloudEvents). Messages queue
-- ingest could never accept are dead letters: one row per source and message key (a message
-- redelivered after a crash is not a second row), shown by the console, purged with traffic.

ALTER TABLE endpoints ADD COLUMN type TEXT NOT NULL DEFAULT 'webhook';
ALTER TABLE endpoints ADD COLUMN format TEXT NOT NULL DEFAULT 'standard';
ALTER TABLE endpoints ADD COLUMN cloudevents_mode TEXT NOT NULL DEFAULT 'binary';
ALTER TABLE endpoints ADD COLUMN config TEXT NOT NULL DEFAULT '{}';
ALTER TABLE endpoints ADD COLUMN credentials TEXT;

-- Messages queue ingest could not accept (invalid JSON, a 4xx): kept with the error for the
-- console; one row per message, however often the broker redelivered it.
CREATE TABLE dead_letters (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    source TEXT NOT NULL,
    message_key TEXT NOT NULL,
    body TEXT NOT NULL,
    body_bytes INTEGER NOT NULL,
    error TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (tenant_id, source, message_key)
);
CREATE INDEX dead_letters_recent ON dead_letters (tenant_id, id);
