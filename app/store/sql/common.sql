-- Named statements shared by every backend. `:name` parameters; dialect files override names.
-- Portable on purpose: a nullable parameter tested on its own is CAST (PostgreSQL must know
-- its type), no rowid, no `IS :param`, upserts name their table, subqueries have aliases.

-- name: counter_get
SELECT value FROM counters WHERE name = :name;

-- name: counter_bump
UPDATE counters SET value = value + 1 WHERE name = :name;

-- name: tenant_insert
INSERT INTO tenants (id, name, created_at) VALUES (:id, :name, :created_at);

-- name: tenant_upsert
INSERT INTO tenants (id, name, created_at) VALUES (:id, :name, :created_at)
ON CONFLICT (id) DO NOTHING;

-- name: tenant_get
SELECT id, name, created_at FROM tenants WHERE id = :id;

-- name: tenant_settings
SELECT auto_finalize, auto_finalize_drafts, free_form_types FROM tenants WHERE id = :id;

-- name: tenant_set_settings
UPDATE tenants SET auto_finalize = :auto_finalize, auto_finalize_drafts = :auto_finalize_drafts,
  free_form_types = :free_form_types
WHERE id = :id;

-- name: tenant_by_name
SELECT id, name, created_at FROM tenants WHERE name = :name;

-- name: tenant_list
SELECT id, name, created_at FROM tenants
WHERE (CAST(:cursor AS TEXT) IS NULL OR id < :cursor) ORDER BY id DESC LIMIT :limit;

-- name: key_insert
INSERT INTO api_keys (id, tenant_id, key_hash, source, name, created_at)
VALUES (:id, :tenant_id, :key_hash, :source, :name, :created_at);

-- name: key_by_hash
SELECT id, tenant_id, source, name, created_at, revoked_at, last_used_at FROM api_keys
WHERE key_hash = :key_hash;

