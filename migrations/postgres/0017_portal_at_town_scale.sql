-- The portal's pages at town scale (issue 16). Keep in step with the other backend.
--
-- The views used to compute every account's balances and every party's access, and then
-- keep one viewer's rows. Now they start from the viewer (an index lookup per step), and
-- read figures that a register run computes in its own transaction (src/store/registers/
-- balances.rs): registers change only when a file is applied and are read thousands of
-- times in between. What depends on the date (overdue, the validity of representations)
-- is still judged at the read, against CURRENT_DATE. docs/schema.md, "How the views are
-- computed".

-- The views of 0006 and 0007 go; they come back below over the new tables.
-- PostgreSQL refuses to drop a view another depends on: the views replaced here and every
-- view that depends on them are kept (definition and grants, as 0009 does) and dropped;
-- ours are created new below, and
-- the others (a view an office made on top of ours) come back from their own definitions,
-- with every grant, at the end.
CREATE TEMP TABLE eurzad_0017_views ON COMMIT DROP AS
    WITH RECURSIVE replaced(oid) AS (
        SELECT c.oid FROM pg_class c
        WHERE c.relkind = 'v' AND c.relnamespace = current_schema()::regnamespace
          AND c.relname IN ('portal_case_letters', 'portal_cases', 'portal_alcohol_permits', 'portal_leases',
                            'portal_liabilities', 'portal_installments', 'portal_payments',
                            'reg_installment_status', 'portal_visible_accounts', 'reg_account_scope',
                            'reg_account_party', 'portal_party_access')
        UNION
        SELECT r.ev_class FROM pg_depend d
        JOIN pg_rewrite r ON r.oid = d.objid
        JOIN replaced x ON d.refobjid = x.oid
        WHERE d.classid = 'pg_rewrite'::regclass AND r.ev_class <> x.oid)
    SELECT c.oid, c.relname::TEXT AS name, pg_get_viewdef(c.oid) AS def
    FROM pg_class c JOIN replaced USING (oid);
CREATE TEMP TABLE eurzad_0017_grants ON COMMIT DROP AS
    SELECT c.relname::TEXT AS name,
           format('GRANT %s ON %I TO %s', a.privilege_type, c.relname,
                  CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END) AS statement
    FROM pg_class c JOIN eurzad_0017_views v ON v.oid = c.oid, aclexplode(c.relacl) a
    WHERE a.grantee <> c.relowner;
DO $$
DECLARE
    v RECORD;
BEGIN
    -- CASCADE drops only views of the list above: it holds every view that depends on one.
    FOR v IN SELECT name FROM eurzad_0017_views ORDER BY oid DESC LOOP
        EXECUTE format('DROP VIEW IF EXISTS %I CASCADE', v.name);
    END LOOP;
END $$;

-- Assessments: decisions, payment orders and declarations that set a tax (art. 21, 47).
CREATE TABLE reg_assessment (
    id              TEXT COLLATE "C" PRIMARY KEY,
    account_id      TEXT COLLATE "C" NOT NULL,
    kind            TEXT NOT NULL,
    number          TEXT NOT NULL,
    issued_on       DATE NOT NULL,
    year            BIGINT NOT NULL,
    total_gr        BIGINT NOT NULL,
    delivered_on    DATE,
    row_hash        BIGINT NOT NULL
);
CREATE INDEX reg_assessment_account ON reg_assessment (account_id);

-- The components of an assessment: what is taxed, the base, the rate and the amount. The
-- base and the rate are in ten-thousandths (`base_e4` 12345 is 1.2345 ha); the amount is
-- base × rate rounded to whole złoty (art. 63), in grosze.
CREATE TABLE reg_assessment_component (
    id                      TEXT COLLATE "C" PRIMARY KEY,
    assessment_id           TEXT COLLATE "C" NOT NULL,
    subject                 TEXT NOT NULL,
    description             TEXT,
    registration            TEXT,
    permissible_weight_kg   BIGINT,
    base_unit               TEXT NOT NULL,
    base_e4                 BIGINT NOT NULL,
    rate_e4                 BIGINT NOT NULL,
    amount_gr               BIGINT NOT NULL,
    row_hash                BIGINT NOT NULL
);
CREATE INDEX reg_assessment_component_assessment ON reg_assessment_component (assessment_id);

CREATE TRIGGER reg_assessment_digest_guard AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON reg_assessment
    FOR EACH STATEMENT EXECUTE FUNCTION register_digest_guard('assessments');
CREATE TRIGGER reg_assessment_component_digest_guard AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON reg_assessment_component
    FOR EACH STATEMENT EXECUTE FUNCTION register_digest_guard('assessment_components');

