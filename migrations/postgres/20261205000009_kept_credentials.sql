-- Credentials an HR system hands out in place of a configured one (a refresh token that is
-- replaced at every use), kept per connector so the next fetch, in any process or replica,
-- uses the newest. Each value is sealed with a key derived from the configured secret, which
-- the database does not hold.

CREATE TABLE kept_credentials (
    connector_id  TEXT NOT NULL,
    name          TEXT NOT NULL,
    sealed        TEXT NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (connector_id, name)
);
