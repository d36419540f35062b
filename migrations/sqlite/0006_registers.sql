-- Registers synced from the back office (issue 5): one table per register, keyed by the
-- back office's id, with the hash of the row as last applied. docs/import-formats.md
-- describes the files; docs/schema.md the views. Keep in step with the other backend.

CREATE TABLE reg_party (
    id          TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    name            TEXT NOT NULL,
    pesel           TEXT,
    nip             TEXT,
    regon           TEXT,
    address         TEXT,
    row_hash    INTEGER NOT NULL
);

CREATE TABLE reg_account (
    id          TEXT PRIMARY KEY,
    party_id        TEXT NOT NULL,
    kind            TEXT NOT NULL,
    nrb             TEXT NOT NULL,
    description     TEXT,
    row_hash    INTEGER NOT NULL
);

CREATE TABLE reg_obligor (
    id          TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL,
    party_id        TEXT NOT NULL,
    role            TEXT NOT NULL,
    row_hash    INTEGER NOT NULL
);

CREATE TABLE reg_installment (
    id          TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL,
    year            INTEGER NOT NULL,
    number          INTEGER NOT NULL,
    due_date        TEXT NOT NULL,
    amount_gr       INTEGER NOT NULL,
    row_hash    INTEGER NOT NULL
);

CREATE TABLE reg_ledger (
    id          TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL,
    year            INTEGER NOT NULL,
    entry_type      TEXT NOT NULL,
    installment_id  TEXT,
    booking_date    TEXT NOT NULL,
    value_date      TEXT,
    amount_gr       INTEGER NOT NULL,
    row_hash    INTEGER NOT NULL
);

CREATE TABLE reg_case (
    id          TEXT PRIMARY KEY,
    party_id        TEXT NOT NULL,
    reference       TEXT NOT NULL,
    title           TEXT NOT NULL,
    status          TEXT NOT NULL,
    opened_on       TEXT NOT NULL,
    closed_on       TEXT,
    row_hash    INTEGER NOT NULL
);

CREATE TABLE reg_alcohol_permit (
    id          TEXT PRIMARY KEY,
    party_id        TEXT NOT NULL,
    number          TEXT NOT NULL,
    category        TEXT NOT NULL,
    premises        TEXT NOT NULL,
    valid_from      TEXT NOT NULL,
    valid_to        TEXT NOT NULL,
    row_hash    INTEGER NOT NULL
);

CREATE TABLE reg_lease (
    id          TEXT PRIMARY KEY,
    party_id        TEXT NOT NULL,
    parcel          TEXT NOT NULL,
    area_m2         INTEGER NOT NULL,
    rent_gr         INTEGER NOT NULL,
    period_from     TEXT NOT NULL,
    period_to       TEXT,
    row_hash    INTEGER NOT NULL
);

CREATE TABLE reg_budget (
    id          TEXT PRIMARY KEY,
    year            INTEGER NOT NULL,
    dzial           TEXT NOT NULL,
    rozdzial        TEXT NOT NULL,
    paragraf        TEXT NOT NULL,
    name            TEXT NOT NULL,
    plan_gr         INTEGER NOT NULL,
    execution_gr    INTEGER NOT NULL,
    row_hash    INTEGER NOT NULL
);

CREATE TABLE reg_property (
    id          TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    address         TEXT,
    parcel          TEXT,
    area_m2         INTEGER,
    purpose         TEXT,
    row_hash    INTEGER NOT NULL
);

CREATE INDEX reg_party_pesel ON reg_party (pesel);
CREATE INDEX reg_party_nip ON reg_party (nip);
CREATE INDEX reg_account_party_idx ON reg_account (party_id);
CREATE INDEX reg_obligor_account ON reg_obligor (account_id);
CREATE INDEX reg_installment_account ON reg_installment (account_id);
CREATE INDEX reg_ledger_account ON reg_ledger (account_id, year);
CREATE INDEX reg_ledger_installment ON reg_ledger (installment_id);

