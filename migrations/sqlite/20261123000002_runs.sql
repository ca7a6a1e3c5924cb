-- Sync runs and their changes, the mail outbox, and per-connector state.

CREATE TABLE sync_runs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    organisation_id  BIGINT NOT NULL REFERENCES organisations (id),
    connector_id     TEXT NOT NULL,
    trigger          TEXT NOT NULL,
    mode             TEXT NOT NULL CHECK (mode IN ('plan', 'apply')),
    status           TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'held', 'approved')),
    as_of            TEXT NOT NULL,
    started_at       TEXT NOT NULL,
    finished_at      TEXT,
    records_fetched  BIGINT NOT NULL DEFAULT 0,
    approved_at      TEXT
);
CREATE INDEX sync_runs_connector ON sync_runs (connector_id, id);

CREATE TABLE sync_changes (
    run_id       BIGINT NOT NULL REFERENCES sync_runs (id),
    seq          INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    employee_id  TEXT,
    email        TEXT,
    field        TEXT,
    old_value    TEXT,
    new_value    TEXT,
    reason       TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE sync_errors (
    run_id   BIGINT NOT NULL REFERENCES sync_runs (id),
    seq      INTEGER NOT NULL,
    code     TEXT NOT NULL,
    message  TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- Emails queued by an applied run, in the same transaction; sent after commit.
CREATE TABLE mail_outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    organisation_id  BIGINT NOT NULL REFERENCES organisations (id),
    account_id       BIGINT REFERENCES accounts (id),
    run_id           BIGINT REFERENCES sync_runs (id),
    kind             TEXT NOT NULL,
    recipient        TEXT NOT NULL,
    recipient_name   TEXT,
    old_email        TEXT,
    new_email        TEXT,
    created_at       TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    last_error       TEXT,
    sent_at          TEXT,
    -- Set instead of sending when the mail no longer applies (the person left, activated,
    -- or has another address now); last_error says why.
    cancelled_at     TEXT
);
CREATE INDEX mail_outbox_due ON mail_outbox (sent_at, next_attempt_at);

CREATE TABLE connector_state (
    connector_id       TEXT PRIMARY KEY,
    last_good_run_id   BIGINT REFERENCES sync_runs (id),
    last_good_records  BIGINT,
    watermark          TEXT,
    updated_at         TEXT NOT NULL
);
