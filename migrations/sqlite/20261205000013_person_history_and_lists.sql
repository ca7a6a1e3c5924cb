-- A person's page shows their history: the changes of runs that named them, found by address
-- (as HR gave it, so compared without letter case), beside the audit trail's actions by hand.
CREATE INDEX sync_changes_email ON sync_changes (LOWER(email));

-- The account list reads each listed person's mail (a failed one, whether their invitation
-- went out) and counts invitations never sent: by account and organisation.
CREATE INDEX mail_outbox_account ON mail_outbox (account_id, organisation_id, kind);

-- A run's page reads the first lines of each kind, and a kind a page at a time, and counts the
-- lines per kind: by run and kind, in the order recorded.
CREATE INDEX sync_changes_kind ON sync_changes (run_id, kind, seq);
