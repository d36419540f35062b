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

DO $$
DECLARE
    r RECORD;
BEGIN
    FOR r IN SELECT * FROM (VALUES
        ('reg_party', 'parties'),
        ('reg_account', 'accounts'),
        ('reg_obligor', 'obligors'),
        ('reg_installment', 'installments'),
        ('reg_ledger', 'ledger'),
        ('reg_case', 'cases'),
        ('reg_case_letter', 'case_letters'),
        ('reg_alcohol_permit', 'alcohol_permits'),
        ('reg_lease', 'leases'),
        ('reg_budget', 'budget'),
        ('reg_property', 'property')
    ) AS registers (tab, register) LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION register_digest_guard(%L)',
                       r.tab || '_digest_guard', r.tab, r.register);
    END LOOP;
END $$;

-- Written before these guards: a digest cannot vouch for its table. Each register's next
-- run reads the table once.
DELETE FROM register_digest;
