-- e-Doręczenia (issue 17): citizens' messages to the office's e-Doręczenia address are
-- stored in inbound_document beside ePUAP's documents, and the verify step handles both
-- alike. The channel says which; ePUAP's columns stay as they were (for an e-Doręczenia
-- message: box_address, nazwa_skrytki and adres_skrytki hold the office's ADE,
-- podmiot_identyfikator and adres_odpowiedzi the sender's ADE, data_nadania the receipt in
-- law, skrot is empty). Keep in step with migrations/postgres/0021_inbound_channel.sql.
ALTER TABLE inbound_document ADD COLUMN channel TEXT NOT NULL DEFAULT 'epuap'
    CHECK (channel IN ('epuap', 'edoreczenia'));
-- e-Doręczenia: the operator's message id, the sender's ADE, the subject and the text body.
ALTER TABLE inbound_document ADD COLUMN channel_message_id TEXT;
ALTER TABLE inbound_document ADD COLUMN sender_address TEXT;
ALTER TABLE inbound_document ADD COLUMN subject TEXT;
ALTER TABLE inbound_document ADD COLUMN text_body TEXT;

-- A message's files other than the document itself (inbound_document.content), as received.
CREATE TABLE inbound_attachment (
    document_id  INTEGER NOT NULL REFERENCES inbound_document (id),
    ordinal      INTEGER NOT NULL,
    file_name    TEXT NOT NULL,
    content_type TEXT NOT NULL,
    content      BLOB NOT NULL,
    sha256       TEXT NOT NULL,
    PRIMARY KEY (document_id, ordinal)
);
