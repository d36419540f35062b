-- A register's digest (0008) describes its table only while nothing but register runs
-- writes the table. Any other write (by hand, or by another tool) deletes the register's
-- digest, so the next run compares its file with the table itself and puts back what was
-- changed. docs/import-formats.md, "How a run is applied".
-- SQLite triggers run per row, so a run does not leave them in place: it drops its table's
-- triggers inside its transaction and creates them again, from these definitions, before
-- it commits.

CREATE TRIGGER reg_party_digest_guard_insert AFTER INSERT ON reg_party
    BEGIN DELETE FROM register_digest WHERE register = 'parties'; END;
CREATE TRIGGER reg_party_digest_guard_update AFTER UPDATE ON reg_party
    BEGIN DELETE FROM register_digest WHERE register = 'parties'; END;
CREATE TRIGGER reg_party_digest_guard_delete AFTER DELETE ON reg_party
    BEGIN DELETE FROM register_digest WHERE register = 'parties'; END;
CREATE TRIGGER reg_account_digest_guard_insert AFTER INSERT ON reg_account
    BEGIN DELETE FROM register_digest WHERE register = 'accounts'; END;
CREATE TRIGGER reg_account_digest_guard_update AFTER UPDATE ON reg_account
    BEGIN DELETE FROM register_digest WHERE register = 'accounts'; END;
CREATE TRIGGER reg_account_digest_guard_delete AFTER DELETE ON reg_account
    BEGIN DELETE FROM register_digest WHERE register = 'accounts'; END;
CREATE TRIGGER reg_obligor_digest_guard_insert AFTER INSERT ON reg_obligor
    BEGIN DELETE FROM register_digest WHERE register = 'obligors'; END;
CREATE TRIGGER reg_obligor_digest_guard_update AFTER UPDATE ON reg_obligor
    BEGIN DELETE FROM register_digest WHERE register = 'obligors'; END;
CREATE TRIGGER reg_obligor_digest_guard_delete AFTER DELETE ON reg_obligor
    BEGIN DELETE FROM register_digest WHERE register = 'obligors'; END;
CREATE TRIGGER reg_installment_digest_guard_insert AFTER INSERT ON reg_installment
    BEGIN DELETE FROM register_digest WHERE register = 'installments'; END;
CREATE TRIGGER reg_installment_digest_guard_update AFTER UPDATE ON reg_installment
    BEGIN DELETE FROM register_digest WHERE register = 'installments'; END;
CREATE TRIGGER reg_installment_digest_guard_delete AFTER DELETE ON reg_installment
    BEGIN DELETE FROM register_digest WHERE register = 'installments'; END;
CREATE TRIGGER reg_ledger_digest_guard_insert AFTER INSERT ON reg_ledger
    BEGIN DELETE FROM register_digest WHERE register = 'ledger'; END;
CREATE TRIGGER reg_ledger_digest_guard_update AFTER UPDATE ON reg_ledger
    BEGIN DELETE FROM register_digest WHERE register = 'ledger'; END;
CREATE TRIGGER reg_ledger_digest_guard_delete AFTER DELETE ON reg_ledger
    BEGIN DELETE FROM register_digest WHERE register = 'ledger'; END;
CREATE TRIGGER reg_case_digest_guard_insert AFTER INSERT ON reg_case
    BEGIN DELETE FROM register_digest WHERE register = 'cases'; END;
CREATE TRIGGER reg_case_digest_guard_update AFTER UPDATE ON reg_case
    BEGIN DELETE FROM register_digest WHERE register = 'cases'; END;
CREATE TRIGGER reg_case_digest_guard_delete AFTER DELETE ON reg_case
    BEGIN DELETE FROM register_digest WHERE register = 'cases'; END;
CREATE TRIGGER reg_case_letter_digest_guard_insert AFTER INSERT ON reg_case_letter
    BEGIN DELETE FROM register_digest WHERE register = 'case_letters'; END;
CREATE TRIGGER reg_case_letter_digest_guard_update AFTER UPDATE ON reg_case_letter
    BEGIN DELETE FROM register_digest WHERE register = 'case_letters'; END;
CREATE TRIGGER reg_case_letter_digest_guard_delete AFTER DELETE ON reg_case_letter
    BEGIN DELETE FROM register_digest WHERE register = 'case_letters'; END;
CREATE TRIGGER reg_alcohol_permit_digest_guard_insert AFTER INSERT ON reg_alcohol_permit
    BEGIN DELETE FROM register_digest WHERE register = 'alcohol_permits'; END;
CREATE TRIGGER reg_alcohol_permit_digest_guard_update AFTER UPDATE ON reg_alcohol_permit
    BEGIN DELETE FROM register_digest WHERE register = 'alcohol_permits'; END;
CREATE TRIGGER reg_alcohol_permit_digest_guard_delete AFTER DELETE ON reg_alcohol_permit
    BEGIN DELETE FROM register_digest WHERE register = 'alcohol_permits'; END;
CREATE TRIGGER reg_lease_digest_guard_insert AFTER INSERT ON reg_lease
    BEGIN DELETE FROM register_digest WHERE register = 'leases'; END;
CREATE TRIGGER reg_lease_digest_guard_update AFTER UPDATE ON reg_lease
    BEGIN DELETE FROM register_digest WHERE register = 'leases'; END;
CREATE TRIGGER reg_lease_digest_guard_delete AFTER DELETE ON reg_lease
    BEGIN DELETE FROM register_digest WHERE register = 'leases'; END;
CREATE TRIGGER reg_budget_digest_guard_insert AFTER INSERT ON reg_budget
    BEGIN DELETE FROM register_digest WHERE register = 'budget'; END;
CREATE TRIGGER reg_budget_digest_guard_update AFTER UPDATE ON reg_budget
    BEGIN DELETE FROM register_digest WHERE register = 'budget'; END;
CREATE TRIGGER reg_budget_digest_guard_delete AFTER DELETE ON reg_budget
    BEGIN DELETE FROM register_digest WHERE register = 'budget'; END;
CREATE TRIGGER reg_property_digest_guard_insert AFTER INSERT ON reg_property
    BEGIN DELETE FROM register_digest WHERE register = 'property'; END;
CREATE TRIGGER reg_property_digest_guard_update AFTER UPDATE ON reg_property
    BEGIN DELETE FROM register_digest WHERE register = 'property'; END;
CREATE TRIGGER reg_property_digest_guard_delete AFTER DELETE ON reg_property
    BEGIN DELETE FROM register_digest WHERE register = 'property'; END;

-- Written before these guards: a digest cannot vouch for its table. Each register's next
-- run reads the table once.
DELETE FROM register_digest;
