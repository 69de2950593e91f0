-- SQLite specifics: list parameters arrive as JSON text and are read with json_each.

-- name: events_by_keys
SELECT * FROM events
WHERE tenant_id = :tenant_id AND idempotency_key IN (SELECT value FROM json_each(:keys));

-- name: deliveries_claim
-- First attempts and replays (lane 0) before retries (lane 1), oldest first, at most `room`
-- per endpoint (its free slots in this worker, or :cap), skipping :excluded endpoints.
WITH due AS (
    SELECT id, endpoint_id, lane, next_attempt_at FROM deliveries
    WHERE lane IN (0, 1) AND status IN ('pending', 'delivering')
      AND next_attempt_at IS NOT NULL AND next_attempt_at <= :now
      AND endpoint_id NOT IN (SELECT value FROM json_each(:excluded))
    ORDER BY lane, next_attempt_at
    LIMIT :scan),
ranked AS (
    SELECT id, lane, next_attempt_at,
           row_number() OVER (PARTITION BY endpoint_id ORDER BY lane, next_attempt_at) AS n,
           coalesce((SELECT value FROM json_each(:free) WHERE key = due.endpoint_id), :cap)
               AS room
    FROM due)
UPDATE deliveries SET status = 'delivering', next_attempt_at = :lease_until, updated_at = :now
WHERE id IN (SELECT id FROM ranked WHERE n <= room ORDER BY lane, next_attempt_at LIMIT :limit)
RETURNING id;

-- name: jobs_by_ids
SELECT d.id AS delivery_id, d.tenant_id, d.event_id, d.endpoint_id, d.attempts, d.trigger,
       d.next_attempt_at AS lease_until, d.ordering_key, e.type AS event_type, e.body, p.url,
       p.secret, p.previous_secret, p.previous_secret_expires_at, p.rate_limit_per_s,
       p.type AS endpoint_type, p.format, p.cloudevents_mode, p.config, p.credentials,
       e.created_at AS event_time, e.customer_number
FROM deliveries d
JOIN events e ON e.id = d.event_id
JOIN endpoints p ON p.id = d.endpoint_id
WHERE d.id IN (SELECT value FROM json_each(:ids));

-- name: endpoint_health
SELECT id, tenant_id, url, status, health, consecutive_failures, failing_since,
       last_success_at, probe_at, probes_failed, disabled_reason
FROM endpoints WHERE id IN (SELECT value FROM json_each(:ids));

-- name: subscriptions_claim
UPDATE subscriptions SET next_bill_at = :lease_until, updated_at = :now
WHERE id IN (
    SELECT id FROM subscriptions
    WHERE status = 'active' AND next_bill_at <= :now
      -- a change dated at or before the next period goes first (it may price that period)
      AND NOT EXISTS (
          SELECT 1 FROM subscription_changes c
          WHERE c.subscription_id = subscriptions.id AND c.status = 'queued'
            AND c.effective_date <= subscriptions.next_period_start)
    ORDER BY next_bill_at LIMIT :limit)
RETURNING *;

-- name: replay_failed_filter
-- Of these events, the ones whose deliveries to the endpoint all ended without success.
SELECT value AS id FROM json_each(:ids) AS e
WHERE EXISTS (
        SELECT 1 FROM deliveries d WHERE d.event_id = e.value AND d.endpoint_id = :endpoint_id
          AND d.status IN ('failed', 'cancelled'))
  AND NOT EXISTS (
        SELECT 1 FROM deliveries d WHERE d.event_id = e.value AND d.endpoint_id = :endpoint_id
          AND d.status IN ('succeeded', 'pending', 'delivering'));

-- name: replay_adopt_held
-- What the circuit holds: everything not final of a failing or disabled endpoint (the one
-- probe out now included).
UPDATE deliveries SET replay_id = :replay_id
WHERE endpoint_id = :endpoint_id AND status IN ('pending', 'delivering')
  AND replay_id IS NULL AND event_id >= :since_id AND event_id < :until_id
  AND EXISTS (SELECT 1 FROM endpoints ep WHERE ep.id = :endpoint_id
              AND (ep.health = 'failing' OR ep.status = 'disabled'))
  AND (:types IS NULL OR EXISTS (
        SELECT 1 FROM events e WHERE e.id = deliveries.event_id
          AND e.type IN (SELECT value FROM json_each(:types))));

-- name: ordered_lock
-- SQLite has one writer: an ordered key's check-then-insert cannot race another process.
SELECT 1 AS locked;

-- name: invoice_lock
SELECT id FROM invoices WHERE tenant_id = :tenant_id AND number = :number;

-- name: notify_due
-- One process per SQLite file: its worker is woken in memory (EventService.on_commit).
SELECT 1 AS notified;

-- name: delivery_statuses_of_events
-- How each event of a list page fared: its deliveries counted by status.
SELECT event_id, status, count(*) AS n FROM deliveries
WHERE event_id IN (SELECT value FROM json_each(:ids)) AND tenant_id = :tenant_id
GROUP BY event_id, status;