-- name: key_revoke
-- At :at (now, or the end of a rotation's overlap); an earlier revocation stands.
UPDATE api_keys SET revoked_at = :at
WHERE id = :id AND tenant_id = :tenant_id AND (revoked_at IS NULL OR revoked_at > :at)
RETURNING id;

-- name: tenant_of_key
-- A key works until its revocation time (a rotated key until its overlap ends).
SELECT id, tenant_id, last_used_at FROM api_keys
WHERE key_hash = :key_hash AND (revoked_at IS NULL OR revoked_at > :now);

-- name: key_used
UPDATE api_keys SET last_used_at = :now WHERE id = :id;

-- name: api_keys_any
SELECT 1 AS found FROM api_keys WHERE revoked_at IS NULL OR revoked_at > :now LIMIT 1;

-- name: endpoint_insert
INSERT INTO endpoints (
    id, tenant_id, url, description, event_types, filter_customer_number,
    filter_external_contract_id, metadata, rate_limit_per_s, ordered, status, secret,
    created_at, updated_at, lease_s, lease_until, type, format, cloudevents_mode, config,
    credentials)
VALUES (
    :id, :tenant_id, :url, :description, :event_types, :filter_customer_number,
    :filter_external_contract_id, :metadata, :rate_limit_per_s, :ordered, :status, :secret,
    :created_at, :updated_at, :lease_s, :lease_until, :type, :format, :cloudevents_mode, :config,
    :credentials);

-- name: endpoint_lease_renew
-- Only a live lease: one that lapsed ended the endpoint (its listener must register again).
UPDATE endpoints SET lease_until = :now + lease_s * 1000
WHERE id = :id AND tenant_id = :tenant_id AND deleted_at IS NULL AND lease_s IS NOT NULL
  AND lease_until >= :now AND status <> 'disabled'
RETURNING lease_until;

-- name: endpoint_leases_lapse
UPDATE endpoints SET status = 'disabled', disabled_reason = 'lease_expired', updated_at = :now
WHERE lease_until < :now AND status <> 'disabled' AND deleted_at IS NULL
RETURNING id;

-- name: endpoint_get
SELECT * FROM endpoints WHERE id = :id AND tenant_id = :tenant_id AND deleted_at IS NULL;

-- name: endpoint_list
SELECT * FROM endpoints
WHERE tenant_id = :tenant_id AND deleted_at IS NULL AND (CAST(:cursor AS TEXT) IS NULL OR id < :cursor)
ORDER BY id DESC LIMIT :limit;

-- name: endpoints_needing_attention
SELECT * FROM endpoints
WHERE tenant_id = :tenant_id AND deleted_at IS NULL AND (health = 'failing' OR status = 'disabled')
ORDER BY id DESC LIMIT :limit;

-- name: endpoints_of_tenant
SELECT * FROM endpoints WHERE tenant_id = :tenant_id AND deleted_at IS NULL;

-- name: endpoint_update
UPDATE endpoints SET
    url = :url, description = :description, event_types = :event_types,
    filter_customer_number = :filter_customer_number,
    filter_external_contract_id = :filter_external_contract_id, metadata = :metadata,
    rate_limit_per_s = :rate_limit_per_s, ordered = :ordered, status = :status,
    disabled_reason = :disabled_reason, updated_at = :updated_at, format = :format,
    cloudevents_mode = :cloudevents_mode, config = :config, credentials = :credentials
WHERE id = :id AND tenant_id = :tenant_id AND deleted_at IS NULL;

-- name: endpoint_rotate
UPDATE endpoints SET
    previous_secret = secret, previous_secret_expires_at = :expires_at, secret = :secret,
    updated_at = :now
WHERE id = :id AND tenant_id = :tenant_id AND deleted_at IS NULL;

-- name: endpoint_delete
UPDATE endpoints SET deleted_at = :now, status = 'disabled', disabled_reason = 'deleted',
    updated_at = :now
WHERE id = :id AND tenant_id = :tenant_id AND deleted_at IS NULL
RETURNING id;

-- name: deliveries_cancel_for_endpoint
UPDATE deliveries SET status = 'cancelled', next_attempt_at = NULL, updated_at = :now
WHERE endpoint_id = :endpoint_id AND status IN ('pending', 'delivering');

-- name: deliveries_cancel_held
-- What a disabled endpoint accumulated, when the operator does not want the catch-up.
UPDATE deliveries SET status = 'cancelled', updated_at = :now
WHERE endpoint_id = :endpoint_id AND status = 'pending'
RETURNING id;

-- name: deliveries_hold_for_endpoint
UPDATE deliveries SET next_attempt_at = NULL, updated_at = :now
WHERE endpoint_id = :endpoint_id AND status = 'pending' AND next_attempt_at IS NOT NULL;

-- name: deliveries_release_for_endpoint
UPDATE deliveries SET next_attempt_at = :now, updated_at = :now
WHERE endpoint_id = :endpoint_id AND status = 'pending' AND next_attempt_at IS NULL
  AND queued = 0;

-- name: endpoints_probe_due
UPDATE endpoints SET probe_at = :lease_until
WHERE id IN (
    SELECT id FROM endpoints
    WHERE health = 'failing' AND status = 'active' AND deleted_at IS NULL AND probe_at <= :now
    LIMIT :limit)
RETURNING id;

-- name: endpoint_probe_now
UPDATE endpoints SET probe_at = :now
WHERE id = :id AND health = 'failing' AND status = 'active' AND probe_at > :now;

-- name: deliveries_probe
-- The oldest held delivery goes out as the probe.
UPDATE deliveries SET next_attempt_at = :now, updated_at = :now
WHERE id = (
    SELECT id FROM deliveries
    WHERE endpoint_id = :endpoint_id AND status = 'pending' AND next_attempt_at IS NULL
      AND queued = 0
    ORDER BY id LIMIT 1)
RETURNING id;

-- name: endpoint_health_update
UPDATE endpoints SET
    status = :status, disabled_reason = :disabled_reason, health = :health,
    consecutive_failures = :consecutive_failures, failing_since = :failing_since,
    last_success_at = :last_success_at, probe_at = :probe_at, probes_failed = :probes_failed,
    updated_at = :now
WHERE id = :id;

-- name: endpoint_health_reset
UPDATE endpoints SET health = 'active', consecutive_failures = 0, failing_since = NULL,
    probe_at = NULL, probes_failed = 0
WHERE id = :id;

-- name: event_insert
INSERT INTO events (
    id, tenant_id, type, idempotency_key, request_hash, customer_number,
    external_contract_id, ordering_key, body, created_at, about_endpoint_id)
VALUES (
    :id, :tenant_id, :type, :idempotency_key, :request_hash, :customer_number,
    :external_contract_id, :ordering_key, :body, :created_at, :about_endpoint_id);

-- name: delivery_insert
-- attempts: the column's default, 0
INSERT INTO deliveries (
    id, tenant_id, event_id, endpoint_id, status, trigger, next_attempt_at,
    created_at, updated_at, replay_id, ordering_key, queued)
VALUES (
    :id, :tenant_id, :event_id, :endpoint_id, :status, :trigger, :next_attempt_at,
    :created_at, :created_at, :replay_id, :ordering_key, :queued);

-- name: ordered_busy
SELECT 1 AS busy FROM deliveries
WHERE endpoint_id = :endpoint_id AND ordering_key = :key AND ordering_key IS NOT NULL
  AND status IN ('pending', 'delivering')
LIMIT 1;

-- name: ordered_promote
UPDATE deliveries SET queued = 0, next_attempt_at = :due, updated_at = :now
WHERE id = (
    SELECT id FROM deliveries
    WHERE endpoint_id = :endpoint_id AND ordering_key = :key AND ordering_key IS NOT NULL
      AND status IN ('pending', 'delivering') AND queued = 1
    ORDER BY id LIMIT 1)
  AND NOT EXISTS (
    SELECT 1 FROM deliveries
    WHERE endpoint_id = :endpoint_id AND ordering_key = :key AND ordering_key IS NOT NULL
      AND status IN ('pending', 'delivering') AND queued = 0);

-- name: event_get
SELECT * FROM events WHERE id = :id AND tenant_id = :tenant_id;

-- name: event_list
-- Every bound is always given (app/store/events.py fills the absent ones with the smallest and
-- largest ids), so the index seeks to the page instead of reading down to it.
SELECT * FROM events
WHERE tenant_id = :tenant_id AND id >= :since_id AND id < :before
  AND (CAST(:type AS TEXT) IS NULL OR type = :type)
  AND (CAST(:contract AS TEXT) IS NULL OR external_contract_id = :contract)
ORDER BY id DESC LIMIT :limit;

-- name: event_list_of_customer
-- The same through events_customer (tenant, customer, id).
SELECT * FROM events
WHERE tenant_id = :tenant_id AND customer_number = :customer_number
  AND id >= :since_id AND id < :before
  AND (CAST(:type AS TEXT) IS NULL OR type = :type)
  AND (CAST(:contract AS TEXT) IS NULL OR external_contract_id = :contract)
ORDER BY id DESC LIMIT :limit;

-- name: event_list_of_contract
-- The same through events_contract (tenant, contract, id).
SELECT * FROM events
WHERE tenant_id = :tenant_id AND external_contract_id = :contract
  AND id >= :since_id AND id < :before
  AND (CAST(:type AS TEXT) IS NULL OR type = :type)
ORDER BY id DESC LIMIT :limit;

-- name: event_by_key
SELECT * FROM events WHERE tenant_id = :tenant_id AND idempotency_key = :key;

-- name: event_delivery_count
SELECT count(*) AS n FROM deliveries WHERE event_id = :event_id;

-- name: deliveries_of_event
SELECT * FROM deliveries WHERE event_id = :event_id AND tenant_id = :tenant_id ORDER BY id;

-- name: delivery_get
SELECT * FROM deliveries WHERE id = :id AND tenant_id = :tenant_id;

-- name: attempts_of_delivery
-- `tenant_id || ''` keeps the tenant check out of the planner's reach: given `tenant_id = ?`
-- and ORDER BY id, SQLite walked attempts_tenant (every attempt of the tenant) instead of the
-- delivery's few rows in attempts_delivery.
SELECT * FROM attempts
WHERE delivery_id = :delivery_id AND tenant_id || '' = :tenant_id AND id < :cursor
ORDER BY id DESC LIMIT :limit;

-- name: attempt_insert
INSERT INTO attempts (
    id, delivery_id, tenant_id, endpoint_id, attempt, trigger, started_at, duration_ms,
    status_code, error, response_body)
VALUES (
    :id, :delivery_id, :tenant_id, :endpoint_id, :attempt, :trigger, :started_at, :duration_ms,
    :status_code, :error, :response_body);

-- name: delivery_finish
UPDATE deliveries SET
    status = :status, attempts = attempts + 1, next_attempt_at = :next_attempt_at,
    last_status_code = :status_code, last_error = :error, updated_at = :now,
    lane = CASE WHEN :status = 'pending' THEN 1 ELSE lane END
WHERE id = :id AND status = 'delivering' AND next_attempt_at = :lease_until;

-- name: delivery_release
UPDATE deliveries SET status = 'pending', next_attempt_at = :now, updated_at = :now
WHERE id = :id AND status = 'delivering' AND next_attempt_at = :lease_until;

-- name: oldest_due
SELECT min(next_attempt_at) AS due FROM deliveries
WHERE status IN ('pending', 'delivering') AND next_attempt_at <= :now;

-- name: ping
SELECT 1 AS ok;

-- name: counter_reserve
INSERT INTO counters (name, value) VALUES (:name, :size)
ON CONFLICT (name) DO UPDATE SET value = counters.value + :size
RETURNING value;

-- name: price_model_insert
INSERT INTO price_models (id, version, tenant_id, spec, created_at)
VALUES (:id, 1, :tenant_id, :spec, :created_at);

-- name: price_model_new_version
INSERT INTO price_models (id, version, tenant_id, spec, created_at)
SELECT id, max(version) + 1, tenant_id, :spec, :created_at
FROM price_models WHERE id = :id AND tenant_id = :tenant_id
GROUP BY id, tenant_id
RETURNING version;

-- name: price_model_latest
SELECT * FROM price_models WHERE id = :id AND tenant_id = :tenant_id
ORDER BY version DESC LIMIT 1;

-- name: price_model_version
SELECT * FROM price_models WHERE id = :id AND tenant_id = :tenant_id AND version = :version;

-- name: price_model_list
SELECT p.* FROM price_models p
WHERE p.tenant_id = :tenant_id AND (CAST(:cursor AS TEXT) IS NULL OR p.id < :cursor)
  AND p.version = (SELECT max(q.version) FROM price_models q WHERE q.id = p.id)
ORDER BY p.id DESC LIMIT :limit;

-- name: billing_insert
INSERT INTO billing_information (
    id, tenant_id, event_id, source, transaction_id, customer_number, external_contract_id,
    currency, total_gross, total_net, invoice_date, request, price_models, subscription_id, memo,
    metadata, status, created_at)
VALUES (
    :id, :tenant_id, :event_id, :source, :transaction_id, :customer_number,
    :external_contract_id, :currency, :total_gross, :total_net, :invoice_date, :request,
    :price_models, :subscription_id, :memo, :metadata, :status, :created_at);

-- name: billing_of_subscription
-- Everything a subscription billed, newest first (a period's documents are among them).
SELECT b.*, e.body FROM billing_information b JOIN events e ON e.id = b.event_id
WHERE b.tenant_id = :tenant_id AND b.subscription_id = :subscription_id
ORDER BY b.id DESC;

-- name: billing_by_transaction
SELECT b.*, e.body FROM billing_information b JOIN events e ON e.id = b.event_id
WHERE b.tenant_id = :tenant_id AND b.transaction_id = :transaction_id;

-- name: billing_discard
UPDATE billing_information SET status = 'discarded', status_reason = :reason
WHERE id = :id AND status = 'draft'
RETURNING id;

-- name: billing_supersede
UPDATE billing_information
SET status = 'superseded', status_reason = :reason, superseded_by = :superseded_by
WHERE id = :id AND status IN ('open', 'draft')
RETURNING id;

-- name: billing_by_event
SELECT * FROM billing_information WHERE event_id = :event_id;

-- name: billing_latest_of_customer
SELECT b.*, e.body FROM billing_information b JOIN events e ON e.id = b.event_id
WHERE b.tenant_id = :tenant_id AND b.customer_number = :customer_number
ORDER BY b.id DESC LIMIT 1;

-- name: subscription_insert
INSERT INTO subscriptions (
    id, tenant_id, transaction_id, customer_number, external_contract_id, product_id, price_model_id,
    price_model_version, terms, status, next_period_start, next_bill_at, created_at, updated_at)
VALUES (
    :id, :tenant_id, :transaction_id, :customer_number, :external_contract_id, :product_id, :price_model_id,
    :price_model_version, :terms, :status, :next_period_start, :next_bill_at, :created_at,
    :created_at);

-- name: subscription_get
SELECT * FROM subscriptions WHERE id = :id AND tenant_id = :tenant_id;

-- name: subscription_by_transaction
SELECT * FROM subscriptions WHERE tenant_id = :tenant_id AND transaction_id = :transaction_id;

-- name: subscription_list
SELECT * FROM subscriptions
WHERE tenant_id = :tenant_id AND (CAST(:cursor AS TEXT) IS NULL OR id < :cursor)
ORDER BY id DESC LIMIT :limit;

-- name: subscription_advance
UPDATE subscriptions SET
    status = :status, next_period_start = :next_period_start, next_bill_at = :next_bill_at,
    cycles_billed = cycles_billed + 1, updated_at = :now
WHERE id = :id AND next_bill_at = :lease_until
RETURNING id;

-- name: endpoint_by_id
SELECT * FROM endpoints WHERE id = :id AND deleted_at IS NULL;

-- name: replay_insert
INSERT INTO replays (
    id, tenant_id, endpoint_id, since, until, only_failed, event_types, rate_per_s, status,
    matched, next_run_at, created_at, updated_at)
VALUES (
    :id, :tenant_id, :endpoint_id, :since, :until, :only_failed, :event_types, :rate_per_s,
    'running', :matched, :now, :now, :now);

-- name: replay_get
SELECT * FROM replays WHERE id = :id AND tenant_id = :tenant_id;

-- name: replay_list
SELECT * FROM replays
WHERE tenant_id = :tenant_id AND (CAST(:cursor AS TEXT) IS NULL OR id < :cursor)
ORDER BY id DESC LIMIT :limit;

-- name: replay_progress
SELECT status, count(*) AS n FROM deliveries WHERE replay_id = :id GROUP BY status;

-- name: replays_claim
UPDATE replays SET next_run_at = :lease_until
WHERE id IN (
    SELECT id FROM replays WHERE status = 'running' AND next_run_at <= :now
    ORDER BY next_run_at LIMIT :limit)
RETURNING *;

-- name: replay_advance
UPDATE replays SET cursor = :cursor, enqueued = :enqueued, next_run_at = :next_run_at,
    paced_until = :paced_until, status = :status, updated_at = :now
WHERE id = :id AND status = 'running' AND next_run_at = :lease_until
RETURNING id;

-- name: replay_cancel
-- Not finished: still enqueueing ('running'), or enqueued ('done') with deliveries pending.
UPDATE replays SET status = 'cancelled', updated_at = :now
WHERE id = :id AND tenant_id = :tenant_id AND status IN ('running', 'done')
RETURNING id;

-- name: replay_cancel_deliveries
UPDATE deliveries SET status = 'cancelled', next_attempt_at = NULL, updated_at = :now
WHERE replay_id = :id AND status = 'pending' AND trigger = 'replay'
RETURNING endpoint_id, ordering_key;

-- name: replay_release_adopted
UPDATE deliveries SET replay_id = NULL
WHERE replay_id = :id AND status IN ('pending', 'delivering') AND trigger <> 'replay';

-- name: replay_events
-- Events in the window after the cursor (the replay filters them by subscription in Python).
SELECT id, tenant_id, type, customer_number, external_contract_id, ordering_key, created_at,
       about_endpoint_id
FROM events
WHERE tenant_id = :tenant_id AND id > :after AND id < :until_id
ORDER BY id LIMIT :limit;

-- name: replay_count_all
SELECT type, customer_number, external_contract_id, about_endpoint_id, count(*) AS n
FROM events
WHERE tenant_id = :tenant_id AND id >= :since_id AND id < :until_id
GROUP BY type, customer_number, external_contract_id, about_endpoint_id;

-- name: replay_count_failed
SELECT e.type, e.customer_number, e.external_contract_id, e.about_endpoint_id, count(*) AS n
FROM events e
WHERE e.tenant_id = :tenant_id AND e.id >= :since_id AND e.id < :until_id
  AND EXISTS (
        SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.endpoint_id = :endpoint_id
          AND d.status IN ('failed', 'cancelled'))
  AND NOT EXISTS (
        SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.endpoint_id = :endpoint_id
          AND d.status IN ('succeeded', 'pending', 'delivering'))
GROUP BY e.type, e.customer_number, e.external_contract_id, e.about_endpoint_id;

-- name: replay_count_held
-- What the endpoint's circuit holds in the window (replay_adopt_held), not yet in a replay.
SELECT e.type, e.customer_number, e.external_contract_id, e.about_endpoint_id, count(*) AS n
FROM deliveries d JOIN events e ON e.id = d.event_id
JOIN endpoints ep ON ep.id = d.endpoint_id AND (ep.health = 'failing' OR ep.status = 'disabled')
WHERE d.endpoint_id = :endpoint_id AND d.status IN ('pending', 'delivering')
  AND d.replay_id IS NULL AND d.event_id >= :since_id AND d.event_id < :until_id
GROUP BY e.type, e.customer_number, e.external_contract_id, e.about_endpoint_id;

-- name: endpoint_attempt_stats
SELECT count(*) AS attempts, coalesce(sum(CASE WHEN error IS NULL THEN 1 ELSE 0 END), 0) AS ok,
       CAST(avg(duration_ms) AS DOUBLE PRECISION) AS avg_ms
FROM attempts WHERE endpoint_id = :endpoint_id AND started_at >= :since;

-- name: endpoint_attempt_duration_at
SELECT duration_ms FROM attempts WHERE endpoint_id = :endpoint_id AND started_at >= :since
ORDER BY duration_ms LIMIT 1 OFFSET :offset;

-- name: endpoint_backlog
SELECT count(*) AS pending,
       coalesce(sum(CASE WHEN next_attempt_at IS NULL THEN 1 ELSE 0 END), 0) AS held,
       min(created_at) AS oldest,
       count(DISTINCT CASE WHEN queued = 1 THEN ordering_key END) AS blocked
FROM deliveries WHERE endpoint_id = :endpoint_id AND status = 'pending';

-- name: endpoint_glance
-- What a list row says of an endpoint: pending and held and the soonest retry, read from at
-- most :cap pending deliveries (a list page shows "1000+"); the next probe of an open circuit;
-- the last attempt (the attempts_endpoint index, newest first).
SELECT b.pending, b.held, b.next_retry_at, p.probe_at, a.started_at AS last_attempt_at,
       a.status_code AS last_status_code, a.error AS last_error
FROM endpoints p
CROSS JOIN (SELECT count(*) AS pending,
                   coalesce(sum(CASE WHEN next_attempt_at IS NULL THEN 1 ELSE 0 END), 0) AS held,
                   min(CASE WHEN attempts > 0 THEN next_attempt_at END) AS next_retry_at
            FROM (SELECT next_attempt_at, attempts FROM deliveries
                  WHERE endpoint_id = :endpoint_id AND status = 'pending' LIMIT :cap) AS open_rows
           ) AS b
LEFT JOIN (SELECT started_at, status_code, error FROM attempts WHERE endpoint_id = :endpoint_id
           ORDER BY started_at DESC LIMIT 1) AS a ON 1 = 1
WHERE p.id = :endpoint_id;

-- name: purge_attempts
DELETE FROM attempts WHERE id IN (
    SELECT id FROM attempts WHERE id > :after AND id < :before ORDER BY id LIMIT :limit)
RETURNING id;

-- name: purge_deliveries
DELETE FROM deliveries WHERE id IN (
    SELECT d.id FROM deliveries d
    WHERE d.id > :after AND d.id < :before AND d.status IN ('succeeded', 'failed', 'cancelled')
      AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.delivery_id = d.id)
    ORDER BY d.id LIMIT :limit)
RETURNING id;

-- name: purge_events
-- Never an event that carries billing information, an invoice or a credit note: those are
-- billing records, not traffic.
DELETE FROM events WHERE id IN (
    SELECT e.id FROM events e
    WHERE e.id > :after AND e.id < :before
      AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)
      AND NOT EXISTS (SELECT 1 FROM billing_information b WHERE b.event_id = e.id)
      AND NOT EXISTS (SELECT 1 FROM invoices i WHERE i.event_id = e.id)
      AND NOT EXISTS (SELECT 1 FROM credit_notes c WHERE c.event_id = e.id)
    ORDER BY e.id LIMIT :limit)
