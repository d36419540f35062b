-- The verdict of the signature check (the 'verify' job), per ETSI EN 319 102-1.
-- signature_indication is NULL until checked, and stays NULL for content that is not XML.
ALTER TABLE inbound_document ADD COLUMN signature_indication TEXT
    CHECK (signature_indication IN ('TOTAL-PASSED', 'TOTAL-FAILED', 'INDETERMINATE'));
ALTER TABLE inbound_document ADD COLUMN signature_subindication TEXT;
ALTER TABLE inbound_document ADD COLUMN signature_reason TEXT;
-- wss | xmldsig | xades | unknown
ALTER TABLE inbound_document ADD COLUMN signature_profile TEXT;
ALTER TABLE inbound_document ADD COLUMN signature_signer TEXT;
ALTER TABLE inbound_document ADD COLUMN verified_at TIMESTAMPTZ;
