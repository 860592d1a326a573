-- API tokens of the organisations: only the SHA-256 of a token is kept.
CREATE TABLE api_tokens (
    id         INTEGER PRIMARY KEY,
    org_id     INTEGER NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    scopes     TEXT NOT NULL,     -- "read" or "read write"
    created    INTEGER NOT NULL,
    last_used  INTEGER NOT NULL DEFAULT 0,
    UNIQUE (org_id, name)
);
