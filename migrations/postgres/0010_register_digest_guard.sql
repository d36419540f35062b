-- A register's digest (0008) describes its table only while nothing but register runs
-- writes the table. Any other write (by hand, or by another tool) deletes the register's
-- digest, so the next run compares its file with the table itself and puts back what was
-- changed. docs/import-formats.md, "How a run is applied".
-- A run marks its own writes with the transaction-local setting eurzad.register_run; one
-- trigger per statement costs nothing per row.
CREATE FUNCTION register_digest_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('eurzad.register_run', true) IS DISTINCT FROM TG_ARGV[0] THEN
        DELETE FROM register_digest WHERE register = TG_ARGV[0];
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER reg_party_digest_guard AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON reg_party
    FOR EACH STATEMENT EXECUTE FUNCTION register_digest_guard('parties');
CREATE TRIGGER reg_account_digest_guard AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON reg_account
    FOR EACH STATEMENT EXECUTE FUNCTION register_digest_guard('accounts');
CREATE TRIGGER reg_obligor_digest_guard AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON reg_obligor
    FOR EACH STATEMENT EXECUTE FUNCTION register_digest_guard('obligors');
CREATE TRIGGER reg_installment_digest_guard AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON reg_installment
    FOR EACH STATEMENT EXECUTE FUNCTION register_digest_guard('installments');
CREATE TRIGGER reg_ledger_digest_guard AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON reg_ledger
    FOR EACH STATEMENT EXECUTE FUNCTION register_digest_guard('ledger');
CREATE TRIGGER reg_case_digest_guard AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON reg_case
    FOR EACH STATEMENT EXECUTE FUNCTION register_digest_guard('cases');
CREATE TRIGGER reg_case_letter_digest_guard AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON reg_case_letter
    FOR EACH STATEMENT EXECUTE FUNCTION register_digest_guard('case_letters');
CREATE TRIGGER reg_alcohol_permit_digest_guard AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON reg_alcohol_permit
    FOR EACH STATEMENT EXECUTE FUNCTION register_digest_guard('alcohol_permits');
CREATE TRIGGER reg_lease_digest_guard AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON reg_lease
    FOR EACH STATEMENT EXECUTE FUNCTION register_digest_guard('leases');
CREATE TRIGGER reg_budget_digest_guard AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON reg_budget
    FOR EACH STATEMENT EXECUTE FUNCTION register_digest_guard('budget');
CREATE TRIGGER reg_property_digest_guard AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON reg_property
    FOR EACH STATEMENT EXECUTE FUNCTION register_digest_guard('property');

-- Written before these guards: a digest cannot vouch for its table. Each register's next
-- run reads the table once.
DELETE FROM register_digest;
