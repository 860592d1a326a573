-- dmarcd embedded store, schema version 4: SMTP TLS reports (RFC 8460).
--
-- A TLS report holds one or more policies (MTA-STS, DANE TLSA, or none
-- found) with their session counts, and per policy the failures by kind,
-- sending server and receiving host. Users query the views tls_reports,
-- tls_policies and tls_failures (docs/SQL.md).

CREATE TABLE tlsrpt_reports (
    id           INTEGER PRIMARY KEY,
    -- A digest of the reporter (lower case) and its report id: a report
    -- arriving again is refused by this constraint.
    report_key   TEXT    NOT NULL UNIQUE,
    org_name     TEXT    NOT NULL,
    report_id    TEXT    NOT NULL,
    domain       TEXT    NOT NULL, -- the policy domain of the first policy
    date_begin   INTEGER NOT NULL,
    date_end     INTEGER NOT NULL,
    contact_info TEXT    NOT NULL,
    policies     INTEGER NOT NULL,
    successful   INTEGER NOT NULL, -- sessions, summed over the policies
    failed       INTEGER NOT NULL,
    tolerations  TEXT    NOT NULL, -- JSON array of codes
    source       TEXT    NOT NULL,
    part         TEXT    NOT NULL,
    message_id   TEXT    NOT NULL,
    received_at  INTEGER NOT NULL
);
CREATE INDEX tlsrpt_reports_domain_day ON tlsrpt_reports (domain, date_begin);

CREATE TABLE tlsrpt_policies (
    report        INTEGER NOT NULL REFERENCES tlsrpt_reports (id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL, -- position in the report, from 1
    policy_type   TEXT    NOT NULL,
    policy_domain TEXT    NOT NULL,
    policy_string TEXT    NOT NULL, -- JSON array
    mx_hosts      TEXT    NOT NULL, -- JSON array
    successful    INTEGER NOT NULL,
    failed        INTEGER NOT NULL,
    PRIMARY KEY (report, seq)
) WITHOUT ROWID;

CREATE TABLE tlsrpt_failures (
    report                 INTEGER NOT NULL REFERENCES tlsrpt_reports (id) ON DELETE CASCADE,
    policy_seq             INTEGER NOT NULL,
    seq                    INTEGER NOT NULL,
    result_type            TEXT    NOT NULL,
    sending_mta_ip         TEXT    NOT NULL,
    receiving_mx_hostname  TEXT    NOT NULL,
    receiving_mx_helo      TEXT    NOT NULL,
    receiving_ip           TEXT    NOT NULL,
    failed_sessions        INTEGER NOT NULL,
    additional_information TEXT    NOT NULL,
    failure_reason_code    TEXT    NOT NULL,
    PRIMARY KEY (report, policy_seq, seq)
) WITHOUT ROWID;

CREATE VIEW tls_reports AS
SELECT report_key, org_name, report_id, domain,
       datetime(date_begin, 'unixepoch') AS date_begin,
       datetime(date_end, 'unixepoch')   AS date_end,
       date(date_begin, 'unixepoch')     AS day,
       contact_info, policies,
       successful AS successful_sessions, failed AS failed_sessions,
       tolerations, source, part, message_id,
       datetime(received_at, 'unixepoch') AS received_at
FROM tlsrpt_reports;

CREATE VIEW tls_policies AS
SELECT r.org_name, r.report_id, r.domain,
       date(r.date_begin, 'unixepoch') AS day,
       p.seq, p.policy_type, p.policy_domain, p.policy_string, p.mx_hosts,
       p.successful AS successful_sessions, p.failed AS failed_sessions
FROM tlsrpt_reports r JOIN tlsrpt_policies p ON p.report = r.id;

CREATE VIEW tls_failures AS
SELECT r.org_name, r.report_id, r.domain,
       date(r.date_begin, 'unixepoch') AS day,
       p.policy_type, p.policy_domain,
       f.result_type, f.sending_mta_ip, f.receiving_mx_hostname, f.receiving_mx_helo,
       f.receiving_ip, f.failed_sessions, f.failure_reason_code, f.additional_information
FROM tlsrpt_reports r
JOIN tlsrpt_policies p ON p.report = r.id
JOIN tlsrpt_failures f ON f.report = r.id AND f.policy_seq = p.seq;
