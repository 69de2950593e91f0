-- SQLite specifics: list parameters arrive as JSON text and are read with json_each.

-- name: events_by_keys
SELECT * FROM events
WHERE tenant_id = :tenant_id AND idempotency_key IN (SELECT value FROM json_each(:keys));

-- name: deliveries_claim
UPDATE deliveries SET status = 'delivering', next_attempt_at = :lease_until, updated_at = :now
WHERE id IN (
    SELECT id FROM deliveries
    WHERE status IN ('pending', 'delivering') AND next_attempt_at <= :now
    ORDER BY next_attempt_at LIMIT :limit)
RETURNING id;

-- name: jobs_by_ids
SELECT d.id AS delivery_id, d.tenant_id, d.event_id, d.endpoint_id, d.attempts, d.trigger,
       d.next_attempt_at AS lease_until, e.type AS event_type, e.body, p.url, p.secret,
       p.previous_secret, p.previous_secret_expires_at
FROM deliveries d
JOIN events e ON e.id = d.event_id
JOIN endpoints p ON p.id = d.endpoint_id
WHERE d.id IN (SELECT value FROM json_each(:ids));

-- name: subscriptions_claim
UPDATE subscriptions SET next_bill_at = :lease_until, updated_at = :now
WHERE id IN (
    SELECT id FROM subscriptions
    WHERE status = 'active' AND next_bill_at <= :now
    ORDER BY next_bill_at LIMIT :limit)
RETURNING *;