RETURNING id;

-- name: replay_by_id
SELECT * FROM replays WHERE id = :id;

-- name: billing_open_groups
-- A tenant's open billing information by (customer, contract, currency), oldest group first.
SELECT customer_number, external_contract_id, currency, min(created_at) AS oldest
FROM billing_information
WHERE tenant_id = :tenant_id AND status = 'open' AND created_at <= :up_to
  AND (CAST(:customer_number AS TEXT) IS NULL OR customer_number = :customer_number)
  AND (CAST(:external_contract_id AS TEXT) IS NULL OR external_contract_id = :external_contract_id)
GROUP BY customer_number, external_contract_id, currency
ORDER BY oldest LIMIT :limit;

-- name: billing_open_due
-- Groups, of any tenant that finalizes automatically, with open billing information (or
-- drafts, where the tenant finalizes those too) older than :before: a range of the partial
-- index on open and draft rows, so the check is cheap however much is open and not yet due.
SELECT DISTINCT b.tenant_id, b.customer_number, b.external_contract_id, b.currency
FROM billing_information b JOIN tenants t ON t.id = b.tenant_id
WHERE b.status IN ('open', 'draft') AND b.created_at <= :before AND t.auto_finalize = 1
  AND (b.status = 'open' OR t.auto_finalize_drafts = 1)
