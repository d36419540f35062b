-- Room on each page of the two large registers for a new version of every row (HOT
-- updates). A sync that changes amounts (a back office that recomputes a year, every row of
-- the ledger) updates rows in place: with full pages each new version went to another page
-- and into all three of the table's indexes, and a reader's index lookup during the sync
-- walked both versions. With half of each page free, the new version stays on its page and
-- out of the indexes (none of the indexed columns changes), and the old one is pruned at
-- the next visit. At 65,000 inhabitants a full ledger sync that rewrites every row took
-- 1.8–2.0 s instead of 3.6–4.2 s, the table 76 MB after a dozen such syncs against 188 MB
-- after four (docs/benchmarks.md). Pages written before this migration stay full until
-- the table is rewritten (`VACUUM FULL reg_ledger` in a quiet hour).
ALTER TABLE reg_ledger SET (fillfactor = 50);
ALTER TABLE reg_installment SET (fillfactor = 50);
