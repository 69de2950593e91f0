-- Operational events (endpoint.failing, message.attempt.exhausted, …) name the endpoint they are
-- about, so that neither fan-out nor a replay ever sends one to that endpoint.
ALTER TABLE events ADD COLUMN about_endpoint_id TEXT;