LIMIT :limit;

-- name: billing_open_of_group
SELECT b.id, b.transaction_id, b.event_id, e.body, b.memo, b.metadata
FROM billing_information b JOIN events e ON e.id = b.event_id
WHERE b.tenant_id = :tenant_id AND b.customer_number = :customer_number
  AND (b.status = 'open'
       OR (b.status = 'draft' AND (CAST(:drafts AS INTEGER) = 1 OR b.event_id = :only)))
  AND (b.external_contract_id = :external_contract_id
       OR (b.external_contract_id IS NULL AND CAST(:external_contract_id AS TEXT) IS NULL))
  AND b.currency = :currency
  AND b.created_at <= :up_to AND (CAST(:only AS TEXT) IS NULL OR b.event_id = :only)
ORDER BY b.created_at, b.id;

-- name: document_number
-- The next number of a series, in the caller's transaction: a rollback gives it back.
INSERT INTO document_counters (tenant_id, series, year, last)
VALUES (:tenant_id, :series, :year, 1)
ON CONFLICT (tenant_id, series, year) DO UPDATE SET last = document_counters.last + 1
RETURNING last;

-- name: invoice_insert
INSERT INTO invoices (
    id, tenant_id, number, customer_number, external_contract_id, currency, invoice_date,
    total_gross, total_net, gross_minor, document, event_id, created_at, rebill_of)
