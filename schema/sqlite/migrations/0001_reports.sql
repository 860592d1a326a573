-- dmarcd embedded store, schema version 1.
--
-- Tables hold what the parsers read; users query the views (reports,
-- records, dkim_signatures, spf_checks, failures, quarantine, daily_*),
-- whose columns are documented in docs/SQL.md and kept stable. Times are
-- Unix seconds in tables and 'YYYY-MM-DD HH:MM:SS' UTC text in views (the
-- text form ClickHouse gives a DateTime), days are 'YYYY-MM-DD'.

CREATE TABLE aggregate_reports (
    id                 INTEGER PRIMARY KEY,
    -- The report key: a digest of reporter (org_name, else email, lower
    -- case), report id, policy domain and date range. A report arriving
    -- again is refused by this constraint.
    report_key         TEXT    NOT NULL UNIQUE,
    reporter           TEXT    NOT NULL,
    report_id          TEXT    NOT NULL,
    domain             TEXT    NOT NULL,
    date_begin         INTEGER NOT NULL,
    date_end           INTEGER NOT NULL,
    org_name           TEXT    NOT NULL,
    email              TEXT    NOT NULL,
    extra_contact_info TEXT    NOT NULL,
    errors             TEXT    NOT NULL, -- JSON array of strings
    generator          TEXT    NOT NULL,
    version            TEXT    NOT NULL,
    namespace          TEXT    NOT NULL,
    adkim              TEXT    NOT NULL,
    aspf               TEXT    NOT NULL,
    p                  TEXT    NOT NULL,
    sp                 TEXT    NOT NULL,
    np                 TEXT    NOT NULL,
    pct                INTEGER,          -- NULL when the report has none
    fo                 TEXT    NOT NULL,
    testing            TEXT    NOT NULL,
    discovery_method   TEXT    NOT NULL,
    extensions         TEXT    NOT NULL, -- JSON array of raw XML strings
    record_count       INTEGER NOT NULL,
    message_count      INTEGER NOT NULL,
    tolerations        TEXT    NOT NULL, -- JSON array of codes
    source             TEXT    NOT NULL,
    part               TEXT    NOT NULL,
    message_id         TEXT    NOT NULL,
    received_at        INTEGER NOT NULL
);
CREATE INDEX aggregate_reports_domain_day ON aggregate_reports (domain, date_begin);