-- What the views look up from the viewer.
CREATE INDEX reg_party_regon ON reg_party (regon);
CREATE INDEX reg_obligor_party ON reg_obligor (party_id);
CREATE INDEX reg_case_party ON reg_case (party_id);
CREATE INDEX reg_alcohol_permit_party ON reg_alcohol_permit (party_id);
CREATE INDEX reg_lease_party ON reg_lease (party_id);

CREATE INDEX representation_agent ON representation (agent_account_id);

-- Derived by register runs (src/store/registers/balances.rs), never by hand.
-- Each party under each identifier a representation may name it by (PESEL, NIP, REGON).
CREATE TABLE reg_party_key (
    key_type        TEXT NOT NULL,
    key             TEXT NOT NULL,
    party_id        TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (key_type, key, party_id)
);
INSERT INTO reg_party_key (key_type, key, party_id)
    SELECT 'PESEL', pesel, id FROM reg_party WHERE pesel IS NOT NULL
    UNION ALL SELECT 'NIP', nip, id FROM reg_party WHERE nip IS NOT NULL
    UNION ALL SELECT 'REGON', regon, id FROM reg_party WHERE regon IS NOT NULL;

-- Every party liable on an account (its main party and its co-obligors), with the scope the
-- account's data belongs to: taxes or fees.
CREATE TABLE reg_account_party (
    party_id        TEXT COLLATE "C" NOT NULL,
    account_id      TEXT COLLATE "C" NOT NULL,
    scope           TEXT NOT NULL,
    PRIMARY KEY (party_id, account_id)
);

-- Per account and year: the figures of portal_liabilities.
CREATE TABLE reg_account_year (
    account_id      TEXT COLLATE "C" NOT NULL,
    year            BIGINT NOT NULL,
    charged_gr      BIGINT NOT NULL,
    paid_gr         BIGINT NOT NULL,
    due_gr          BIGINT NOT NULL,
    PRIMARY KEY (account_id, year)
);

-- What installments got from the payments that name none, allocated to the earliest-due
-- arrears (art. 62); rows only where something was allocated.
CREATE TABLE reg_installment_allocation (
    installment_id  TEXT COLLATE "C" PRIMARY KEY,
    account_id      TEXT COLLATE "C" NOT NULL,
    allocated_gr    BIGINT NOT NULL
);

-- The one visibility rule (docs/schema.md), as before: a person sees their own data (their
-- PESEL) in every scope; an agent sees a principal's data in the scopes of an active, valid
-- representation (portal_representations), the principal matched by the identifier the
-- representation names (reg_party_key). Each branch is an index lookup from the viewer.
CREATE VIEW portal_party_access AS
    SELECT a.id AS viewer_account_id, p.id AS party_id, s.column1 AS scope, 'own' AS access
    FROM account a
    JOIN reg_party p ON p.pesel = a.pesel
    CROSS JOIN (VALUES ('podatki'), ('oplaty'), ('sprawy'), ('korespondencja'), ('rejestry'),
                       ('platnosci')) s
    WHERE a.status = 'active'
    UNION ALL
    SELECT r.agent_account_id, k.party_id, r.scope, 'representation'
    FROM portal_representations r
    JOIN reg_party_key k ON k.key_type = r.principal_id_type AND k.key = r.principal_id;

-- The accounts a viewer may see, once per (viewer, account) however many ways.
CREATE VIEW portal_visible_accounts AS
    SELECT DISTINCT x.viewer_account_id, ap.account_id
    FROM portal_party_access x
    JOIN reg_account_party ap ON ap.party_id = x.party_id AND ap.scope = x.scope;

-- Each installment with what was paid on it: by the payments that name it (added up here,
-- from the ledger's index on installment_id) and by those that name none (allocated by the
-- register run). Paid above its amount, an installment shows what was paid and nothing
-- outstanding.
CREATE VIEW reg_installment_status AS
    SELECT s.installment_id, s.account_id, s.year, s.number, s.due_date, s.amount_gr, s.paid_gr,
           s.allocated_gr,
           CASE WHEN s.amount_gr > s.paid_gr THEN s.amount_gr - s.paid_gr ELSE 0 END AS outstanding_gr
    FROM (SELECT i.id AS installment_id, i.account_id, i.year, i.number, i.due_date, i.amount_gr,
                 CAST(COALESCE((SELECT SUM(l.amount_gr) FROM reg_ledger l
                                WHERE l.installment_id = i.id
                                  AND l.entry_type IN ('payment', 'overpayment_credit')), 0)
                      + COALESCE(al.allocated_gr, 0) AS BIGINT) AS paid_gr,
                 COALESCE(al.allocated_gr, 0) AS allocated_gr
          FROM reg_installment i
          LEFT JOIN reg_installment_allocation al ON al.installment_id = i.id) s;