-- One row per sync of a register: what it did, or why it failed.
CREATE TABLE sync_run (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    register    TEXT NOT NULL,
    source      TEXT NOT NULL,
    mode        TEXT NOT NULL CHECK (mode IN ('full', 'incremental')),
    status      TEXT NOT NULL CHECK (status IN ('done', 'failed', 'skipped')),
    started_at  TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    rows_read   INTEGER NOT NULL DEFAULT 0,
    inserted    INTEGER NOT NULL DEFAULT 0,
    updated     INTEGER NOT NULL DEFAULT 0,
    deleted     INTEGER NOT NULL DEFAULT 0,
    unchanged   INTEGER NOT NULL DEFAULT 0,
    error       TEXT
);

-- Files applied, by checksum: the same file is never applied twice.
CREATE TABLE import_file (
    sha256      TEXT PRIMARY KEY,
    register    TEXT NOT NULL,
    file_name   TEXT NOT NULL,
    run_id      INTEGER NOT NULL,
    imported_at TEXT NOT NULL
);

-- A scheduled occurrence, claimed once across every daemon on the database.
CREATE TABLE schedule_claim (
    schedule    TEXT NOT NULL,
    fire_at     TEXT NOT NULL,
    claimed_by  TEXT NOT NULL,
    claimed_at  TEXT NOT NULL,
    PRIMARY KEY (schedule, fire_at)
);

-- The one visibility rule (docs/schema.md): who may see which party's data in which scope.
-- A person sees their own data (their PESEL) in every scope; an agent sees a principal's
-- data in the scopes of an active, valid representation (portal_representations).
CREATE VIEW portal_party_access AS
    SELECT a.id AS viewer_account_id, p.id AS party_id, s.scope, 'own' AS access
    FROM reg_party p
    JOIN account a ON a.status = 'active' AND p.pesel IS NOT NULL AND a.pesel = p.pesel
    CROSS JOIN (SELECT 'podatki' AS scope UNION ALL SELECT 'oplaty' UNION ALL SELECT 'sprawy'
                UNION ALL SELECT 'korespondencja' UNION ALL SELECT 'rejestry'
                UNION ALL SELECT 'platnosci') s
    UNION ALL
    SELECT r.agent_account_id, p.id, r.scope, 'representation'
    FROM portal_representations r
    JOIN reg_party p
      ON (r.principal_id_type = 'PESEL' AND p.pesel = r.principal_id)
      OR (r.principal_id_type = 'NIP' AND p.nip = r.principal_id)
      OR (r.principal_id_type = 'REGON' AND p.regon = r.principal_id);

-- Every party liable on an account: its main party and its co-obligors.
CREATE VIEW reg_account_party AS
    SELECT id AS account_id, party_id FROM reg_account
    UNION
    SELECT account_id, party_id FROM reg_obligor;

-- The scope an account's data belongs to: taxes, or fees.
CREATE VIEW reg_account_scope AS
    SELECT id AS account_id,
           CASE WHEN kind IN ('property', 'agricultural', 'forest', 'transport', 'joint')
                THEN 'podatki' ELSE 'oplaty' END AS scope
    FROM reg_account;

-- The accounts a viewer may see, once per (viewer, account) however many ways.
CREATE VIEW portal_visible_accounts AS
    SELECT DISTINCT x.viewer_account_id, ap.account_id
    FROM reg_account_party ap
    JOIN reg_account_scope sc ON sc.account_id = ap.account_id
    JOIN portal_party_access x ON x.party_id = ap.party_id AND x.scope = sc.scope;

-- Installments with what was paid on them.
CREATE VIEW reg_installment_status AS
    SELECT i.id AS installment_id, i.account_id, i.year, i.number, i.due_date, i.amount_gr,
           CAST(COALESCE((SELECT SUM(l.amount_gr) FROM reg_ledger l
                     WHERE l.installment_id = i.id AND l.entry_type = 'payment'), 0) AS BIGINT) AS paid_gr
    FROM reg_installment i;

