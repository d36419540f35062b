-- A letter whose sending was interrupted is in a state of its own, review_required
-- (src/delivery/status.rs, the one table of a letter's moves), instead of 'sending' with
-- review_required_at set. review_required_at and review_reason still say when and why.
-- 'failed' was never written and is gone. SQLite cannot change a CHECK: the table is made
-- again, with the same columns in the same order (no other table refers to it).
CREATE TABLE outbound_document_new (
    id                      INTEGER PRIMARY KEY AUTOINCREMENT,
    key                     TEXT NOT NULL UNIQUE,
    channel                 TEXT NOT NULL,
    kind                    TEXT NOT NULL,
    request_id              INTEGER REFERENCES access_request (id),
    recipient               TEXT NOT NULL,
    file_name               TEXT NOT NULL,
    content                 BLOB NOT NULL,
    status                  TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'review_required', 'sent', 'delivered')),
    attempts                INTEGER NOT NULL DEFAULT 0,
    document_identifier     TEXT,
    upp_identifier          TEXT,
    upp                     BLOB,
    upd                     BLOB,
    upd_document_id         INTEGER REFERENCES inbound_document (id),
    sent_at                 TEXT,
    delivered_at            TEXT,
    error                   TEXT,
    created_at              TEXT NOT NULL,
    updated_at              TEXT NOT NULL,
    sending_claim           INTEGER,
    review_required_at      TEXT,
    review_reason           TEXT
);
INSERT INTO outbound_document_new
    SELECT id, key, channel, kind, request_id, recipient, file_name, content,
           CASE WHEN status = 'sending' AND review_required_at IS NOT NULL THEN 'review_required'
                ELSE status END,
           attempts, document_identifier, upp_identifier, upp, upd, upd_document_id, sent_at,
           delivered_at, error, created_at, updated_at, sending_claim, review_required_at,
           review_reason
    FROM outbound_document;
-- Ids are never reused: the new table goes on from where the old one's counter stood.
UPDATE sqlite_sequence SET seq = (SELECT seq FROM sqlite_sequence WHERE name = 'outbound_document')
    WHERE name = 'outbound_document_new'
      AND EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'outbound_document');
DROP TABLE outbound_document;
ALTER TABLE outbound_document_new RENAME TO outbound_document;
