-- dmarcd embedded store, schema version 2: alert history and the
-- notification outbox. Both are append-only.

CREATE TABLE alert_events (
    id      INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL,
    key     TEXT    NOT NULL, -- domain|kind|subject
    domain  TEXT    NOT NULL,
    kind    TEXT    NOT NULL,
    subject TEXT    NOT NULL,
    state   TEXT    NOT NULL, -- firing or resolved
    title   TEXT    NOT NULL,
    text    TEXT    NOT NULL
);
CREATE INDEX alert_events_key ON alert_events (key, id);

CREATE TABLE notifications (
    id      TEXT    PRIMARY KEY,
    created INTEGER NOT NULL,
    kind    TEXT    NOT NULL, -- alert or weekly
    payload BLOB    NOT NULL  -- JSON
);

CREATE TABLE deliveries (
    notification TEXT    PRIMARY KEY REFERENCES notifications (id),
    at           INTEGER NOT NULL
);

CREATE VIEW alerts AS
SELECT datetime(at, 'unixepoch') AS at, domain, kind, subject, state, title, text
FROM alert_events;
