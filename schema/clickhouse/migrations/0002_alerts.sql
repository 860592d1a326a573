-- dmarcd ClickHouse store, schema version 2: alert history and the
-- notification outbox, append-only as in the embedded store
-- (schema/sqlite/migrations/0002_alerts.sql), so that both engines keep
-- them the same way. Works on ClickHouse 18.16 and current releases.
--
-- ClickHouse changes no row in place, so each question reads the history:
--   - the state of an alert is its event with the highest id
--     (ORDER BY id DESC LIMIT 1 BY key);
--   - a notification queued twice (a retried check, two processes) is read
--     once, its first copy (ORDER BY queued LIMIT 1 BY id), as SQLite's
--     ON CONFLICT (id) DO NOTHING keeps the first;
--   - a notification is pending while no row of deliveries names it.
--
-- The tables are small and not partitioned: retention drops months of
-- reports, never the alert history or a notification not yet delivered.

CREATE TABLE IF NOT EXISTS alert_events (
    -- Orders the events as SQLite's INTEGER PRIMARY KEY does: the writer's
    -- clock in nanoseconds, strictly increasing within a process.
    id      UInt64,
    at      DateTime('UTC'),
    key     String, -- domain|kind|subject
    domain  String,
    kind    String,
    subject String,
    state   String, -- firing or resolved
    title   String,
    text    String
) ENGINE = MergeTree
ORDER BY (key, id);

CREATE TABLE IF NOT EXISTS notifications (
    id      String,
    created DateTime('UTC'),
    -- When this copy was queued, in nanoseconds: the first copy of an id
    -- wins, and notifications created in the same second keep their order.
    queued  UInt64,
    kind    String, -- alert or weekly
    payload String  -- JSON
) ENGINE = MergeTree
ORDER BY (id, queued);

-- Delivered twice (a crash between posting and recording) is one delivery:
-- the rows are only read as a set of ids.
CREATE TABLE IF NOT EXISTS deliveries (
    notification String,
    at           DateTime('UTC')
) ENGINE = ReplacingMergeTree
ORDER BY notification;

CREATE VIEW IF NOT EXISTS alerts AS
SELECT at, domain, kind, subject, state, title, text
FROM alert_events;
