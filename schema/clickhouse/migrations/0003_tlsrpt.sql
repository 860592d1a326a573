-- dmarcd ClickHouse store, schema version 3: SMTP TLS reports (RFC 8460),
-- the same tables and views as the embedded store's version 4
-- (schema/sqlite/migrations/0004_tlsrpt.sql). Works on ClickHouse 18.16 and
-- current releases.
--
-- A report is written as its failure details, its policies, then its row;
-- all three tables are ReplacingMergeTree ordered by the report key, and
-- the views read them with FINAL, so a report stored twice shows once. The
-- policies and failures carry the columns of their report the views show
-- (no JOIN: 18.16 takes one per SELECT, and they cost at every read).
-- Partitioned by the month of the report's first day, as the DMARC
-- reports, so that retention drops them with the same months.

CREATE TABLE IF NOT EXISTS tlsrpt_reports (
    report_key   String, -- digest of the reporter (lower case) and report id
    day          Date,   -- UTC date of date_begin
    domain       String, -- the policy domain of the first policy
    org_name     String,
    report_id    String,
    date_begin   DateTime('UTC'),
    date_end     DateTime('UTC'),
    contact_info String,
    policies     UInt32,
    successful   UInt64,
    failed       UInt64,
    tolerations  Array(String),
    source       String,
    part         String,
    message_id   String,
    received_at  DateTime('UTC')
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (domain, day, report_key);

CREATE TABLE IF NOT EXISTS tlsrpt_policies (
    report_key    String,
    day           Date,
    domain        String,
    org_name      String,
    report_id     String,
    seq           UInt32,
    policy_type   String,
    policy_domain String,
    policy_string Array(String),
    mx_hosts      Array(String),
    successful    UInt64,
    failed        UInt64
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (domain, day, report_key, seq);

CREATE TABLE IF NOT EXISTS tlsrpt_failures (
    report_key             String,
    day                    Date,
    domain                 String,
    org_name               String,
    report_id              String,
    policy_seq             UInt32,
    policy_type            String,
    policy_domain          String,
    seq                    UInt32,
    result_type            String,
    sending_mta_ip         String,
    receiving_mx_hostname  String,
    receiving_mx_helo      String,
    receiving_ip           String,
    failed_sessions        UInt64,
    additional_information String,
    failure_reason_code    String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (domain, day, report_key, policy_seq, seq);

CREATE VIEW IF NOT EXISTS tls_reports AS
SELECT report_key, org_name, report_id, domain, date_begin, date_end, day,
       contact_info, policies,
       successful AS successful_sessions, failed AS failed_sessions,
       tolerations, source, part, message_id, received_at
FROM tlsrpt_reports FINAL;

CREATE VIEW IF NOT EXISTS tls_policies AS
SELECT org_name, report_id, domain, day,
       seq, policy_type, policy_domain, policy_string, mx_hosts,
       successful AS successful_sessions, failed AS failed_sessions
FROM tlsrpt_policies FINAL;

CREATE VIEW IF NOT EXISTS tls_failures AS
SELECT org_name, report_id, domain, day, policy_type, policy_domain,
       result_type, sending_mta_ip, receiving_mx_hostname, receiving_mx_helo,
       receiving_ip, failed_sessions, failure_reason_code, additional_information
FROM tlsrpt_failures FINAL;
