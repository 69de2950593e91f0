-- Publishing a type that is neither built in nor declared is refused unless the tenant opts in
-- to free-form types (issue 22). Tenants that exist when this runs published such types before
-- the rule: they keep doing so until they turn it off (PATCH /v1/settings), so an upgrade
-- never starts refusing a producer's events. Tenants created afterwards start strict.

ALTER TABLE tenants ADD COLUMN free_form_types INTEGER NOT NULL DEFAULT 0;
UPDATE tenants SET free_form_types = 1;