VALUES (
    :id, :tenant_id, :number, :customer_number, :external_contract_id, :currency,
    :invoice_date, :total_gross, :total_net, :gross_minor, :document, :event_id, :created_at,
    :rebill_of);

-- name: invoice_rebilled_by
SELECT number FROM invoices WHERE tenant_id = :tenant_id AND rebill_of = :number;

-- name: credit_note_insert
INSERT INTO credit_notes (
    id, tenant_id, number, invoice_number, total_gross, total_net, gross_minor, document,
    event_id, created_at)
VALUES (
    :id, :tenant_id, :number, :invoice_number, :total_gross, :total_net, :gross_minor,
    :document, :event_id, :created_at);

-- name: billing_mark_invoiced
UPDATE billing_information SET status = 'invoiced', invoice_number = :number
WHERE id = :id AND status IN ('open', 'draft')
RETURNING id;

-- name: invoice_get
SELECT i.*, CAST(coalesce((SELECT sum(c.gross_minor) FROM credit_notes c
                           WHERE c.tenant_id = i.tenant_id AND c.invoice_number = i.number), 0)
                 AS BIGINT) AS credited_minor
FROM invoices i WHERE i.tenant_id = :tenant_id AND i.number = :number;

-- name: invoice_list
SELECT * FROM (
    SELECT i.*, CAST(coalesce((SELECT sum(c.gross_minor) FROM credit_notes c
                               WHERE c.tenant_id = i.tenant_id AND c.invoice_number = i.number),
                              0) AS BIGINT) AS credited_minor
    FROM invoices i
    WHERE i.tenant_id = :tenant_id AND i.id < :cursor
      AND (CAST(:customer_number AS TEXT) IS NULL OR i.customer_number = :customer_number)) AS listed
