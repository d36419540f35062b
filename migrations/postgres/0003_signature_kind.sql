-- Which kind of signature passed: judged per kind, each with its own trust (docs/signature.md).
ALTER TABLE inbound_document ADD COLUMN signature_kind TEXT
    CHECK (signature_kind IN ('qualified', 'trusted_profile', 'personal'));
