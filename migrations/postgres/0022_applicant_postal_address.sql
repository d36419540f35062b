-- The public hybrid service (issue 17): a letter to an applicant with no e-Doręczenia
-- address may go on paper, to the postal address they gave in the request
-- (Wnioskodawca/AdresKorespondencyjny). Kept as JSON: {"street", "building", "flat"?,
-- "postal_code", "city"}; NULL when the form gave none. A letter sent on paper stores the
-- same JSON as its recipient (outbound_document.recipient, channel 'hybrid').
-- Keep in step with migrations/sqlite/0022_applicant_postal_address.sql.
ALTER TABLE access_request ADD COLUMN applicant_postal_address TEXT;
