-- Admin sign-in sessions of the pages. The cookie holds a random session id; only its SHA-256
-- is kept here, so reading the database (or a backup of it) signs nobody in.

CREATE TABLE admin_sessions (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    session_hash  TEXT NOT NULL UNIQUE,
    created_at    TEXT NOT NULL,
    -- When the session was last used (written at most about once a minute): the idle timeout
    -- counts from here.
    last_seen_at  TEXT NOT NULL,
    -- The absolute end of the session, however often it is used.
    expires_at    TEXT NOT NULL,
    -- Set by signing out: the cookie stops working at once, wherever it is kept.
    revoked_at    TEXT
);
-- Purging old sessions reads by end.
CREATE INDEX admin_sessions_expires ON admin_sessions (expires_at);
