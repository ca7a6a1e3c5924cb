-- Local administration: suspensions, teams made by hand, and the audit trail of every action
-- an admin takes by hand.

-- A suspended membership cannot be used to log in. A sync never lifts a suspension; an HR
-- leaver still deactivates the membership, which ends it.
ALTER TABLE memberships ADD COLUMN suspended_at TEXT;
-- Who suspended it: the admin's name.
ALTER TABLE memberships ADD COLUMN suspended_by TEXT;

-- Teams made by hand have no connector, and a NULL is distinct in a unique index: one key per
-- organisation among them.
CREATE UNIQUE INDEX teams_by_hand_key ON teams (organisation_id, key) WHERE connector_id IS NULL;

-- Every action by hand: who (the admin's name, and through what: cli, api or page; or the
-- person themselves through the product's service token: service), when, and
-- what. A person's history reads it by account, a run's page by run. Rows are never changed.
CREATE TABLE audit_events (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    at               TEXT NOT NULL,
    actor            TEXT NOT NULL,
    via              TEXT NOT NULL CHECK (via IN ('cli', 'api', 'page', 'service')),
    action           TEXT NOT NULL,
    organisation_id  BIGINT REFERENCES organisations (id),
    account_id       BIGINT REFERENCES accounts (id),
    run_id           BIGINT REFERENCES sync_runs (id),
    -- What the action names beside the person: a field, a role, a team's key.
    subject          TEXT,
    old_value        TEXT,
    new_value        TEXT,
    -- The person's address when it happened (an account's address may change later).
    email            TEXT
);
CREATE INDEX audit_events_account ON audit_events (account_id, id);
CREATE INDEX audit_events_run ON audit_events (run_id, id);
