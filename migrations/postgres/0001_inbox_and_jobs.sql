-- The ePUAP inbox and the durable job queue (PostgreSQL).
-- Keep in step with migrations/sqlite/0001_inbox_and_jobs.sql: same tables, same columns.

CREATE TABLE inbound_document (
    id                     BIGSERIAL PRIMARY KEY,
    -- SHA-256 over (box address, dataNadania, sender identifier, content SHA-256): dedupes a
    -- document pulled twice after a crash between storing and confirming it.
    identity_key           TEXT    NOT NULL UNIQUE,
    -- The configured box (epuap.boxes[].adres) the document was pulled from.
    box_address            TEXT    NOT NULL,
    -- danePodmiotu
    podmiot_identyfikator  TEXT    NOT NULL,
    podmiot_typ_osoby      TEXT    NOT NULL,
    podmiot_imie_skrot     TEXT,
    podmiot_nazwisko_nazwa TEXT,
    podmiot_nip            TEXT,
    podmiot_pesel          TEXT,
    podmiot_regon          TEXT,
    podmiot_zgoda          BOOLEAN NOT NULL,
    -- daneNadawcy
    nadawca_uzytkownik     TEXT,
    nadawca_system         TEXT,
    -- dataNadania exactly as ePUAP sent it (xsd:dateTime, the offset is not always given)
    data_nadania           TEXT    NOT NULL,
    nazwa_skrytki          TEXT    NOT NULL,
    adres_skrytki          TEXT    NOT NULL,
    adres_odpowiedzi       TEXT,
    czy_testowe            BOOLEAN NOT NULL,
    dane_dodatkowe         BYTEA   NOT NULL,
    -- dokument
    nazwa_pliku            TEXT    NOT NULL,
    typ_pliku              TEXT,
    content                BYTEA   NOT NULL,
    content_sha256         TEXT    NOT NULL,
    -- the potwierdzOdebranie digest for this document (base64, algorithm per epuap.skrot)
    skrot                  TEXT    NOT NULL,
    received_at            TIMESTAMPTZ    NOT NULL,
    -- how many times pobierzNastepny delivered it (more than 1 after a lost confirmation)
    pull_count             BIGINT  NOT NULL DEFAULT 1,
    -- set once ePUAP confirmed the receipt ('confirmed'), or once the queue head moved past
    -- it, which proves an earlier confirmation whose answer was lost ('inferred')
    confirmed_at           TIMESTAMPTZ,
    confirmation           TEXT CHECK (confirmation IN ('confirmed', 'inferred')),
    -- set by the classify job: the root element of an XML document (the form type)
    form_namespace         TEXT,
    form_root              TEXT,
    classified_at          TIMESTAMPTZ,
    classification_error   TEXT
);

CREATE INDEX inbound_document_unconfirmed ON inbound_document (box_address) WHERE confirmed_at IS NULL;

-- The durable job queue. A job is keyed by (kind, key): enqueueing twice is a no-op, and
-- every step is idempotent, so a crash and a retry give the same database.
CREATE TABLE job (
    id           BIGSERIAL PRIMARY KEY,
    kind         TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    document_id  BIGINT  REFERENCES inbound_document (id),
    status       TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'done', 'failed')),
    attempts     BIGINT  NOT NULL DEFAULT 0,
    run_after    TIMESTAMPTZ    NOT NULL,
    locked_until TIMESTAMPTZ,
    last_error   TEXT,
    created_at   TIMESTAMPTZ    NOT NULL,
    updated_at   TIMESTAMPTZ    NOT NULL,
    UNIQUE (kind, key)
);

CREATE INDEX job_runnable ON job (status, run_after);
