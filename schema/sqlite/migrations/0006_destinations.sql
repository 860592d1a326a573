-- dmarcd embedded store, schema version 6: where a notification goes.
--
-- '' is the instance's chat channel ([slack]), as every notification
-- before this version; "org:ID" an organisation's own Slack channel, set
-- on the dashboard. Each destination has its own copy of a message.

ALTER TABLE notifications ADD COLUMN destination TEXT NOT NULL DEFAULT '';
