-- Incremental fetches. An http connector that asks only for what changed since a watermark
-- merges each delta into the records it last knew, kept here, and plans on the whole; every
-- so often it reads the whole feed again (last_full_at, incremental_runs) so leavers that
-- vanished from the HR system are seen.
ALTER TABLE connector_state ADD COLUMN last_full_at TIMESTAMPTZ;
ALTER TABLE connector_state ADD COLUMN incremental_runs BIGINT NOT NULL DEFAULT 0;

CREATE TABLE connector_records (
    connector_id  TEXT NOT NULL,
    employee_id   TEXT NOT NULL,
    -- The records with this employee id as last fetched (usually one), as a JSON array.
    records       TEXT NOT NULL,
    PRIMARY KEY (connector_id, employee_id)
);
