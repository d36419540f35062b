-- A ledger account holds tens of entries a year, so the account alone finds them: the year
-- in the key narrowed nothing worth narrowing, and it made the index the dearest of the
-- three to build on a first load (its ties within an account were compared column by
-- column). The per-year sums read the account's few rows and filter them.
DROP INDEX reg_ledger_account;
CREATE INDEX reg_ledger_account ON reg_ledger (account_id);
