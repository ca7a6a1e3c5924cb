-- The daemon, and incremental feeds that stay true to their definition.

-- How an incremental connector's run read its feed: 'full' or 'incremental' (NULL for a
-- connector that always reads everything). Approving a held run reads it the same way.
ALTER TABLE sync_runs ADD COLUMN fetch_kind TEXT CHECK (fetch_kind IN ('full', 'incremental'));
-- The schedule tick a scheduled run was started for.
ALTER TABLE sync_runs ADD COLUMN scheduled_for TEXT;

-- What the kept records were mapped with (the definition and the instance's variables); when
-- it changes, the next fetch reads the whole feed again.
ALTER TABLE connector_state ADD COLUMN feed_fingerprint TEXT;

-- The last schedule tick each connector was started for, claimed by one replica only: a
-- replica runs a tick only when it moves this forward.
CREATE TABLE schedule_ticks (
    connector_id  TEXT PRIMARY KEY,
    tick          TEXT NOT NULL
);
