-- A run's changes and its queued mail are written in bulk by the applier, in the transaction
-- that holds the run, accounts and organisation they name, and nothing deletes those rows:
-- their foreign keys guarded against nothing the code can do, and checking them row by row
-- was most of the time of writing them on PostgreSQL. The same schema here: SQLite drops a
-- foreign key by rebuilding the table.

CREATE TABLE sync_changes_rebuilt (
    run_id       BIGINT NOT NULL,
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
INSERT INTO sync_changes_rebuilt
    SELECT run_id, seq, kind, employee_id, email, field, old_value, new_value, reason
    FROM sync_changes;
DROP TABLE sync_changes;
ALTER TABLE sync_changes_rebuilt RENAME TO sync_changes;

CREATE TABLE mail_outbox_rebuilt (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    organisation_id  BIGINT NOT NULL,
    account_id       BIGINT,
    run_id           BIGINT,
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
    cancelled_at     TEXT,
    -- Set when the mail server refused the mail for good; last_error says why.
    failed_at        TEXT
);
INSERT INTO mail_outbox_rebuilt (id, organisation_id, account_id, run_id, kind, recipient,
        recipient_name, old_email, new_email, created_at, attempts, next_attempt_at,
        last_error, sent_at, cancelled_at, failed_at)
    SELECT id, organisation_id, account_id, run_id, kind, recipient, recipient_name,
        old_email, new_email, created_at, attempts, next_attempt_at, last_error, sent_at,
        cancelled_at, failed_at
    FROM mail_outbox;
DROP TABLE mail_outbox;
ALTER TABLE mail_outbox_rebuilt RENAME TO mail_outbox;
CREATE INDEX mail_outbox_due ON mail_outbox (sent_at, next_attempt_at);
