-- portal_liabilities adds up the viewer's accounts' ledger rows when it is read, instead of
-- reading reg_account_year, which the register run kept (docs/schema.md, "How the views are
-- computed"). Keep in step with the other backend.
--
-- A viewer's accounts have a few dozen ledger rows, found by the ledger's index on
-- account_id (a LATERAL join per account). Keeping the sums cost a first ledger sync of
-- 1,000,000 rows 0.9 s of its 2.9 s (benches/sync.rs).
--
-- Same columns, names and types: CREATE OR REPLACE keeps the office's own views on it.
-- What each entry type counts as is docs/import-formats.md, "Ledger entry types"; the
-- oracle test (tests/portal_oracle.rs) holds both backends to the same rows.
CREATE OR REPLACE VIEW portal_liabilities AS
    SELECT v.viewer_account_id, a.id AS account_id, a.kind, a.nrb, y.year,
           y.charged_gr, y.paid_gr, y.charged_gr - y.paid_gr AS due_gr,
           CASE WHEN EXISTS (SELECT 1 FROM reg_installment_status s
                             WHERE s.account_id = a.id AND s.year = y.year
                               AND s.outstanding_gr > 0 AND s.due_date < CURRENT_DATE)
                THEN 1 ELSE 0 END AS overdue,
           a.party_id, p.name AS party_name
    FROM portal_visible_accounts v
    JOIN reg_account a ON a.id = v.account_id
    CROSS JOIN LATERAL (
        SELECT e.year, CAST(SUM(e.charged_gr) AS BIGINT) AS charged_gr,
               CAST(SUM(e.paid_gr) AS BIGINT) AS paid_gr
        FROM (SELECT l.year,
                     CASE l.entry_type WHEN 'charge' THEN l.amount_gr WHEN 'correction' THEN l.amount_gr
                          WHEN 'interest' THEN l.amount_gr WHEN 'reminder_cost' THEN l.amount_gr
                          WHEN 'write_off' THEN -l.amount_gr ELSE 0 END AS charged_gr,
                     CASE l.entry_type WHEN 'payment' THEN l.amount_gr WHEN 'overpayment_credit' THEN l.amount_gr
                          WHEN 'overpayment_refund' THEN -l.amount_gr ELSE 0 END AS paid_gr
              FROM reg_ledger l WHERE l.account_id = a.id
              -- a year with installments and no entry yet: nothing charged or paid
              UNION ALL
              SELECT i.year, 0, 0 FROM reg_installment i WHERE i.account_id = a.id) e
        GROUP BY e.year) y
    LEFT JOIN reg_party p ON p.id = a.party_id;

DROP TABLE reg_account_year;
