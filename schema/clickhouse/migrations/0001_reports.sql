-- dmarcd ClickHouse store, schema version 1.
--
-- Works on ClickHouse 18.16 (Debian 12) and current releases: no IPv4/IPv6,
-- Map, DateTime64, TTL or LowCardinality types; retention drops monthly
-- partitions. Statements are split on ';' and applied in order; each one is
-- idempotent (IF NOT EXISTS), so a migration cut off half way is re-applied.
--
-- Users query the views (reports, records, dkim_signatures, failures,
-- quarantined, daily_*), whose columns are those of the embedded store and
-- are documented in docs/SQL.md. The tables behind them may change.
--
-- Deduplication. A report is stored once: the writer checks report_key
-- before storing, but two writers can race, and a retry after a cut
-- connection writes records again. So every table is a ReplacingMergeTree
-- keyed by the report (the same report has the same key, day and so the
-- same monthly partition), and every view reads it with FINAL, which
-- collapses copies at read time, before any merge.
--
-- Visibility. The writer inserts records in batches and the report row last
-- (at Commit). Views only count records whose report row exists, so the
-- records of a report being written, or of an attempt that died, never
-- show.

CREATE TABLE IF NOT EXISTS aggregate_reports (
    -- Digest of reporter, report id, policy domain and date range
    -- (dmarcd.ReportKey.Digest).
    report_key         String,
    reporter           String,
    report_id          String,
    domain             String,
    -- The UTC date of date_begin: the partition and the day of the daily_*
    -- views.
    day                Date,
    date_begin         DateTime('UTC'),
    date_end           DateTime('UTC'),
    org_name           String,
    email              String,
    extra_contact_info String,
    errors             Array(String),
    generator          String,
    version            String,
    namespace          String,
    adkim              String,
    aspf               String,
    p                  String,
    sp                 String,
    np                 String,
    pct                Nullable(Int16), -- NULL when the report has none
    fo                 String,
    testing            String,
    discovery_method   String,
    extensions         Array(String),
    record_count       UInt64,
    message_count      UInt64,
    -- Records this copy of the report wrote before its row; the ledger
    -- compares it with the records fed to the rollups.
    stored_records     UInt64,
    tolerations        Array(String),
    source             String,
    part               String,
    message_id         String,
    received_at        DateTime('UTC')
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (domain, day, report_key);

-- One row per record. The report's columns that queries filter on are
-- repeated here so that the records view needs no join. (report_key, seq)
-- identifies a record: a retried or racing copy writes the same key, which
-- FINAL and merges collapse.
CREATE TABLE IF NOT EXISTS aggregate_records (
    report_key     String,
    domain         String,
    day            Date,
    org_name       String,
    report_id      String,
    date_begin     DateTime('UTC'),
    date_end       DateTime('UTC'),
    p              String,
    pct            Nullable(Int16),
    seq            UInt32, -- position in the report, from 1
    source_ip      String,
    count          UInt64,
    disposition    String,
    dkim           String, -- policy_evaluated: aligned DKIM pass or fail
    spf            String,
    reasons        String, -- JSON array of {"type","comment"}, as in SQLite
    envelope_to    String,
    envelope_from  String,
    header_from    String,
    -- Per-signature DKIM results and per-check SPF results, parallel arrays.
    dkim_domains   Array(String),
    dkim_selectors Array(String),
    dkim_results   Array(String),
    dkim_human     Array(String),
    spf_domains    Array(String),
    spf_scopes     Array(String),
    spf_results    Array(String),
    spf_human      Array(String),
    extensions     Array(String)
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (domain, day, source_ip, report_key, seq);

CREATE TABLE IF NOT EXISTS failure_reports (
    report_key             String, -- digest of reporter, ids and dates
    -- The arrival date, else the report's date, else the day it was read.
    day                    Date,
    domain                 String,
    report_from            String,
    report_subject         String,
    report_date            Nullable(DateTime('UTC')),
    report_message_id      String,
    feedback_type          String,
    version                String,
    user_agent             String,
    reported_domain        String,
    source_ip              String,
    original_mail_from     String,
    original_rcpt_to       Array(String),
    arrival_date           Nullable(DateTime('UTC')),
    arrival_date_text      String,
    auth_failure           String,
    delivery_result        String,
    identity_alignment     String,
    dkim_domain            String,
    dkim_identity          String,
    dkim_selector          String,
    spf_dns                String,
    authentication_results Array(String),
    reported_uri           Array(String),
    incidents              UInt64,
    field_names            Array(String), -- every feedback field, in order
    field_values           Array(String),
    original_part_type     String,
    original_headers       String,
    original_from          String,
    original_to            String,
    original_subject       String,
    original_message_id    String,
    original_date          String,
    original_body          Nullable(String), -- only with ingest.keep_failure_body
    tolerations            Array(String),
    source                 String,
    part                   String,
    received_at            DateTime('UTC')
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (domain, day, report_key);

CREATE TABLE IF NOT EXISTS quarantine (
    sha256      String, -- of raw: the same bytes are kept once
    day         Date,   -- of received_at
    reason      String,
    source      String,
    part        String,
    message_id  String,
    received_at DateTime('UTC'),
    size        UInt64,
    raw         String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY sha256;

-- Daily rollups, maintained on insert by materialized views into
-- SummingMergeTree tables. They sum whatever is inserted, so a record
-- inserted twice (a retry after a cut connection, two racing writers) or
-- the records of a report that was never committed would count twice or
-- wrongly. The ledger below finds such days; the daily_* views read those
-- days from the deduplicated base tables and all other days from the
-- rollups.

CREATE TABLE IF NOT EXISTS rollup_domains (
    day          Date,
    domain       String,
    messages     UInt64,
    dmarc_pass   UInt64,
    dkim_aligned UInt64,
    spf_aligned  UInt64,
    quarantined  UInt64,
    rejected     UInt64
) ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (domain, day);

CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_domains_mv TO rollup_domains AS
SELECT day, domain,
       sum(count)                                          AS messages,
       sum(if(dkim = 'pass' OR spf = 'pass', count, 0))    AS dmarc_pass,
       sum(if(dkim = 'pass', count, 0))                    AS dkim_aligned,
       sum(if(spf = 'pass', count, 0))                     AS spf_aligned,
       sum(if(disposition = 'quarantine', count, 0))       AS quarantined,
       sum(if(disposition = 'reject', count, 0))           AS rejected
FROM aggregate_records
GROUP BY day, domain;

CREATE TABLE IF NOT EXISTS rollup_sources (
    day          Date,
    domain       String,
    source_ip    String,
    messages     UInt64,
    dmarc_pass   UInt64,
    dkim_aligned UInt64,
    spf_aligned  UInt64
) ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (domain, day, source_ip);

CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_sources_mv TO rollup_sources AS
SELECT day, domain, source_ip,
       sum(count)                                          AS messages,
       sum(if(dkim = 'pass' OR spf = 'pass', count, 0))    AS dmarc_pass,
       sum(if(dkim = 'pass', count, 0))                    AS dkim_aligned,
       sum(if(spf = 'pass', count, 0))                     AS spf_aligned
FROM aggregate_records
GROUP BY day, domain, source_ip;

CREATE TABLE IF NOT EXISTS rollup_selectors (
    day         Date,
    domain      String,
    dkim_domain String,
    selector    String,
    messages    UInt64,
    passed      UInt64
) ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (domain, day, dkim_domain, selector);

CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_selectors_mv TO rollup_selectors AS
SELECT day, domain, dkim_domain, selector,
       sum(count)                                          AS messages,
       sum(if(result = 'pass', count, 0))                  AS passed
FROM aggregate_records
ARRAY JOIN dkim_domains AS dkim_domain, dkim_selectors AS selector, dkim_results AS result
GROUP BY day, domain, dkim_domain, selector;

-- Fed by the report rows, which are written once per stored report.
CREATE TABLE IF NOT EXISTS rollup_reporters (
    day      Date,
    domain   String,
    org_name String,
    reports  UInt64,
    messages UInt64
) ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (domain, day, org_name);

CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_reporters_mv TO rollup_reporters AS
SELECT day, domain, org_name,
       count()            AS reports,
       sum(message_count) AS messages
FROM aggregate_reports
GROUP BY day, domain, org_name;

-- The ledger: per report, how many records were fed to the rollups, how
-- many copies of its row were written, and how many records those copies
-- say they wrote. A report is clean when exactly one row was written and
-- exactly its records were fed; then the rollups hold it exactly once.
CREATE TABLE IF NOT EXISTS report_ledger (
    domain            String,
    day               Date,
    report_key        String,
    fed_records       UInt64,
    commits           UInt64,
    committed_records UInt64
) ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (domain, day, report_key);

CREATE MATERIALIZED VIEW IF NOT EXISTS report_ledger_records_mv TO report_ledger AS
SELECT domain, day, report_key,
       count()     AS fed_records,
       toUInt64(0) AS commits,
       toUInt64(0) AS committed_records
FROM aggregate_records
GROUP BY domain, day, report_key;

CREATE MATERIALIZED VIEW IF NOT EXISTS report_ledger_reports_mv TO report_ledger AS
SELECT domain, day, report_key,
       toUInt64(0)    AS fed_records,
       toUInt64(1)    AS commits,
       stored_records AS committed_records
FROM aggregate_reports;

-- The (domain, day) pairs whose rollups cannot be trusted: a report with
-- more than one row, or with records fed but no row (being written, or an
-- attempt that died), or fed more records than it holds (a retry).
CREATE VIEW IF NOT EXISTS rollup_unsettled AS
SELECT domain, day
FROM report_ledger
GROUP BY domain, day, report_key
HAVING sum(commits) != 1 OR sum(fed_records) != sum(committed_records);

-- Views: the stable interface for SQL users, with the columns of the
-- embedded store's views.

CREATE VIEW IF NOT EXISTS reports AS
SELECT report_key, org_name, email, extra_contact_info, report_id, domain,
       date_begin, date_end, day,
       adkim, aspf, p, sp, np, pct, fo, testing, discovery_method,
       version, namespace, generator, errors,
       record_count, message_count, tolerations,
       source, part, message_id, received_at
FROM aggregate_reports FINAL;

CREATE VIEW IF NOT EXISTS records AS
SELECT report_key, org_name, report_id, domain, date_begin, date_end, day, p, pct,
       seq, source_ip, count, disposition, dkim, spf,
       if(dkim = 'pass' OR spf = 'pass', 1, 0) AS dmarc_pass,
       reasons, envelope_to, envelope_from, header_from,
       dkim_domains, dkim_selectors, dkim_results,
       spf_domains, spf_scopes, spf_results
FROM aggregate_records FINAL
WHERE report_key IN (SELECT report_key FROM aggregate_reports);

CREATE VIEW IF NOT EXISTS dkim_signatures AS
SELECT org_name, report_id, domain, day, source_ip, count, header_from,
       dkim_domain, selector, result
FROM aggregate_records FINAL
ARRAY JOIN dkim_domains AS dkim_domain, dkim_selectors AS selector, dkim_results AS result
WHERE report_key IN (SELECT report_key FROM aggregate_reports);

-- A failure report without any date is filed under the day it was read, so
-- two copies read in different months sit in different partitions, which
-- FINAL does not merge across: LIMIT 1 BY keeps one.
CREATE VIEW IF NOT EXISTS failures AS
SELECT cityHash64(report_key) AS id, domain, report_from, report_subject, report_date,
       feedback_type, user_agent, reported_domain, source_ip,
       original_mail_from, original_rcpt_to, arrival_date,
       auth_failure, delivery_result, identity_alignment,
       dkim_domain, dkim_selector, authentication_results,
       original_from, original_to, original_subject, original_message_id,
       original_headers, tolerations, source, received_at
FROM failure_reports FINAL
ORDER BY received_at
LIMIT 1 BY report_key;

CREATE VIEW IF NOT EXISTS quarantined AS
SELECT cityHash64(sha256) AS id, sha256, reason, source, part, message_id, received_at, size
FROM quarantine FINAL
ORDER BY received_at
LIMIT 1 BY sha256;

CREATE VIEW IF NOT EXISTS daily_domains AS
SELECT day, domain,
       sum(messages) AS messages, sum(dmarc_pass) AS dmarc_pass,
       sum(dkim_aligned) AS dkim_aligned, sum(spf_aligned) AS spf_aligned,
       sum(quarantined) AS quarantined, sum(rejected) AS rejected
FROM (
    SELECT day, domain, messages, dmarc_pass, dkim_aligned, spf_aligned, quarantined, rejected
    FROM rollup_domains
    WHERE (domain, day) NOT IN (SELECT domain, day FROM rollup_unsettled)
    UNION ALL
    SELECT day, domain, count AS messages,
           if(dkim = 'pass' OR spf = 'pass', count, 0) AS dmarc_pass,
           if(dkim = 'pass', count, 0)                 AS dkim_aligned,
           if(spf = 'pass', count, 0)                  AS spf_aligned,
           if(disposition = 'quarantine', count, 0)    AS quarantined,
           if(disposition = 'reject', count, 0)        AS rejected
    FROM aggregate_records FINAL
    WHERE (domain, day) IN (SELECT domain, day FROM rollup_unsettled)
      AND report_key IN (SELECT report_key FROM aggregate_reports
                         WHERE (domain, day) IN (SELECT domain, day FROM rollup_unsettled))
)
GROUP BY day, domain;

CREATE VIEW IF NOT EXISTS daily_sources AS
SELECT day, domain, source_ip,
       sum(messages) AS messages, sum(dmarc_pass) AS dmarc_pass,
       sum(dkim_aligned) AS dkim_aligned, sum(spf_aligned) AS spf_aligned
FROM (
    SELECT day, domain, source_ip, messages, dmarc_pass, dkim_aligned, spf_aligned
    FROM rollup_sources
    WHERE (domain, day) NOT IN (SELECT domain, day FROM rollup_unsettled)
    UNION ALL
    SELECT day, domain, source_ip, count AS messages,
           if(dkim = 'pass' OR spf = 'pass', count, 0) AS dmarc_pass,
           if(dkim = 'pass', count, 0)                 AS dkim_aligned,
           if(spf = 'pass', count, 0)                  AS spf_aligned
    FROM aggregate_records FINAL
    WHERE (domain, day) IN (SELECT domain, day FROM rollup_unsettled)
      AND report_key IN (SELECT report_key FROM aggregate_reports
                         WHERE (domain, day) IN (SELECT domain, day FROM rollup_unsettled))
)
GROUP BY day, domain, source_ip;

CREATE VIEW IF NOT EXISTS daily_reporters AS
SELECT day, domain, org_name, sum(reports) AS reports, sum(messages) AS messages
FROM (
    SELECT day, domain, org_name, reports, messages
    FROM rollup_reporters
    WHERE (domain, day) NOT IN (SELECT domain, day FROM rollup_unsettled)
    UNION ALL
    SELECT day, domain, org_name, toUInt64(1) AS reports, message_count AS messages
    FROM aggregate_reports FINAL
    WHERE (domain, day) IN (SELECT domain, day FROM rollup_unsettled)
)
GROUP BY day, domain, org_name;

CREATE VIEW IF NOT EXISTS daily_selectors AS
SELECT day, domain, dkim_domain, selector, sum(messages) AS messages, sum(passed) AS passed
FROM (
    SELECT day, domain, dkim_domain, selector, messages, passed
    FROM rollup_selectors
    WHERE (domain, day) NOT IN (SELECT domain, day FROM rollup_unsettled)
    UNION ALL
    SELECT day, domain, dkim_domain, selector, count AS messages,
           if(result = 'pass', count, 0) AS passed
    FROM aggregate_records FINAL
    ARRAY JOIN dkim_domains AS dkim_domain, dkim_selectors AS selector, dkim_results AS result
    WHERE (domain, day) IN (SELECT domain, day FROM rollup_unsettled)
      AND report_key IN (SELECT report_key FROM aggregate_reports
                         WHERE (domain, day) IN (SELECT domain, day FROM rollup_unsettled))
)
GROUP BY day, domain, dkim_domain, selector;