WHERE CAST(:status AS TEXT) IS NULL
   OR (CAST(:status AS TEXT) = 'finalized' AND credited_minor = 0)
   OR (CAST(:status AS TEXT) = 'partially_credited' AND credited_minor > 0
       AND credited_minor < gross_minor)
   OR (CAST(:status AS TEXT) = 'credited' AND credited_minor >= gross_minor)
ORDER BY id DESC LIMIT :limit;

-- name: credit_notes_of_invoice
SELECT * FROM credit_notes
WHERE tenant_id = :tenant_id AND invoice_number = :invoice_number ORDER BY id;

-- name: credit_note_get
SELECT * FROM credit_notes WHERE tenant_id = :tenant_id AND number = :number;

-- name: tenant_seller_get
SELECT seller FROM tenants WHERE id = :tenant_id;

-- name: tenant_seller_set
UPDATE tenants SET seller = :seller WHERE id = :tenant_id;

-- name: job_claim
-- The job is due (or has never run): move its due time on and run it. Of several workers
-- asking at the same moment exactly one gets a row back.
INSERT INTO job_runs (name, due_at) VALUES (:name, :next)
ON CONFLICT (name) DO UPDATE SET due_at = :next WHERE job_runs.due_at <= :now
RETURNING name;

-- name: job_due_at
UPDATE job_runs SET due_at = :due_at WHERE name = :name;

