-- portal_liabilities adds up the viewer's accounts' ledger rows when it is read, instead of
-- reading reg_account_year, which the register run kept (docs/schema.md, "How the views are
-- computed"). Keep in step with the other backend.
--
-- A viewer's accounts have a few dozen ledger rows, found by the ledger's index on
-- account_id: adding them up costs a read about 0.02 ms; keeping the sums cost a first
-- ledger sync of 1,000,000 rows about 0.5 s (benches/sync.rs).
--
-- SQLite has no LATERAL join. Its table-valued json_each() takes arguments from the tables
-- before it, so it serves as one: per account, one correlated subquery adds up the years
-- and returns them as a JSON array of [year, charged, paid], and json_each() makes each
-- element a row. The figures stay integers (JSON keeps them exact).
--
-- What each entry type counts as is docs/import-formats.md, "Ledger entry types"; the
-- oracle test (tests/portal_oracle.rs) holds both backends to the same rows.
DROP VIEW portal_liabilities;
CREATE VIEW portal_liabilities AS
    SELECT v.viewer_account_id, a.id AS account_id, a.kind, a.nrb,
           CAST(y.value ->> 0 AS INTEGER) AS year,
           CAST(y.value ->> 1 AS INTEGER) AS charged_gr,
           CAST(y.value ->> 2 AS INTEGER) AS paid_gr,
           CAST((y.value ->> 1) - (y.value ->> 2) AS INTEGER) AS due_gr,
           CASE WHEN EXISTS (SELECT 1 FROM reg_installment_status s
                             WHERE s.account_id = a.id AND s.year = y.value ->> 0
                               AND s.outstanding_gr > 0 AND s.due_date < CURRENT_DATE)
                THEN 1 ELSE 0 END AS overdue,
           a.party_id, p.name AS party_name
    FROM portal_visible_accounts v
    JOIN reg_account a ON a.id = v.account_id
    JOIN json_each((
        SELECT json_group_array(json_array(t.year, t.charged_gr, t.paid_gr))
        FROM (SELECT e.year, SUM(e.charged_gr) AS charged_gr, SUM(e.paid_gr) AS paid_gr
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
              GROUP BY e.year) t)) y
    LEFT JOIN reg_party p ON p.id = a.party_id;

DROP TABLE reg_account_year;
