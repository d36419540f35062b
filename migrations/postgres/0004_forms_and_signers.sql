-- What the 'verify' job reads besides the verdict: the form (forms::Registry) and the signer.
-- Keep in step with the other backend's 0004: same columns, same meaning.

-- access_request | authorization | general_letter | unknown (NULL: not XML, or not yet read)
ALTER TABLE inbound_document ADD COLUMN form_type TEXT
    CHECK (form_type IN ('access_request', 'authorization', 'general_letter', 'unknown'));
-- Why a document of a known form type could not be read (XSD or content), with where.
ALTER TABLE inbound_document ADD COLUMN form_error TEXT;
-- The signer, only from signed content (TOTAL-PASSED only; see docs/signature.md).
ALTER TABLE inbound_document ADD COLUMN signer_given_name TEXT;
ALTER TABLE inbound_document ADD COLUMN signer_surname TEXT;
ALTER TABLE inbound_document ADD COLUMN signer_pesel TEXT;
ALTER TABLE inbound_document ADD COLUMN signer_organization TEXT;
-- The ePUAP account named by a trusted-profile signature (old PodpisZP layout).
ALTER TABLE inbound_document ADD COLUMN signer_epuap_account TEXT;
-- XAdES SigningTime as claimed by the signer.
ALTER TABLE inbound_document ADD COLUMN signing_time TIMESTAMPTZ;
-- The signer certificate states QcCompliance (EU qualified certificate).
ALTER TABLE inbound_document ADD COLUMN signer_qualified BOOLEAN;
ALTER TABLE inbound_document ADD COLUMN signer_certificate BYTEA;
-- Subjects of the certificates in KeyInfo, as a JSON array, as presented.
ALTER TABLE inbound_document ADD COLUMN signature_chain TEXT;

-- The trusted list in use, per territory: a restart refuses an older list (a rollback).
CREATE TABLE trusted_list_state (
    territory       TEXT PRIMARY KEY,
    sequence_number BIGINT NOT NULL,
    issued_at       TIMESTAMPTZ NOT NULL,
    loaded_at       TIMESTAMPTZ NOT NULL
);
