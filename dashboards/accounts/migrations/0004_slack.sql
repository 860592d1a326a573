-- Each organisation's own Slack destination: an incoming webhook that gets
-- the alerts about its domains and, when weekly is set, its weekly
-- recommendation. The webhook URL is a credential: this file is mode 0600,
-- and the URL is never shown again, logged, or sent out but to Slack.
CREATE TABLE org_slack (
    org_id      INTEGER PRIMARY KEY REFERENCES orgs (id) ON DELETE CASCADE,
    webhook_url TEXT    NOT NULL,
    alerts      INTEGER NOT NULL,
    weekly      INTEGER NOT NULL,
    updated     INTEGER NOT NULL,
    updated_by  TEXT    NOT NULL,
    -- What Slack said last time it refused a message for good ('' when
    -- the last message went through), and when.
    problem     TEXT    NOT NULL DEFAULT '',
    problem_at  INTEGER NOT NULL DEFAULT 0
);