CREATE VIEW portal_installments AS
    SELECT v.viewer_account_id, s.account_id, s.installment_id, s.year, s.number, s.due_date,
           s.amount_gr, s.paid_gr,
           CASE WHEN s.amount_gr > s.paid_gr THEN s.amount_gr - s.paid_gr ELSE 0 END AS outstanding_gr,
           CASE WHEN s.amount_gr > s.paid_gr AND s.due_date < CURRENT_DATE THEN 1 ELSE 0 END AS overdue
    FROM reg_installment_status s
    JOIN portal_visible_accounts v ON v.account_id = s.account_id;

-- Per (viewer, account, year): charges (charges, corrections, interest, reminder costs less
-- write-offs), payments, the amount due, and whether an installment is past due unpaid.
CREATE VIEW portal_liabilities AS
    SELECT v.viewer_account_id, a.id AS account_id, a.kind, a.nrb, y.year,
           CAST(COALESCE((SELECT SUM(CASE WHEN l.entry_type = 'write_off' THEN -l.amount_gr ELSE l.amount_gr END)
                     FROM reg_ledger l WHERE l.account_id = a.id AND l.year = y.year
                       AND l.entry_type IN ('charge', 'correction', 'interest', 'reminder_cost', 'write_off')), 0) AS BIGINT) AS charged_gr,
           CAST(COALESCE((SELECT SUM(l.amount_gr) FROM reg_ledger l WHERE l.account_id = a.id AND l.year = y.year
                       AND l.entry_type = 'payment'), 0) AS BIGINT) AS paid_gr,
           CAST(COALESCE((SELECT SUM(CASE WHEN l.entry_type = 'write_off' THEN -l.amount_gr
                                     WHEN l.entry_type IN ('payment', 'overpayment') THEN -l.amount_gr
                                     ELSE l.amount_gr END)
                     FROM reg_ledger l WHERE l.account_id = a.id AND l.year = y.year), 0) AS BIGINT) AS due_gr,
           CASE WHEN EXISTS (SELECT 1 FROM reg_installment_status s WHERE s.account_id = a.id
                               AND s.year = y.year AND s.amount_gr > s.paid_gr AND s.due_date < CURRENT_DATE)
                THEN 1 ELSE 0 END AS overdue
    FROM reg_account a
    JOIN (SELECT DISTINCT account_id, year FROM reg_ledger
          UNION SELECT DISTINCT account_id, year FROM reg_installment) y ON y.account_id = a.id
    JOIN portal_visible_accounts v ON v.account_id = a.id;

-- Payments, with the installment each covered.
CREATE VIEW portal_payments AS
    SELECT v.viewer_account_id, l.account_id, l.id AS payment_id, l.booking_date, l.value_date,
           l.amount_gr, l.installment_id, i.due_date AS installment_due_date, i.number AS installment_number
    FROM reg_ledger l
    LEFT JOIN reg_installment i ON i.id = l.installment_id
    JOIN portal_visible_accounts v ON v.account_id = l.account_id
    WHERE l.entry_type = 'payment';

CREATE VIEW portal_cases AS
    SELECT x.viewer_account_id, c.id AS case_id, c.reference, c.title, c.status, c.opened_on, c.closed_on
    FROM reg_case c JOIN portal_party_access x ON x.party_id = c.party_id AND x.scope = 'sprawy';

CREATE VIEW portal_alcohol_permits AS
    SELECT x.viewer_account_id, p.id AS permit_id, p.number, p.category, p.premises, p.valid_from, p.valid_to
    FROM reg_alcohol_permit p JOIN portal_party_access x ON x.party_id = p.party_id AND x.scope = 'rejestry';

CREATE VIEW portal_leases AS
    SELECT x.viewer_account_id, l.id AS lease_id, l.parcel, l.area_m2, l.rent_gr, l.period_from, l.period_to
    FROM reg_lease l JOIN portal_party_access x ON x.party_id = l.party_id AND x.scope = 'rejestry';

-- Public: no viewer.
CREATE VIEW portal_budget AS
    SELECT year, dzial, rozdzial, paragraf, name, plan_gr, execution_gr FROM reg_budget;

CREATE VIEW portal_property AS
    SELECT id AS property_id, name, address, parcel, area_m2, purpose FROM reg_property;
