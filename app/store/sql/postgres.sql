-- PostgreSQL specifics. List parameters arrive as text[] (`= ANY(:ids)`); claims lock what they
-- take with FOR NO KEY UPDATE SKIP LOCKED, so any number of workers in any number of processes
-- claim disjoint rows; read-modify-writes lock the rows they read. NO KEY: nothing here changes
-- a key, and a plain FOR UPDATE would also wait for (or skip) every row a foreign key of an
-- uncommitted insert points at.

-- name: events_by_keys
-- One probe of the unique index per key, both columns bound, whatever plan is cached: a
-- generic plan of `idempotency_key = ANY(:keys)`, made while the table was nearly empty,
-- searched by tenant alone and filtered every event of the tenant as the table grew.
SELECT e.* FROM unnest(:keys::text[]) AS k(key)
CROSS JOIN LATERAL (
  SELECT * FROM events WHERE tenant_id = :tenant_id AND idempotency_key = k.key LIMIT 1
) AS e;

-- name: deliveries_claim
-- A worker's turn in one statement, one round trip: the attempts it finished written (the
-- a_ arrays, one element per attempt), their deliveries finished while the lease is still
-- theirs (the f_ arrays), then the claim. Claimed: first attempts and replays (lane 0) before
-- retries (lane 1), oldest first, at most `room` per endpoint (its free slots in this worker,
-- or :cap), skipping :excluded endpoints, rows another worker is claiming right now and the
-- rows finished here (one statement cannot update a row twice). Returns the claimed
-- deliveries as jobs (with their event and endpoint): no second round trip to read them.
WITH attempted AS (
    INSERT INTO attempts (
        id, delivery_id, tenant_id, endpoint_id, attempt, trigger, started_at, duration_ms,
        status_code, error, response_body)
    SELECT * FROM unnest(
        :a_id::text[], :a_delivery_id::text[], :a_tenant_id::text[], :a_endpoint_id::text[],
        :a_attempt::int[], :a_trigger::text[], :a_started_at::bigint[], :a_duration_ms::int[],
        :a_status_code::int[], :a_error::text[], :a_response_body::text[])),
finished AS (
    UPDATE deliveries d SET
        status = f.status, attempts = d.attempts + 1, next_attempt_at = f.next_attempt_at,
        last_status_code = f.status_code, last_error = f.error, updated_at = :now,
        lane = CASE WHEN f.status = 'pending' THEN 1 ELSE d.lane END
    FROM unnest(
        :f_id::text[], :f_status::text[], :f_next_attempt_at::bigint[], :f_status_code::int[],
        :f_error::text[], :f_lease_until::bigint[])
        AS f(id, status, next_attempt_at, status_code, error, lease_until)
    WHERE d.id = f.id AND d.status = 'delivering' AND d.next_attempt_at = f.lease_until),
due AS (
    SELECT id, endpoint_id, lane, next_attempt_at FROM deliveries
    WHERE lane IN (0, 1) AND status IN ('pending', 'delivering')
      AND next_attempt_at IS NOT NULL AND next_attempt_at <= :now
      AND NOT (endpoint_id = ANY(:excluded::text[]))
      AND NOT (id = ANY(:f_id::text[]))
    ORDER BY lane, next_attempt_at
    LIMIT :scan
    FOR NO KEY UPDATE SKIP LOCKED),
ranked AS (
    SELECT id, lane, next_attempt_at,
           row_number() OVER (PARTITION BY endpoint_id ORDER BY lane, next_attempt_at) AS n,
           coalesce((:free::jsonb ->> endpoint_id)::int, :cap) AS room
    FROM due),
chosen AS (
    SELECT id FROM ranked WHERE n <= room ORDER BY lane, next_attempt_at LIMIT :limit),
claimed AS (
    UPDATE deliveries d SET status = 'delivering', next_attempt_at = :lease_until,
                            updated_at = :now
    FROM chosen WHERE d.id = chosen.id
    RETURNING d.id, d.tenant_id, d.event_id, d.endpoint_id, d.attempts, d.trigger,
              d.next_attempt_at, d.ordering_key)
SELECT d.id AS delivery_id, d.tenant_id, d.event_id, d.endpoint_id, d.attempts, d.trigger,
       d.next_attempt_at AS lease_until, d.ordering_key, e.type AS event_type, e.body, p.url,
       p.secret, p.previous_secret, p.previous_secret_expires_at, p.rate_limit_per_s,
       p.type AS endpoint_type, p.format, p.cloudevents_mode, p.config, p.credentials,
       e.created_at AS event_time, e.customer_number
FROM claimed d
JOIN events e ON e.id = d.event_id
JOIN endpoints p ON p.id = d.endpoint_id;

