-- PostgreSQL only (its 0024 leaves room on the ledger's and installments' pages for
-- in-place updates); SQLite has no fill factor. Kept so both databases count the same
-- migrations.
SELECT 1;
