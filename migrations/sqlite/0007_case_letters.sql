-- Letters within back-office cases (issue 5): the correspondence of each case, as the
-- back office records it. Keep in step with the other backend.
CREATE TABLE reg_case_letter (
    id          TEXT PRIMARY KEY,
    case_id     TEXT NOT NULL,
    letter_date TEXT NOT NULL,
    direction   TEXT NOT NULL,
    title       TEXT NOT NULL,
    row_hash    INTEGER NOT NULL
);
CREATE INDEX reg_case_letter_case ON reg_case_letter (case_id);

-- The letters of the cases a viewer may see (scope 'sprawy').
CREATE VIEW portal_case_letters AS
    SELECT c.viewer_account_id, l.case_id, c.reference, l.id AS letter_id, l.letter_date,
           l.direction, l.title
    FROM reg_case_letter l
    JOIN portal_cases c ON c.case_id = l.case_id;
