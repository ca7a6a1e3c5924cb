-- Named admins, each with a token of their own, so every action by hand names who did it; and
-- service tokens for the product that owns the log-in (a separate, narrower kind of token).
-- Only the SHA-256 of a token is kept, as for the configured admin token and the sessions.

CREATE TABLE admins (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL,
    -- Set by `hrsync admins revoke`: the token and every session it started stop working.
    revoked_at  TIMESTAMPTZ
);

-- The admin a session was started by; NULL for the configured token (`admin`).
ALTER TABLE admin_sessions ADD COLUMN admin_name TEXT;

CREATE TABLE service_tokens (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL,
    revoked_at  TIMESTAMPTZ
);

-- When the person last signed in to the product (recorded through a service token).
ALTER TABLE accounts ADD COLUMN last_login_at TIMESTAMPTZ;
