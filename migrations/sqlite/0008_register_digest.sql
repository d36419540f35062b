-- The row hashes of a register in the order of the last full-snapshot file applied to it,
-- written by that run in its transaction. The next run compares its file with them
-- without reading the table. Valid only while `run_id` is the register's latest done run;
-- an incremental run deletes it. Deleting a row here only makes the next run read the
-- table instead.
CREATE TABLE register_digest (
    register    TEXT PRIMARY KEY,
    run_id      INTEGER NOT NULL,
    hashes      BLOB NOT NULL
);
