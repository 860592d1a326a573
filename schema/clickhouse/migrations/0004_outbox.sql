-- dmarcd ClickHouse store, schema version 4: delivery claims and
-- notifications the chat service refused for good, append-only as the rest
-- of the outbox (schema/sqlite/migrations/0005_outbox.sql).
--
--   - a claim is a row; the holder of a notification is the owner of its
--     earliest claim (by the claimant's clock, in nanoseconds) that has not
--     lapsed. A claimant inserts its row only when no other owner holds the
--     notification, then reads the holder back: of two that raced, both
--     read the same earliest row, and one posts.
--   - a notification is out of the outbox once a row of undeliverable
--     names it.

CREATE TABLE IF NOT EXISTS notification_claims (
    notification String,
    owner        String,
    at           UInt64,           -- the claimant's clock, nanoseconds
    until        DateTime('UTC')   -- the claim lapses then
) ENGINE = MergeTree
ORDER BY (notification, at);

CREATE TABLE IF NOT EXISTS undeliverable (
    notification String,
    at           DateTime('UTC'),
    reason       String
) ENGINE = ReplacingMergeTree
ORDER BY notification;
