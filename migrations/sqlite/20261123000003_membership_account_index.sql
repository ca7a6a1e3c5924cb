-- Memberships by account, across organisations: who keeps an account's profile, and the
-- account list's teams and roles, look memberships up this way.
CREATE INDEX memberships_account ON memberships (account_id);
