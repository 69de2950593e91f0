-- What a subscription's period was billed by is read across all its billing information (a
-- second change or a cancellation takes its credit from every document of the period), and a
-- change that cannot be applied at its date ends `failed` with its reason.

CREATE INDEX billing_subscription ON billing_information (tenant_id, subscription_id, id)
    WHERE subscription_id IS NOT NULL;
CREATE INDEX subscription_changes_failed ON subscription_changes (tenant_id, id)
    WHERE status = 'failed';
