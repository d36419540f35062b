-- e-Doręczenia (issue 17): a letter's legal state, derived from its evidences
-- (src/edoreczenia/evidence.rs), is kept apart from its sending status; the evidences are
-- kept as received, with their SHA-256, as the office's legal proof. ePUAP letters have no
-- legal state here (their UPP and UPD are in the letter's own columns).
ALTER TABLE outbound_document ADD COLUMN legal_state TEXT
    CHECK (legal_state IN ('sent', 'accepted', 'rejected', 'awaiting_pickup', 'delivered',
                           'deemed_delivered', 'undeliverable'));
ALTER TABLE outbound_document ADD COLUMN legal_state_at TIMESTAMPTZ;
ALTER TABLE outbound_document ADD COLUMN deemed_on DATE;
ALTER TABLE outbound_document ADD COLUMN evidence_checked_at TIMESTAMPTZ;
-- Why the reply step chose the channel it chose.
ALTER TABLE outbound_document ADD COLUMN channel_reason TEXT;

CREATE TABLE letter_evidence (
    id           BIGSERIAL PRIMARY KEY,
    letter_id    BIGINT NOT NULL REFERENCES outbound_document (id),
    evidence_id  TEXT NOT NULL,
    code         TEXT NOT NULL,
    event_at     TIMESTAMPTZ NOT NULL,
    content      BYTEA NOT NULL,
    sha256       TEXT NOT NULL,
    seal         TEXT NOT NULL CHECK (seal IN ('valid', 'invalid', 'unchecked')),
    seal_reason  TEXT,
    received_at  TIMESTAMPTZ NOT NULL,
    UNIQUE (letter_id, evidence_id)
);
CREATE INDEX outbound_document_following ON outbound_document (legal_state)
    WHERE legal_state IN ('sent', 'accepted', 'awaiting_pickup');
