-- The billing lifecycle: drafts, discards and supersessions of billing information; per-tenant
-- automatic finalization; subscription changes (queued, applied once); rebill links.

-- draft | open | invoiced | discarded | superseded. Discarded and superseded rows stay, with
-- why (the discard's reason) and by what (the transactionId that replaced it).
ALTER TABLE billing_information ADD COLUMN status_reason TEXT;
ALTER TABLE billing_information ADD COLUMN superseded_by TEXT;

-- Automatic finalization after BILLHOOK_FINALIZE_AFTER: on for open billing information, off
-- for drafts, unless the tenant says otherwise (PATCH /v1/settings).
ALTER TABLE tenants ADD COLUMN auto_finalize INTEGER NOT NULL DEFAULT 1;
ALTER TABLE tenants ADD COLUMN auto_finalize_drafts INTEGER NOT NULL DEFAULT 0;

DROP INDEX billing_open_age;
CREATE INDEX billing_open_age ON billing_information (status, created_at)
    WHERE status IN ('open', 'draft');

-- A change of a subscription (plan, variables) or its cancellation. A queued one waits for its
-- date; the worker applies it by moving it from queued to applied in the transaction that
-- changes the subscription and writes what it bills: exactly once, whoever gets there first.
CREATE TABLE subscription_changes (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants (id),
    subscription_id  TEXT NOT NULL REFERENCES subscriptions (id),
    kind             TEXT NOT NULL,            -- change | cancel
    spec             TEXT NOT NULL,            -- JSON: the request as validated
    effective_date   TEXT NOT NULL,            -- YYYY-MM-DD, in the business time zone
    due_at           INTEGER NOT NULL,            -- 00:00 of effective_date, unix ms
    status           TEXT NOT NULL,            -- queued | applied | cancelled
    result           TEXT,                     -- JSON: what applying it billed or credited
    idempotency_key  TEXT,                     -- the request's Idempotency-Key, if any
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX subscription_changes_due ON subscription_changes (due_at) WHERE status = 'queued';
CREATE INDEX subscription_changes_of ON subscription_changes (subscription_id, id);
CREATE UNIQUE INDEX subscription_changes_key ON subscription_changes (subscription_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- A rebill's new invoice names the invoice it replaces (the original is immutable, so the link
-- back is found through this column).
ALTER TABLE invoices ADD COLUMN rebill_of TEXT;
CREATE INDEX invoices_rebill_of ON invoices (tenant_id, rebill_of) WHERE rebill_of IS NOT NULL;