-- name: endpoint_secrets
-- Deleted endpoints too: their secrets are at rest as well.
SELECT id, secret, previous_secret, credentials FROM endpoints;

-- name: endpoint_secrets_set
UPDATE endpoints SET secret = :secret, previous_secret = :previous_secret,
    credentials = :credentials
WHERE id = :id;

-- name: console_session_insert
INSERT INTO console_sessions (id, token_hash, tenant_id, role, key_id, credential_hash,
    chosen_tenant, csrf, created_at, expires_at)
VALUES (:id, :token_hash, :tenant_id, :role, :key_id, :credential_hash, :chosen_tenant, :csrf,
    :now, :expires_at);

-- name: console_session_get
-- Live only while not ended, not expired, and the key it was opened with is not revoked.
SELECT s.* FROM console_sessions s LEFT JOIN api_keys k ON k.id = s.key_id
WHERE s.token_hash = :token_hash AND s.ended_at IS NULL AND s.expires_at > :now
  AND (s.key_id IS NULL OR k.revoked_at IS NULL OR k.revoked_at > :now);

-- name: console_session_end
UPDATE console_sessions SET ended_at = :now WHERE token_hash = :token_hash AND ended_at IS NULL;

-- name: console_session_choose
UPDATE console_sessions SET chosen_tenant = :tenant_id WHERE id = :id;

-- name: console_sessions_purge
DELETE FROM console_sessions WHERE expires_at < :before OR ended_at < :before;

-- name: key_of_hash
SELECT id, tenant_id FROM api_keys
WHERE key_hash = :key_hash AND (revoked_at IS NULL OR revoked_at > :now);

-- name: console_link_insert
INSERT INTO console_links (id, token_hash, tenant_id, role, expires_at, created_at)
VALUES (:id, :token_hash, :tenant_id, :role, :expires_at, :now);

-- name: console_link_use
-- One time: the first use marks it; an expired or used link answers nothing.
UPDATE console_links SET used_at = :now
WHERE token_hash = :token_hash AND used_at IS NULL AND expires_at > :now
RETURNING tenant_id, role, expires_at;

-- name: activity_sample_of_tenant
-- The latest attempts of one slice of a chart's window (a range of attempts_tenant), bounded.
SELECT duration_ms, error FROM attempts
WHERE tenant_id = :tenant_id AND id >= :lo AND id < :hi
ORDER BY id DESC LIMIT :limit;

-- name: activity_count_of_tenant
SELECT count(*) AS n FROM attempts WHERE tenant_id = :tenant_id AND id >= :lo AND id < :hi;

-- name: activity_sample_of_endpoint
SELECT duration_ms, error FROM attempts
WHERE endpoint_id = :endpoint_id AND started_at >= :lo AND started_at < :hi
ORDER BY started_at DESC LIMIT :limit;

-- name: activity_count_of_endpoint
SELECT count(*) AS n FROM attempts
WHERE endpoint_id = :endpoint_id AND started_at >= :lo AND started_at < :hi;

-- name: queue_of_tenant
-- Unfinished deliveries, counted up to :cap (a page must not count a million rows), and the
-- creation time of the oldest: both read from the partial index of open deliveries.
SELECT (SELECT count(*) FROM (
            SELECT 1 FROM deliveries
            WHERE tenant_id = :tenant_id AND status IN ('pending', 'delivering')
            LIMIT :cap) AS open_rows) AS pending,
       (SELECT min(created_at) FROM deliveries
        WHERE tenant_id = :tenant_id AND status IN ('pending', 'delivering')) AS oldest;

-- name: deliveries_of_endpoint
-- One status at a time, so each page is one range of deliveries_endpoint (endpoint, status, id).
SELECT * FROM deliveries
WHERE endpoint_id = :endpoint_id AND status = :status AND tenant_id = :tenant_id AND id < :cursor
ORDER BY id DESC LIMIT :limit;

-- name: recent_event_types_of_tenant
-- The types a tenant has used lately (the latest 5,000 events): what an endpoint can pick.
SELECT DISTINCT type FROM (
    SELECT type FROM events WHERE tenant_id = :tenant_id ORDER BY id DESC LIMIT 5000) AS recent
ORDER BY type;

-- name: event_by_transaction
SELECT e.* FROM billing_information b JOIN events e ON e.id = b.event_id
WHERE b.tenant_id = :tenant_id AND b.transaction_id = :transaction_id;

