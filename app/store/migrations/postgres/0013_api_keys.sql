-- API keys are managed on purpose (issue 22): each has a name and the time it was last used,
-- and `revoked_at` may lie in the future — a rotated key keeps working until then (the overlap
-- window). A process's BILLHOOK_API_KEY is added at start and never revokes another key.

ALTER TABLE api_keys ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN last_used_at BIGINT;
UPDATE api_keys SET name = 'BILLHOOK_API_KEY' WHERE source = 'env';
