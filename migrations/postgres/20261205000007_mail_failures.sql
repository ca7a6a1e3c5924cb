-- A mail the mail server refused for good (a 5xx answer, or a message that cannot be built):
-- it is not tried again, and last_error says why. The account shows it until a later mail of
-- the same kind to the person goes out.
ALTER TABLE mail_outbox ADD COLUMN failed_at TIMESTAMPTZ;
