-- dmarcd embedded store, schema version 5: one delivery at a time, and
-- notifications the chat service refused for good.
--
-- A flusher claims a notification before it posts it (INSERT ... ON
-- CONFLICT DO UPDATE only where the claim is its own or has expired), so
-- that two processes sharing the store (the daemon and a cron
-- `dmarcd alerts --check`) never post it twice.

CREATE TABLE notification_claims (
    notification TEXT    PRIMARY KEY REFERENCES notifications (id),
    owner        TEXT    NOT NULL,
    until        INTEGER NOT NULL -- Unix seconds: the claim lapses then
);

-- A notification the chat service refused for good (a revoked webhook,
-- invalid blocks): out of the outbox, with the service's answer.
CREATE TABLE undeliverable (
    notification TEXT    PRIMARY KEY REFERENCES notifications (id),
    at           INTEGER NOT NULL,
    reason       TEXT    NOT NULL
);
