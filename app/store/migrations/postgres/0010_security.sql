-- Console sessions kept on the server, so that signing out, revoking the key a session was
-- opened with, or a console link's expiry ends them; the cookie holds a random token whose
-- hash is looked up here. No signing secret is kept in the database any more (the console's
-- form keys derive from BILLHOOK_SECRET_KEY). Temporary endpoints (billhook listen) carry a
-- lease their listener renews; the hub disables them when it lapses.

CREATE TABLE console_sessions (
    id               TEXT PRIMARY KEY,
    token_hash       TEXT NOT NULL UNIQUE,
    tenant_id        TEXT,               -- the grant's tenant; NULL: the admin
    role             TEXT NOT NULL,      -- viewer | operator | admin
    key_id           TEXT,               -- the API key signed in with: revoking it ends this
    credential_hash  TEXT,               -- the admin token's hash: another token ends this
    chosen_tenant    TEXT,               -- the tenant the pages show (the admin picks one)
    csrf             TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    ended_at         BIGINT
);
CREATE INDEX console_sessions_key ON console_sessions (key_id);

DROP TABLE hub_secrets;

ALTER TABLE endpoints ADD COLUMN lease_s BIGINT;
ALTER TABLE endpoints ADD COLUMN lease_until BIGINT;
CREATE INDEX endpoints_lease ON endpoints (lease_until) WHERE lease_until IS NOT NULL;