-- name: billing_list
SELECT b.*, e.body FROM billing_information b JOIN events e ON e.id = b.event_id
WHERE b.tenant_id = :tenant_id AND b.id < :cursor
  AND (CAST(:external_contract_id AS TEXT) IS NULL
       OR b.external_contract_id = :external_contract_id)
  AND (CAST(:status AS TEXT) IS NULL OR b.status = :status)
ORDER BY b.id DESC LIMIT :limit;

-- name: billing_list_of_customer
-- Through billing_customer (tenant, customer, id).
SELECT b.*, e.body FROM billing_information b JOIN events e ON e.id = b.event_id
WHERE b.tenant_id = :tenant_id AND b.customer_number = :customer_number AND b.id < :cursor
  AND (CAST(:external_contract_id AS TEXT) IS NULL
       OR b.external_contract_id = :external_contract_id)
  AND (CAST(:status AS TEXT) IS NULL OR b.status = :status)
ORDER BY b.id DESC LIMIT :limit;

-- name: keys_of_tenant
SELECT id, tenant_id, source, name, created_at, revoked_at, last_used_at FROM api_keys
WHERE tenant_id = :tenant_id ORDER BY id DESC;

-- name: change_insert
INSERT INTO subscription_changes (
    id, tenant_id, subscription_id, kind, spec, effective_date, due_at, status, result,
    idempotency_key, created_at, updated_at)
VALUES (
    :id, :tenant_id, :subscription_id, :kind, :spec, :effective_date, :due_at, :status, :result,
    :idempotency_key, :created_at, :updated_at);

-- name: change_by_key
SELECT * FROM subscription_changes
WHERE subscription_id = :subscription_id AND idempotency_key = :idempotency_key;

-- name: change_get
SELECT * FROM subscription_changes WHERE id = :id AND tenant_id = :tenant_id;

-- name: changes_of
SELECT * FROM subscription_changes
WHERE subscription_id = :subscription_id AND id < :cursor
ORDER BY id DESC LIMIT :limit;

-- name: changes_due
-- Through the partial index on queued changes: cheap however many were applied.
SELECT * FROM subscription_changes WHERE status = 'queued' AND due_at <= :now
ORDER BY due_at, id LIMIT :limit;

-- name: change_rewrite
UPDATE subscription_changes
SET spec = :spec, effective_date = :effective_date, due_at = :due_at, status = :status,
    updated_at = :updated_at
WHERE id = :id AND status = 'queued'
RETURNING id;

-- name: change_applied
-- Queued → applied happens once: a second process finds no queued row and writes nothing.
-- (Executed now: its date and due time become today's in the same statement.)
UPDATE subscription_changes SET status = 'applied', result = :result, updated_at = :now,
    effective_date = :effective_date, due_at = :due_at
WHERE id = :id AND status = 'queued'
RETURNING id;

-- name: change_failed
UPDATE subscription_changes SET status = 'failed', result = :result, updated_at = :now
WHERE id = :id AND status = 'queued'
RETURNING id;

-- name: changes_failed_of_tenant
SELECT * FROM subscription_changes WHERE tenant_id = :tenant_id AND status = 'failed'
ORDER BY id DESC LIMIT :limit;

-- name: subscription_changed
-- Only from the state the change was computed against: a cycle billed (or claimed) meanwhile
-- moved next_bill_at or next_period_start, and the change is computed again.
UPDATE subscriptions SET
    price_model_id = :price_model_id, price_model_version = :price_model_version,
    terms = :terms, status = :status, next_period_start = :next_period_start,
    next_bill_at = :next_bill_at, cycles_billed = :cycles_billed, updated_at = :now
WHERE id = :id AND next_period_start = :seen_next_period_start
  AND next_bill_at = :seen_next_bill_at AND status = 'active'
RETURNING id;

-- name: change_result
UPDATE subscription_changes SET result = :result WHERE id = :id;

-- name: event_type_insert
INSERT INTO event_types (tenant_id, name, description, schema, created_at)
VALUES (:tenant_id, :name, :description, :schema, :created_at);

-- name: event_types_of_tenant
SELECT * FROM event_types WHERE tenant_id = :tenant_id ORDER BY name;

-- name: event_type_delete
DELETE FROM event_types WHERE tenant_id = :tenant_id AND name = :name RETURNING name;

-- name: dead_letter_insert
INSERT INTO dead_letters (id, tenant_id, source, message_key, body, body_bytes, error, created_at)
VALUES (:id, :tenant_id, :source, :message_key, :body, :body_bytes, :error, :created_at)
ON CONFLICT (tenant_id, source, message_key) DO NOTHING;

-- name: dead_letters_page
SELECT * FROM dead_letters
WHERE tenant_id = :tenant_id AND (CAST(:cursor AS TEXT) IS NULL OR id < :cursor)
ORDER BY id DESC LIMIT :limit;

-- name: dead_letters_count
SELECT count(*) AS n FROM dead_letters WHERE tenant_id = :tenant_id;

-- name: purge_dead_letters
DELETE FROM dead_letters WHERE id IN (
    SELECT id FROM dead_letters WHERE id > :after AND id < :before ORDER BY id LIMIT :limit)
RETURNING id;
