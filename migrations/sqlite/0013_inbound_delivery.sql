-- A stored document is written once. What ePUAP did with it afterwards (how many times it
-- delivered it, and its confirmation) is kept beside it, in a small row of its own: SQLite
-- rewrites a whole row, content included, on every UPDATE, so marking a 50 MB document
-- confirmed used to write another 50 MB.
-- Keep in step with migrations/postgres/0013_inbound_delivery.sql.
--
-- Upgrading rewrites inbound_document once per dropped column (SQLite's DROP COLUMN copies
-- the table): for a database of several GB, the first start after the upgrade takes minutes.

CREATE TABLE inbound_delivery (
    document_id   INTEGER PRIMARY KEY REFERENCES inbound_document (id),
    -- the document's box (inbound_document.box_address), for the unconfirmed index
    box_address   TEXT    NOT NULL,
    -- how many times pobierzNastepny delivered it (more than 1 after a lost confirmation)
    pull_count    INTEGER NOT NULL DEFAULT 1,
    -- set once ePUAP confirmed the receipt ('confirmed'), or once the queue head moved past
    -- it, which proves an earlier confirmation whose answer was lost ('inferred')
    confirmed_at  TEXT,
    confirmation  TEXT CHECK (confirmation IN ('confirmed', 'inferred'))
);

INSERT INTO inbound_delivery (document_id, box_address, pull_count, confirmed_at, confirmation)
    SELECT id, box_address, pull_count, confirmed_at, confirmation FROM inbound_document;

CREATE INDEX inbound_delivery_unconfirmed ON inbound_delivery (box_address) WHERE confirmed_at IS NULL;

DROP INDEX inbound_document_unconfirmed;
ALTER TABLE inbound_document DROP COLUMN confirmation;
ALTER TABLE inbound_document DROP COLUMN confirmed_at;
ALTER TABLE inbound_document DROP COLUMN pull_count;
