-- Organisations, the domains they own, users and their roles, sessions and
-- the audit log. Times are Unix seconds (the audit log's, milliseconds).
CREATE TABLE orgs (
    id      INTEGER PRIMARY KEY,
    name    TEXT NOT NULL UNIQUE,
    created INTEGER NOT NULL
);

-- A domain belongs to one organisation, with its subdomains.
CREATE TABLE org_domains (
    org_id INTEGER NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    domain TEXT NOT NULL UNIQUE
);
CREATE INDEX org_domains_org ON org_domains (org_id);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,          -- bcrypt
    admin         INTEGER NOT NULL DEFAULT 0,
    created       INTEGER NOT NULL
);

CREATE TABLE members (
    org_id  INTEGER NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role    TEXT NOT NULL CHECK (role IN ('owner', 'editor', 'viewer')),
    PRIMARY KEY (org_id, user_id)
);

-- Only the SHA-256 of a session token is kept.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf       TEXT NOT NULL,
    created    INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    remote     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE audit (
    id     INTEGER PRIMARY KEY,
    at     INTEGER NOT NULL,
    actor  TEXT NOT NULL,
    org    TEXT NOT NULL DEFAULT '',
    action TEXT NOT NULL,
    object TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '',
    remote TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_org_at ON audit (org, at);
