-- The sender domains set up through the page (the wizard's answers, as a
-- [[domain]] table would hold them, in JSON), and the rollout steps their
-- owners said they published.
CREATE TABLE sender_domains (
    domain   TEXT PRIMARY KEY,
    org_id   INTEGER NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    settings TEXT NOT NULL,
    updated  INTEGER NOT NULL
);

CREATE TABLE published_steps (
    id        INTEGER PRIMARY KEY,
    domain    TEXT NOT NULL,
    step      TEXT NOT NULL,   -- "none", "quarantine 5%" ...
    record    TEXT NOT NULL,   -- the DMARC record seen in DNS
    at        INTEGER NOT NULL,
    actor     TEXT NOT NULL
);
CREATE INDEX published_steps_domain ON published_steps (domain, at);
