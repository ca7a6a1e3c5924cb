-- The feed-health gate compares a feed with the connector's last good one: its size, and how
-- many of its records had no usable email.
ALTER TABLE connector_state ADD COLUMN last_good_missing_email BIGINT;
