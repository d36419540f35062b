-- An access request's `received_at` is its receipt in law: ePUAP's dataNadania, from which the
-- 7-day deadline runs. `stored_at` is when eurzad stored the document, kept beside it (issue
-- 15, point 12). Earlier rows counted from the storage, so both are that.
ALTER TABLE access_request ADD COLUMN stored_at TIMESTAMPTZ;
UPDATE access_request SET stored_at = received_at;
