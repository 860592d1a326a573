package analyze

import (
	"context"
	"fmt"
)

// TLSPolicy is what the SMTP TLS reports (RFC 8460) of a window say of one
// policy of a domain: how many sessions of the senders that report
// negotiated TLS under it, and how many failed.
type TLSPolicy struct {
	Domain     string // the policy domain
	Type       string // sts, tlsa, no-policy-found
	Reports    int64
	Reporters  int64
	Successful int64
	Failed     int64
}

// FailureRate is the share of failed sessions, 0..1.
func (p TLSPolicy) FailureRate() float64 { return ratio(p.Failed, p.Successful+p.Failed) }

// TLSFailure counts the failed sessions of one kind at one receiving host.
type TLSFailure struct {
	Domain      string
	ResultType  string // certificate-expired, starttls-not-supported, ...
	ReceivingMX string // the MX host name (or IP when the report gives no name)
	Sessions    int64
}

// TLS returns the TLS policies of the reports of the window (of domain
// only, when not empty), by domain and policy type, and their failures by
// kind and receiving host, the most failed sessions first.
func TLS(ctx context.Context, q Querier, domain string, w Window) ([]TLSPolicy, []TLSFailure, error) {
	rows, err := q.Query(ctx, `
SELECT policy_domain, policy_type, COUNT(*), COUNT(DISTINCT org_name), SUM(successful_sessions), SUM(failed_sessions)
FROM tls_policies
WHERE (? = '' OR policy_domain = ?) AND day >= ? AND day <= ?
GROUP BY policy_domain, policy_type
ORDER BY policy_domain, policy_type`, domain, domain, w.From, w.To)
	if err != nil {
		return nil, nil, fmt.Errorf("reading TLS reports: %w", err)
	}
	var policies []TLSPolicy
	for rows.Next() {
		var p TLSPolicy
		if err := rows.Scan(&p.Domain, &p.Type, &p.Reports, &p.Reporters, &p.Successful, &p.Failed); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("reading TLS reports: %w", err)
		}
		policies = append(policies, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("reading TLS reports: %w", err)
	}
	rows, err = q.Query(ctx, `
SELECT policy_domain, result_type, CASE WHEN receiving_mx_hostname = '' THEN receiving_ip ELSE receiving_mx_hostname END AS mx,
       SUM(failed_sessions)
FROM tls_failures
WHERE (? = '' OR policy_domain = ?) AND day >= ? AND day <= ?
GROUP BY policy_domain, result_type, mx
ORDER BY SUM(failed_sessions) DESC, policy_domain, result_type, mx`, domain, domain, w.From, w.To)
	if err != nil {
		return nil, nil, fmt.Errorf("reading TLS failures: %w", err)
	}
	defer rows.Close()
	var failures []TLSFailure
	for rows.Next() {
		var f TLSFailure
		if err := rows.Scan(&f.Domain, &f.ResultType, &f.ReceivingMX, &f.Sessions); err != nil {
			return nil, nil, fmt.Errorf("reading TLS failures: %w", err)
		}
		failures = append(failures, f)
	}
	return policies, failures, rows.Err()
}

// TLSLastDay is the last day of the TLS reports (with a policy of domain,
// when not ""), "" when there is none.
func TLSLastDay(ctx context.Context, q Querier, domain string) (string, error) {
	// HAVING: ClickHouse gives MAX over no rows as the zero Date, not NULL.
	rows, err := q.Query(ctx, `SELECT MAX(day) FROM tls_policies WHERE (? = '' OR policy_domain = ?) HAVING COUNT(*) > 0`, domain, domain)
	if err != nil {
		return "", fmt.Errorf("reading the last TLS report: %w", err)
	}
	defer rows.Close()
	var day DayText
	if rows.Next() {
		if err := rows.Scan(&day); err != nil {
			return "", fmt.Errorf("reading the last TLS report: %w", err)
		}
	}
	return string(day), rows.Err()
}