CREATE TABLE aggregate_records (
    report          INTEGER NOT NULL REFERENCES aggregate_reports (id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL, -- position in the report, from 1
    source_ip       TEXT    NOT NULL,
    count           INTEGER NOT NULL,
    disposition     TEXT    NOT NULL,
    dkim            TEXT    NOT NULL, -- policy_evaluated: aligned DKIM pass or fail
    spf             TEXT    NOT NULL,
    reasons         TEXT    NOT NULL, -- JSON array of {"type","comment"}
    envelope_to     TEXT    NOT NULL,
    envelope_from   TEXT    NOT NULL,
    header_from     TEXT    NOT NULL,
    -- Per-signature DKIM results and per-check SPF results, as parallel
    -- JSON arrays (ClickHouse has Array(String) columns of the same names).
    dkim_domains    TEXT    NOT NULL,
    dkim_selectors  TEXT    NOT NULL,
    dkim_results    TEXT    NOT NULL,
    dkim_human      TEXT    NOT NULL,
    spf_domains     TEXT    NOT NULL,
    spf_scopes      TEXT    NOT NULL,
    spf_results     TEXT    NOT NULL,
    spf_human       TEXT    NOT NULL,
    extensions      TEXT    NOT NULL,
    PRIMARY KEY (report, seq)
) WITHOUT ROWID;

-- One row per DKIM signature result, for per-selector questions (which
-- selectors pass where, rotation health).
CREATE TABLE aggregate_dkim (
    report   INTEGER NOT NULL REFERENCES aggregate_reports (id) ON DELETE CASCADE,
    seq      INTEGER NOT NULL,
    idx      INTEGER NOT NULL,
    domain   TEXT    NOT NULL,
    selector TEXT    NOT NULL,
    result   TEXT    NOT NULL,
    PRIMARY KEY (report, seq, idx)
) WITHOUT ROWID;
CREATE INDEX aggregate_dkim_selector ON aggregate_dkim (domain, selector);

CREATE TABLE failure_reports (
    id                     INTEGER PRIMARY KEY,
    report_key             TEXT    NOT NULL UNIQUE, -- digest of reporter, ids and dates
    domain                 TEXT    NOT NULL,
    report_from            TEXT    NOT NULL,
    report_subject         TEXT    NOT NULL,
    report_date            INTEGER,
    report_message_id      TEXT    NOT NULL,
    feedback_type          TEXT    NOT NULL,
    version                TEXT    NOT NULL,
    user_agent             TEXT    NOT NULL,
    reported_domain        TEXT    NOT NULL,
    source_ip              TEXT    NOT NULL,
    original_mail_from     TEXT    NOT NULL,
    original_rcpt_to       TEXT    NOT NULL, -- JSON array
    arrival_date           INTEGER,
    arrival_date_text      TEXT    NOT NULL,
    auth_failure           TEXT    NOT NULL,
    delivery_result        TEXT    NOT NULL,
    identity_alignment     TEXT    NOT NULL,
    dkim_domain            TEXT    NOT NULL,
    dkim_identity          TEXT    NOT NULL,
    dkim_selector          TEXT    NOT NULL,
    spf_dns                TEXT    NOT NULL,
    authentication_results TEXT    NOT NULL, -- JSON array
    reported_uri           TEXT    NOT NULL, -- JSON array
    incidents              INTEGER NOT NULL,
    fields                 TEXT    NOT NULL, -- JSON array of [name, value]
    original_part_type     TEXT    NOT NULL,
    original_headers       TEXT    NOT NULL,
    original_from          TEXT    NOT NULL,
    original_to            TEXT    NOT NULL,
    original_subject       TEXT    NOT NULL,
    original_message_id    TEXT    NOT NULL,
    original_date          TEXT    NOT NULL,
    original_body          BLOB,             -- only with ingest.keep_failure_body
    tolerations            TEXT    NOT NULL,
    source                 TEXT    NOT NULL,
    part                   TEXT    NOT NULL,
    received_at            INTEGER NOT NULL
);
CREATE INDEX failure_reports_domain ON failure_reports (domain, arrival_date);

CREATE TABLE quarantine (
    id          INTEGER PRIMARY KEY,
    sha256      TEXT    NOT NULL UNIQUE, -- of raw: the same bytes are kept once
    reason      TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    part        TEXT    NOT NULL,
    message_id  TEXT    NOT NULL,
    received_at INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    raw         BLOB    NOT NULL
);

-- Views: the stable interface for SQL users.

CREATE VIEW reports AS
SELECT report_key, org_name, email, extra_contact_info, report_id, domain,
       datetime(date_begin, 'unixepoch')            AS date_begin,
       datetime(date_end, 'unixepoch')              AS date_end,
       date(date_begin, 'unixepoch')                AS day,
       adkim, aspf, p, sp, np, pct, fo, testing, discovery_method,
       version, namespace, generator, errors,
       record_count, message_count, tolerations,
       source, part, message_id,
       datetime(received_at, 'unixepoch')           AS received_at
FROM aggregate_reports;

CREATE VIEW records AS
SELECT r.report_key, r.org_name, r.report_id, r.domain,
       datetime(r.date_begin, 'unixepoch')          AS date_begin,
       datetime(r.date_end, 'unixepoch')            AS date_end,
       date(r.date_begin, 'unixepoch')              AS day,
       r.p, r.pct,
       c.seq, c.source_ip, c.count, c.disposition, c.dkim, c.spf,
       CASE WHEN c.dkim = 'pass' OR c.spf = 'pass' THEN 1 ELSE 0 END AS dmarc_pass,
       c.reasons, c.envelope_to, c.envelope_from, c.header_from,
       c.dkim_domains, c.dkim_selectors, c.dkim_results,
       c.spf_domains, c.spf_scopes, c.spf_results
FROM aggregate_records c
JOIN aggregate_reports r ON r.id = c.report;

CREATE VIEW dkim_signatures AS
SELECT r.org_name, r.report_id, r.domain,
       date(r.date_begin, 'unixepoch')              AS day,
       c.source_ip, c.count, c.header_from,
       d.domain                                     AS dkim_domain,
       d.selector, d.result
FROM aggregate_dkim d
JOIN aggregate_records c ON c.report = d.report AND c.seq = d.seq
JOIN aggregate_reports r ON r.id = d.report;

CREATE VIEW failures AS
SELECT id, domain, report_from, report_subject,
       datetime(report_date, 'unixepoch')           AS report_date,
       feedback_type, user_agent, reported_domain, source_ip,
       original_mail_from, original_rcpt_to,
       datetime(arrival_date, 'unixepoch')          AS arrival_date,
       auth_failure, delivery_result, identity_alignment,
       dkim_domain, dkim_selector, authentication_results,
       original_from, original_to, original_subject, original_message_id,
       original_headers, tolerations, source,
       datetime(received_at, 'unixepoch')           AS received_at
FROM failure_reports;

CREATE VIEW quarantined AS
SELECT id, sha256, reason, source, part, message_id,
       datetime(received_at, 'unixepoch')           AS received_at, size
FROM quarantine;

-- Daily rollups. ClickHouse keeps these as tables maintained on insert; the
-- embedded store computes them on read.

CREATE VIEW daily_domains AS
SELECT date(r.date_begin, 'unixepoch') AS day, r.domain,
       SUM(c.count)                                                         AS messages,
       SUM(CASE WHEN c.dkim = 'pass' OR c.spf = 'pass' THEN c.count ELSE 0 END) AS dmarc_pass,
       SUM(CASE WHEN c.dkim = 'pass' THEN c.count ELSE 0 END)               AS dkim_aligned,
       SUM(CASE WHEN c.spf = 'pass' THEN c.count ELSE 0 END)                AS spf_aligned,
       SUM(CASE WHEN c.disposition = 'quarantine' THEN c.count ELSE 0 END)  AS quarantined,
       SUM(CASE WHEN c.disposition = 'reject' THEN c.count ELSE 0 END)      AS rejected
FROM aggregate_records c
JOIN aggregate_reports r ON r.id = c.report
GROUP BY day, r.domain;

CREATE VIEW daily_sources AS
SELECT date(r.date_begin, 'unixepoch') AS day, r.domain, c.source_ip,
       SUM(c.count)                                                         AS messages,
       SUM(CASE WHEN c.dkim = 'pass' OR c.spf = 'pass' THEN c.count ELSE 0 END) AS dmarc_pass,
       SUM(CASE WHEN c.dkim = 'pass' THEN c.count ELSE 0 END)               AS dkim_aligned,
       SUM(CASE WHEN c.spf = 'pass' THEN c.count ELSE 0 END)                AS spf_aligned
FROM aggregate_records c
JOIN aggregate_reports r ON r.id = c.report
GROUP BY day, r.domain, c.source_ip;

CREATE VIEW daily_reporters AS
SELECT date(r.date_begin, 'unixepoch') AS day, r.domain, r.org_name,
       COUNT(DISTINCT r.id)                                                 AS reports,
       SUM(r.message_count)                                                 AS messages
FROM aggregate_reports r
GROUP BY day, r.domain, r.org_name;

CREATE VIEW daily_selectors AS
SELECT date(r.date_begin, 'unixepoch') AS day, r.domain, d.domain AS dkim_domain, d.selector,
       SUM(c.count)                                                         AS messages,
       SUM(CASE WHEN d.result = 'pass' THEN c.count ELSE 0 END)             AS passed
FROM aggregate_dkim d
JOIN aggregate_records c ON c.report = d.report AND c.seq = d.seq
JOIN aggregate_reports r ON r.id = d.report
GROUP BY day, r.domain, d.domain, d.selector;