-- name: endpoint_health
-- Locked for the rest of the turn: two workers judging one endpoint's results take turns, in
-- id order (no deadlock between them). NO KEY UPDATE, not UPDATE: each delivery an accept
-- writes takes KEY SHARE on its endpoint (the foreign key's check) until that accept commits,
-- and FOR UPDATE would make the turn wait for the accept's fsync — and new accepts for it.
SELECT id, tenant_id, url, status, health, consecutive_failures, failing_since,
       last_success_at, probe_at, probes_failed, disabled_reason
FROM endpoints WHERE id = ANY(:ids::text[])
ORDER BY id
FOR NO KEY UPDATE;

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
    ORDER BY next_bill_at LIMIT :limit
    FOR NO KEY UPDATE SKIP LOCKED)
RETURNING *;

-- name: replays_claim
UPDATE replays SET next_run_at = :lease_until
WHERE id IN (
    SELECT id FROM replays WHERE status = 'running' AND next_run_at <= :now
    ORDER BY next_run_at LIMIT :limit
    FOR NO KEY UPDATE SKIP LOCKED)
RETURNING *;

-- name: endpoints_probe_due
UPDATE endpoints SET probe_at = :lease_until
WHERE id IN (
    SELECT id FROM endpoints
    WHERE health = 'failing' AND status = 'active' AND deleted_at IS NULL AND probe_at <= :now
    LIMIT :limit
    FOR NO KEY UPDATE SKIP LOCKED)
RETURNING id;

-- name: replay_failed_filter
-- Of these events, the ones whose deliveries to the endpoint all ended without success.
SELECT e.id FROM unnest(:ids::text[]) AS e(id)
WHERE EXISTS (
        SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.endpoint_id = :endpoint_id
          AND d.status IN ('failed', 'cancelled'))
  AND NOT EXISTS (
        SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.endpoint_id = :endpoint_id
          AND d.status IN ('succeeded', 'pending', 'delivering'));

-- name: replay_adopt_held
-- What the circuit holds: everything not final of a failing or disabled endpoint (the one
-- probe out now included).
UPDATE deliveries SET replay_id = :replay_id
WHERE endpoint_id = :endpoint_id AND status IN ('pending', 'delivering')
  AND replay_id IS NULL AND event_id >= :since_id AND event_id < :until_id
  AND EXISTS (SELECT 1 FROM endpoints ep WHERE ep.id = :endpoint_id
              AND (ep.health = 'failing' OR ep.status = 'disabled'))
  AND (:types::text[] IS NULL OR EXISTS (
        SELECT 1 FROM events e WHERE e.id = deliveries.event_id
          AND e.type = ANY(:types::text[])));

-- name: ordered_lock
-- Two API processes must not both release a head of one ordering key: the check-then-insert
-- of ordered deliveries holds this lock for the rest of the transaction.
SELECT pg_advisory_xact_lock(hashtextextended(:endpoint_id || '/' || :key, 0));

-- name: invoice_lock
-- A credit note reads the invoice's earlier credit notes and must not race another one.
SELECT id FROM invoices WHERE tenant_id = :tenant_id AND number = :number FOR UPDATE;

-- name: notify_due
-- Wakes idle workers in every process once the transaction commits (they LISTEN).
SELECT pg_notify('billhook_due', '');

-- name: delivery_statuses_of_events
-- How each event of a list page fared: its deliveries counted by status.
SELECT event_id, status, count(*) AS n FROM deliveries
WHERE event_id = ANY(:ids) AND tenant_id = :tenant_id
GROUP BY event_id, status;

-- name: partitions_of
-- A time-partitioned table's partitions (migration 0015): name, bounds as written by
-- pg_get_expr ("FOR VALUES FROM (MINVALUE) TO ('dlv_…')", "DEFAULT") and estimated rows.
SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound,
       greatest(c.reltuples, 0)::bigint AS estimated_rows
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = to_regclass(:parent)
ORDER BY c.relname;

-- name: make_partition
SELECT billhook_make_partition(:parent, :name, :lo, :hi, :wait) AS made;

-- name: drop_partition
SELECT billhook_drop_partition(:parent, :name, :wait) AS dropped;

-- name: purge_late_attempts
-- Attempts of a week of deliveries about to be dropped that landed in a later week of attempts
-- (an attempt is made after its delivery): gone first, so none outlives its delivery. Never those
-- of a delivery still open: that week is not dropped.
WITH gone AS (
    DELETE FROM attempts a WHERE a.delivery_id >= :lo AND a.delivery_id < :hi
      AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.id = a.delivery_id
                      AND d.status IN ('pending', 'delivering'))
    RETURNING 1)
SELECT count(*) AS n FROM gone;
