-- Access requests become accounts (issue 4): requests, accounts, representations, the
-- office's outbound letters with their UPP/UPD, mail to officials, correspondence, audit.
-- Keep in step with the other backend's 0005: same tables, same columns, same views.

-- A portal account, bound to the applicant's ePUAP identity and PESEL.
CREATE TABLE account (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    pesel           TEXT NOT NULL UNIQUE,
    -- the ePUAP user identifier (daneNadawcy.uzytkownik, or the trusted profile's account)
    epuap_user_id   TEXT,
    given_name      TEXT NOT NULL,
    surname         TEXT NOT NULL,
    email           TEXT,
    status          TEXT NOT NULL CHECK (status IN ('active', 'blocked')),
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);

-- One per inbound access request; the state machine of docs/provisioning.md.
CREATE TABLE access_request (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    document_id     INTEGER NOT NULL UNIQUE REFERENCES inbound_document (id),
    received_at     TEXT NOT NULL,
    deadline_at     TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('received', 'awaiting_official', 'approved',
                        'rejected', 'replied', 'delivered')),
    applicant_pesel TEXT,
    applicant_name  TEXT,
    applicant_email TEXT,
    -- why it waits for an official, or why it was rejected (Polish, shown to officials)
    reason          TEXT,
    decided_by      TEXT,
    decided_at      TEXT,
    decision_note   TEXT,
    account_id      INTEGER REFERENCES account (id),
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX access_request_open ON access_request (status, deadline_at);

-- Who may see whose data: the agent (an account) acts for the principal within a scope.
CREATE TABLE representation (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_account_id    INTEGER NOT NULL REFERENCES account (id),
    principal_kind      TEXT NOT NULL CHECK (principal_kind IN ('F', 'P')),
    principal_name      TEXT NOT NULL,
    principal_id_type   TEXT NOT NULL CHECK (principal_id_type IN ('PESEL', 'NIP', 'REGON')),
    principal_id        TEXT NOT NULL,
    basis               TEXT NOT NULL,
    valid_from          TEXT NOT NULL,
    valid_to            TEXT,
    status              TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
    source_request_id   INTEGER NOT NULL REFERENCES access_request (id),
    -- the document that proves it (the access request carrying the authorization)
    source_document_id  INTEGER NOT NULL REFERENCES inbound_document (id),
    -- 'eurzad (automatycznie)' or the official who approved
    verified_by         TEXT NOT NULL,
    verified_at         TEXT NOT NULL,
    UNIQUE (agent_account_id, principal_id_type, principal_id)
);

-- podatki | oplaty | sprawy | korespondencja | rejestry | platnosci
CREATE TABLE representation_scope (
    representation_id   INTEGER NOT NULL REFERENCES representation (id),
    scope               TEXT NOT NULL CHECK (scope IN ('podatki', 'oplaty', 'sprawy',
                            'korespondencja', 'rejestry', 'platnosci')),
    PRIMARY KEY (representation_id, scope)
);

-- What an access request asks for, and whether the proof holds (shown to officials).
CREATE TABLE requested_representation (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id          INTEGER NOT NULL REFERENCES access_request (id),
    position            INTEGER NOT NULL,
    principal_kind      TEXT NOT NULL,
    principal_name      TEXT NOT NULL,
    principal_id_type   TEXT NOT NULL,
    principal_id        TEXT NOT NULL,
    scope               TEXT NOT NULL,
    basis               TEXT NOT NULL,
    attachment          TEXT,
    valid_from          TEXT,
    valid_to            TEXT,
    proven              BOOLEAN NOT NULL,
    proof               TEXT NOT NULL,
    UNIQUE (request_id, position)
);

-- The office's letters. The intent is recorded before the channel is called: docs/provisioning.md.
CREATE TABLE outbound_document (
    id                      INTEGER PRIMARY KEY AUTOINCREMENT,
    -- e.g. 'reply:<access_request.id>': one letter per purpose
    key                     TEXT NOT NULL UNIQUE,
    channel                 TEXT NOT NULL,
    kind                    TEXT NOT NULL,
    request_id              INTEGER REFERENCES access_request (id),
    recipient               TEXT NOT NULL,
    file_name               TEXT NOT NULL,
    content                 BLOB NOT NULL,
    status                  TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'delivered', 'failed')),
    -- calls of the channel; more than one after an outcome lost in a crash (a possible duplicate)
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
    updated_at              TEXT NOT NULL
);

-- Mail to officials, recorded before it is sent; key makes each one happen once.
CREATE TABLE notification (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    key         TEXT NOT NULL UNIQUE,
    recipients  TEXT NOT NULL,
    subject     TEXT NOT NULL,
    body        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'sent')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    error       TEXT,
    created_at  TEXT NOT NULL,
    sent_at     TEXT
);

-- Letters from citizens and companies other than access requests.
CREATE TABLE correspondence (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    document_id         INTEGER NOT NULL UNIQUE REFERENCES inbound_document (id),
    -- the account of the party when the letter was recorded (the views match by party)
    account_id          INTEGER REFERENCES account (id),
    party_id_type       TEXT,
    party_id            TEXT,
    form_type           TEXT NOT NULL,
    title               TEXT NOT NULL,
    body                TEXT NOT NULL,
    sender              TEXT,
    box_address         TEXT NOT NULL,
    department          TEXT,
    received_at         TEXT NOT NULL
);

-- Every decision and every change of who may see what: who, when, why.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    detail      TEXT
);

-- The portal's views (docs/schema.md).
CREATE VIEW portal_accounts AS
    SELECT id AS account_id, pesel, epuap_user_id, given_name, surname, email, status, created_at
    FROM account;

-- Only representations that are active, within their validity, and of an active account.
CREATE VIEW portal_representations AS
    SELECT r.id AS representation_id, r.agent_account_id, r.principal_kind, r.principal_name,
           r.principal_id_type, r.principal_id, s.scope, r.basis, r.valid_from, r.valid_to
    FROM representation r
    JOIN representation_scope s ON s.representation_id = r.id
    JOIN account a ON a.id = r.agent_account_id
    WHERE r.status = 'active' AND a.status = 'active'
      AND r.valid_from <= CURRENT_DATE
      AND (r.valid_to IS NULL OR r.valid_to >= CURRENT_DATE);

-- One row per (viewer, letter): the letters whose party is the viewer (by PESEL, so letters
-- that came before the account count too), and the letters of the parties the viewer
-- represents with the scope 'korespondencja'.
CREATE VIEW portal_correspondence AS
    SELECT a.id AS viewer_account_id, 'own' AS access, c.id AS correspondence_id,
           c.party_id_type, c.party_id, c.form_type, c.title, c.body, c.sender, c.received_at
    FROM correspondence c
    JOIN account a ON c.party_id_type = 'PESEL' AND a.pesel = c.party_id AND a.status = 'active'
    UNION ALL
    SELECT p.agent_account_id AS viewer_account_id, 'representation' AS access, c.id,
           c.party_id_type, c.party_id, c.form_type, c.title, c.body, c.sender, c.received_at
    FROM correspondence c
    JOIN portal_representations p
      ON p.scope = 'korespondencja' AND p.principal_id_type = c.party_id_type
     AND p.principal_id = c.party_id;
