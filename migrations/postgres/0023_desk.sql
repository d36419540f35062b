-- The officials' desk (issue 18): officials who sign in in a browser, and their sessions.
-- Keep in step with migrations/sqlite/0023_desk.sql.

-- An official of the desk. Managed with `eurzad officials add|disable|list`.
CREATE TABLE desk_official (
    id              BIGSERIAL PRIMARY KEY,
    -- what they sign in with; also the name decisions and audit rows carry
    login           TEXT NOT NULL UNIQUE,
    -- their full name, as pages show it
    name            TEXT NOT NULL,
    email           TEXT,
    -- argon2id, PHC string; NULL when they sign in through the office's directory only
    password_hash   TEXT,
    disabled_at     TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL
);

-- A signed-in browser. The cookie holds a random token; only its SHA-256 is kept here.
CREATE TABLE desk_session (
    token_sha256    TEXT PRIMARY KEY,
    official_id     BIGINT NOT NULL REFERENCES desk_official (id),
    -- the token every form of this session carries (CSRF)
    csrf            TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX desk_session_expiry ON desk_session (expires_at);
