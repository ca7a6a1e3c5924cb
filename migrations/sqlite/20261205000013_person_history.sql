-- A person's page shows their history: the changes of runs that named them, found by address
-- (as HR gave it, so compared without letter case), beside the audit trail's actions by hand.
CREATE INDEX sync_changes_email ON sync_changes (LOWER(email));