CREATE VIEW portal_liabilities AS
    SELECT v.viewer_account_id, a.id AS account_id, a.kind, a.nrb, y.year,
           y.charged_gr, y.paid_gr, y.due_gr,
           CASE WHEN EXISTS (SELECT 1 FROM reg_installment_status s
                             WHERE s.account_id = y.account_id AND s.year = y.year
                               AND s.outstanding_gr > 0 AND s.due_date < CURRENT_DATE)
                THEN 1 ELSE 0 END AS overdue,
           a.party_id, p.name AS party_name
    FROM portal_visible_accounts v
    JOIN reg_account a ON a.id = v.account_id
    JOIN reg_account_year y ON y.account_id = v.account_id
    LEFT JOIN reg_party p ON p.id = a.party_id;

CREATE VIEW portal_installments AS
    SELECT v.viewer_account_id, s.account_id, s.installment_id, s.year, s.number, s.due_date,
           s.amount_gr, s.paid_gr, s.outstanding_gr,
           CASE WHEN s.outstanding_gr > 0 AND s.due_date < CURRENT_DATE THEN 1 ELSE 0 END AS overdue,
           s.allocated_gr, a.party_id, p.name AS party_name
    FROM portal_visible_accounts v
    JOIN reg_installment_status s ON s.account_id = v.account_id
    JOIN reg_account a ON a.id = v.account_id
    LEFT JOIN reg_party p ON p.id = a.party_id;

CREATE VIEW portal_payments AS
    SELECT v.viewer_account_id, l.account_id, l.id AS payment_id, l.booking_date, l.value_date,
           l.amount_gr, l.installment_id, i.due_date AS installment_due_date,
           i.number AS installment_number, a.party_id, p.name AS party_name
    FROM portal_visible_accounts v
    JOIN reg_ledger l ON l.account_id = v.account_id AND l.entry_type = 'payment'
    JOIN reg_account a ON a.id = v.account_id
    LEFT JOIN reg_installment i ON i.id = l.installment_id
    LEFT JOIN reg_party p ON p.id = a.party_id;

CREATE VIEW portal_assessments AS
    SELECT v.viewer_account_id, s.account_id, s.id AS assessment_id, s.kind, s.number,
           s.issued_on, s.year, s.total_gr, s.delivered_on, a.kind AS account_kind,
           a.party_id, p.name AS party_name
    FROM portal_visible_accounts v
    JOIN reg_assessment s ON s.account_id = v.account_id
    JOIN reg_account a ON a.id = v.account_id
    LEFT JOIN reg_party p ON p.id = a.party_id;

CREATE VIEW portal_tax_components AS
    SELECT v.viewer_account_id, s.account_id, s.id AS assessment_id, s.year,
           c.id AS component_id, c.subject, c.description, c.registration,
           c.permissible_weight_kg, c.base_unit, c.base_e4, c.rate_e4, c.amount_gr
    FROM portal_visible_accounts v
    JOIN reg_assessment s ON s.account_id = v.account_id
    JOIN reg_assessment_component c ON c.assessment_id = s.id;

CREATE VIEW portal_cases AS
    SELECT x.viewer_account_id, c.id AS case_id, c.reference, c.title, c.status, c.opened_on, c.closed_on
    FROM portal_party_access x JOIN reg_case c ON c.party_id = x.party_id
    WHERE x.scope = 'sprawy';

CREATE VIEW portal_case_letters AS
    SELECT c.viewer_account_id, l.case_id, c.reference, l.id AS letter_id, l.letter_date,
           l.direction, l.title
    FROM portal_cases c
    JOIN reg_case_letter l ON l.case_id = c.case_id;

CREATE VIEW portal_alcohol_permits AS
    SELECT x.viewer_account_id, p.id AS permit_id, p.number, p.category, p.premises, p.valid_from, p.valid_to
    FROM portal_party_access x JOIN reg_alcohol_permit p ON p.party_id = x.party_id
    WHERE x.scope = 'rejestry';

CREATE VIEW portal_leases AS
    SELECT x.viewer_account_id, l.id AS lease_id, l.parcel, l.area_m2, l.rent_gr, l.period_from, l.period_to
    FROM portal_party_access x JOIN reg_lease l ON l.party_id = x.party_id
    WHERE x.scope = 'rejestry';


-- The views that were not ours, and every grant, back (PostgreSQL: see the top).
DO $$
DECLARE
    v RECORD;
BEGIN
    -- (reg_account_scope, a view of 0006 the new ones do not need, stays gone.)
    FOR v IN SELECT name, def FROM eurzad_0017_views
             WHERE to_regclass(quote_ident(name)) IS NULL AND name <> 'reg_account_scope' ORDER BY oid LOOP
        EXECUTE format('CREATE VIEW %I AS %s', v.name, v.def);
    END LOOP;
    FOR v IN SELECT statement FROM eurzad_0017_grants
             WHERE to_regclass(quote_ident(name)) IS NOT NULL LOOP
        EXECUTE v.statement;
    END LOOP;
END $$;

