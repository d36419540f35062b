-- A stored document is written once. What ePUAP did with it afterwards (how many times it
-- delivered it, and its confirmation) is kept beside it, in a small row of its own. On
-- PostgreSQL an UPDATE leaves the TOASTed content where it is, but SQLite rewrites a whole
-- row, content included, and both backends keep the same tables.
-- Keep in step with migrations/sqlite/0013_inbound_delivery.sql.

CREATE TABLE inbound_delivery (
    document_id   BIGINT  PRIMARY KEY REFERENCES inbound_document (id),
    -- the document's box (inbound_document.box_address), for the unconfirmed index
    box_address   TEXT    NOT NULL,
    -- how many times pobierzNastepny delivered it (more than 1 after a lost confirmation)
    pull_count    BIGINT  NOT NULL DEFAULT 1,
    -- set once ePUAP confirmed the receipt ('confirmed'), or once the queue head moved past
    -- it, which proves an earlier confirmation whose answer was lost ('inferred')
    confirmed_at  TIMESTAMPTZ,
    confirmation  TEXT CHECK (confirmation IN ('confirmed', 'inferred'))
);

INSERT INTO inbound_delivery (document_id, box_address, pull_count, confirmed_at, confirmation)
    SELECT id, box_address, pull_count, confirmed_at, confirmation FROM inbound_document;

CREATE INDEX inbound_delivery_unconfirmed ON inbound_delivery (box_address) WHERE confirmed_at IS NULL;

DROP INDEX inbound_document_unconfirmed;
ALTER TABLE inbound_document DROP COLUMN confirmation;
ALTER TABLE inbound_document DROP COLUMN confirmed_at;
ALTER TABLE inbound_document DROP COLUMN pull_count;
