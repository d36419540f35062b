-- Register keys compare byte by byte (COLLATE "C"), as SQLite's BINARY does. Ids and the
-- references to them are opaque back-office codes: a language's collation gives them no
-- better order, and costs the most where they are compared most, in the primary key and
-- index builds of a first load (docs/import-formats.md, "How a run is applied").
--
-- The views that read these columns must be dropped for the type change and are re-created
-- from their own stored definitions, in creation order, with their grants: a view an
-- office added on top of ours, or a SELECT granted to the portal's role, survives.
DO $$
DECLARE
    view_names TEXT[] := ARRAY[]::TEXT[];
    view_defs TEXT[] := ARRAY[]::TEXT[];
    grants TEXT[] := ARRAY[]::TEXT[];
    v RECORD;
    col RECORD;
    statement TEXT;
BEGIN
    FOR v IN
        SELECT c.oid, c.relname, pg_get_viewdef(c.oid) AS def
        FROM pg_class c
        WHERE c.relkind = 'v' AND c.relnamespace = current_schema()::regnamespace
        ORDER BY c.oid
    LOOP
        view_names := view_names || v.relname::TEXT;
        view_defs := view_defs || v.def;
        SELECT grants || COALESCE(array_agg(format('GRANT %s ON %I TO %s', a.privilege_type, v.relname,
                   CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END)), ARRAY[]::TEXT[])
        INTO grants
        FROM pg_class c, aclexplode(c.relacl) a
        WHERE c.oid = v.oid AND a.grantee <> c.relowner;
    END LOOP;
    FOR i IN REVERSE COALESCE(array_length(view_names, 1), 0)..1 LOOP
        EXECUTE format('DROP VIEW %I', view_names[i]);
    END LOOP;
    FOR col IN
        SELECT table_name, column_name
        FROM information_schema.columns
        WHERE table_schema = current_schema() AND data_type = 'text'
          AND table_name LIKE 'reg\_%' AND (column_name = 'id' OR column_name LIKE '%\_id')
        ORDER BY table_name, ordinal_position
    LOOP
        EXECUTE format('ALTER TABLE %I ALTER COLUMN %I TYPE TEXT COLLATE "C"', col.table_name, col.column_name);
    END LOOP;
    FOR i IN 1..COALESCE(array_length(view_names, 1), 0) LOOP
        EXECUTE format('CREATE VIEW %I AS %s', view_names[i], view_defs[i]);
    END LOOP;
    FOREACH statement IN ARRAY grants LOOP
        EXECUTE statement;
    END LOOP;
END $$;
