-- The directory: organisations, accounts, memberships, teams, coaches, roles and tokens.

CREATE TABLE organisations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    time_zone   TEXT NOT NULL,
    locale      TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

-- One account per person, recognised by the lower-cased email.
CREATE TABLE accounts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT NOT NULL,
    email_norm    TEXT NOT NULL UNIQUE,
    first_name    TEXT,
    last_name     TEXT,
    display_name  TEXT,
    activated_at  TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

-- connector_id is NULL for a membership made by hand: no sync deactivates it.
CREATE TABLE memberships (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    organisation_id  BIGINT NOT NULL REFERENCES organisations (id),
    account_id       BIGINT NOT NULL REFERENCES accounts (id),
    state            TEXT NOT NULL CHECK (state IN ('invited', 'active', 'deactivated')),
    connector_id     TEXT,
    employee_id      TEXT,
    job_title        TEXT,
    location         TEXT,
    employment_type  TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    deactivated_at   TEXT,
    UNIQUE (organisation_id, account_id)
);
CREATE UNIQUE INDEX memberships_employee ON memberships (organisation_id, connector_id, employee_id);

CREATE TABLE teams (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    organisation_id  BIGINT NOT NULL REFERENCES organisations (id),
    connector_id     TEXT,
    key              TEXT NOT NULL,
    name             TEXT NOT NULL,
    created_at       TEXT NOT NULL
);
CREATE UNIQUE INDEX teams_key ON teams (organisation_id, connector_id, key);

CREATE TABLE team_members (
    team_id       BIGINT NOT NULL REFERENCES teams (id),
    account_id    BIGINT NOT NULL REFERENCES accounts (id),
    connector_id  TEXT,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (team_id, account_id)
);
CREATE INDEX team_members_account ON team_members (account_id);

CREATE TABLE team_coaches (
    team_id       BIGINT NOT NULL REFERENCES teams (id),
    account_id    BIGINT NOT NULL REFERENCES accounts (id),
    connector_id  TEXT,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (team_id, account_id)
);
CREATE INDEX team_coaches_account ON team_coaches (account_id);

CREATE TABLE roles (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    organisation_id  BIGINT NOT NULL REFERENCES organisations (id),
    name             TEXT NOT NULL,
    UNIQUE (organisation_id, name)
);

-- connector_id is NULL for a grant made by hand (admin rights are): no sync revokes it.
CREATE TABLE role_grants (
    role_id       BIGINT NOT NULL REFERENCES roles (id),
    account_id    BIGINT NOT NULL REFERENCES accounts (id),
    connector_id  TEXT,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (role_id, account_id)
);
CREATE INDEX role_grants_account ON role_grants (account_id);

-- Only the SHA-256 of a token is kept; the token itself exists only in the email.
CREATE TABLE activation_tokens (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id       BIGINT NOT NULL REFERENCES accounts (id),
    organisation_id  BIGINT NOT NULL REFERENCES organisations (id),
    token_hash       TEXT NOT NULL UNIQUE,
    email            TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    expires_at       TEXT NOT NULL,
    used_at          TEXT,
    revoked_at       TEXT
);
CREATE INDEX activation_tokens_account ON activation_tokens (account_id, organisation_id);
