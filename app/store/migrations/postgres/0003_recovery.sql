-- Replay, endpoint health, fairness and order.

-- lane 0: first attempts and replays; lane 1: retries (claimed after lane 0).
ALTER TABLE deliveries ADD COLUMN lane INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN replay_id TEXT;
-- For ordered endpoints: the event's ordering key, and 1 while an earlier delivery of the
-- same key is unfinished (a queued delivery is pending with next_attempt_at NULL).
ALTER TABLE deliveries ADD COLUMN ordering_key TEXT;
ALTER TABLE deliveries ADD COLUMN queued INTEGER NOT NULL DEFAULT 0;

DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (lane, next_attempt_at)
    WHERE status IN ('pending', 'delivering') AND next_attempt_at IS NOT NULL;
DROP INDEX deliveries_endpoint;
CREATE INDEX deliveries_endpoint ON deliveries (endpoint_id, status);
CREATE INDEX deliveries_ordered ON deliveries (endpoint_id, ordering_key)
    WHERE ordering_key IS NOT NULL AND status IN ('pending', 'delivering');
CREATE INDEX deliveries_replay ON deliveries (replay_id, status) WHERE replay_id IS NOT NULL;

ALTER TABLE attempts ADD COLUMN endpoint_id TEXT;
CREATE INDEX attempts_endpoint ON attempts (endpoint_id, started_at);

-- Health: active | failing; the circuit holds a failing endpoint's queue and lets one held
-- delivery through as a probe at probe_at.
ALTER TABLE endpoints ADD COLUMN health TEXT NOT NULL DEFAULT 'active';
ALTER TABLE endpoints ADD COLUMN consecutive_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE endpoints ADD COLUMN failing_since BIGINT;
ALTER TABLE endpoints ADD COLUMN last_success_at BIGINT;
ALTER TABLE endpoints ADD COLUMN probe_at BIGINT;
ALTER TABLE endpoints ADD COLUMN probes_failed INTEGER NOT NULL DEFAULT 0;
CREATE INDEX endpoints_probe ON endpoints (probe_at) WHERE health = 'failing';

CREATE TABLE replays (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    endpoint_id   TEXT NOT NULL REFERENCES endpoints (id),
    since         BIGINT NOT NULL,
    until         BIGINT,
    only_failed   INTEGER NOT NULL,
    event_types   TEXT,                    -- JSON array, NULL = the endpoint's subscription
    rate_per_s    INTEGER,
    status        TEXT NOT NULL,           -- running | done | cancelled
    matched       INTEGER NOT NULL,
    enqueued      INTEGER NOT NULL DEFAULT 0,
    cursor        TEXT,                    -- the last event id enqueued: a job resumes after it
    next_run_at   BIGINT NOT NULL,        -- when the worker next enqueues a batch (or its lease)
    paced_until   BIGINT,                 -- the due time the next enqueued delivery gets
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX replays_running ON replays (next_run_at) WHERE status = 'running';
CREATE INDEX replays_tenant ON replays (tenant_id, id);
