-- dmarcd embedded store, schema version 3: daily rollups kept on insert.
--
-- The daily_* views used to aggregate every record on each read, which takes
-- seconds at millions of records. The rollups are now tables that the store
-- updates in the transaction that stores a report; a report is stored once
-- (report_key is UNIQUE), so they count each report once. The views keep
-- their names and columns.

CREATE TABLE rollup_domains (
    day         TEXT    NOT NULL,
    domain      TEXT    NOT NULL,
    messages    INTEGER NOT NULL,
    dmarc_pass  INTEGER NOT NULL,
    dkim_aligned INTEGER NOT NULL,
    spf_aligned INTEGER NOT NULL,
    quarantined INTEGER NOT NULL,
    rejected    INTEGER NOT NULL,
    PRIMARY KEY (domain, day)
) WITHOUT ROWID;

CREATE TABLE rollup_sources (
    day          TEXT    NOT NULL,
    domain       TEXT    NOT NULL,
    source_ip    TEXT    NOT NULL,
    messages     INTEGER NOT NULL,
    dmarc_pass   INTEGER NOT NULL,
    dkim_aligned INTEGER NOT NULL,
    spf_aligned  INTEGER NOT NULL,
    PRIMARY KEY (domain, day, source_ip)
) WITHOUT ROWID;

CREATE TABLE rollup_reporters (
    day      TEXT    NOT NULL,
    domain   TEXT    NOT NULL,
    org_name TEXT    NOT NULL,
    reports  INTEGER NOT NULL,
    messages INTEGER NOT NULL,
    PRIMARY KEY (domain, day, org_name)
) WITHOUT ROWID;

CREATE TABLE rollup_selectors (
    day         TEXT    NOT NULL,
    domain      TEXT    NOT NULL,
    dkim_domain TEXT    NOT NULL,
    selector    TEXT    NOT NULL,
    messages    INTEGER NOT NULL,
    passed      INTEGER NOT NULL,
    PRIMARY KEY (domain, day, dkim_domain, selector)
) WITHOUT ROWID;

INSERT INTO rollup_domains SELECT * FROM daily_domains;
INSERT INTO rollup_sources SELECT * FROM daily_sources;
INSERT INTO rollup_reporters SELECT * FROM daily_reporters;
INSERT INTO rollup_selectors SELECT * FROM daily_selectors;

DROP VIEW daily_domains;
DROP VIEW daily_sources;
DROP VIEW daily_reporters;
DROP VIEW daily_selectors;

CREATE VIEW daily_domains AS
SELECT day, domain, messages, dmarc_pass, dkim_aligned, spf_aligned, quarantined, rejected FROM rollup_domains;
CREATE VIEW daily_sources AS
SELECT day, domain, source_ip, messages, dmarc_pass, dkim_aligned, spf_aligned FROM rollup_sources;
CREATE VIEW daily_reporters AS
SELECT day, domain, org_name, reports, messages FROM rollup_reporters;
CREATE VIEW daily_selectors AS
SELECT day, domain, dkim_domain, selector, messages, passed FROM rollup_selectors;
