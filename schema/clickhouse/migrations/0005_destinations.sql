-- dmarcd ClickHouse store, schema version 5: where a notification goes.
--
-- '' (no row here) is the instance's chat channel ([slack]), as every
-- notification before this version; "org:ID" an organisation's own Slack
-- channel, set on the dashboard. Each destination has its own copy of a
-- message, under its own id.
--
-- A table rather than a column of notifications: migrations must be
-- idempotent here (ClickHouse has no transactional DDL) and 18.16 has no
-- ADD COLUMN IF NOT EXISTS. The row is written before its notification,
-- so a notification is never read without it; a row written twice, or
-- left by a writer that died before the notification, is harmless.
CREATE TABLE IF NOT EXISTS notification_destinations (
    notification String,
    destination  String
) ENGINE = MergeTree
ORDER BY notification;
