-- PostgreSQL's 0009 declares register keys COLLATE "C". SQLite already compares them byte by
-- byte (its default collation is BINARY), so nothing changes here; the file keeps the two
-- backends' migrations numbered in step.
SELECT 1;
