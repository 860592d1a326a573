package clickhouse

import (
	"context"
	"fmt"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/dmarcd/dmarcd"
)

var _ dmarcd.TLSStore = (*Store)(nil)

const (
	insertTLSReport = `INSERT INTO tlsrpt_reports (report_key, day, domain, org_name, report_id, date_begin, date_end,
	contact_info, policies, successful, failed, tolerations, source, part, message_id, received_at)`
	insertTLSPolicy = `INSERT INTO tlsrpt_policies (report_key, day, domain, org_name, report_id, seq, policy_type, policy_domain,
	policy_string, mx_hosts, successful, failed)`
	insertTLSFailure = `INSERT INTO tlsrpt_failures (report_key, day, domain, org_name, report_id, policy_seq, policy_type, policy_domain,
	seq, result_type, sending_mta_ip, receiving_mx_hostname, receiving_mx_helo, receiving_ip, failed_sessions,
	additional_information, failure_reason_code)`
)

// listTLSKeys lists the keys of a domain's TLS reports of a month
// (known.go).
const listTLSKeys = `SELECT report_key FROM tlsrpt_reports WHERE domain = ? AND day >= toDate(?) AND day < toDate(?)`

// pendingTLS is a TLS report waiting in the group: the rows of its
// failure details, of its policies, and its own, in the column orders of
// insertTLSFailure, insertTLSPolicy and insertTLSReport.
type pendingTLS struct {
	key, domain string
	day         time.Time
	what        string // for errors
	failures    [][]any
	policies    [][]any
	row         []any
}

// AddTLSReport hands a TLS report to the group of grouped writes (see
// group.go), unless one with the same key is stored or waits there
// (ErrDuplicate): it is stored when the group is written (Flush), its
// failure details and policies first, then its row, which makes it a
// report of the tls_reports view. It is looked for among the keys of its
// partition (known.go), and the group again before it is written; two
// processes writing it at the same moment both store it, and the views
// show it once.
func (s *Store) AddTLSReport(ctx context.Context, r *dmarcd.TLSReport, o dmarcd.Origin) error {
	key, domain := r.Key(), r.Domain()
	what := fmt.Sprintf("TLS report %s from %s", r.ReportID, r.OrganizationName)
	if s.group.pendingTLSReport(key) {
		return dmarcd.ErrDuplicate
	}
	day := utcDay(r.DateBegin)
	dup, err := s.maybeStored(ctx, partitionOf("tlsrpt_reports", domain, day), key, func(ctx context.Context) ([]string, error) {
		return s.listKeys(ctx, listTLSKeys, domain, day)
	})
	if err == nil && dup {
		var n uint64
		err = s.conn.QueryRow(ctx, "SELECT count() FROM tlsrpt_reports WHERE domain = ? AND report_key = ?", domain, key).Scan(&n)
		dup = n > 0
	}
	if err != nil {
		return fmt.Errorf("looking for %s: %w", what, err)
	}
	if dup {
		return dmarcd.ErrDuplicate
	}
	p := &pendingTLS{key: key, domain: domain, day: day, what: what}
	var ok, failed uint64
	for i, pol := range r.Policies {
		ok += uint64(pol.SuccessfulSessions)
		failed += uint64(pol.FailedSessions)
		for j, f := range pol.FailureDetails {
			p.failures = append(p.failures, []any{key, day, domain, r.OrganizationName, r.ReportID, uint32(i + 1), pol.Type, pol.Domain,
				uint32(j + 1), f.ResultType, f.SendingMTAIP, f.ReceivingMXHostname, f.ReceivingMXHelo, f.ReceivingIP,
				uint64(f.FailedSessions), f.AdditionalInformation, f.FailureReasonCode})
		}
		p.policies = append(p.policies, []any{key, day, domain, r.OrganizationName, r.ReportID, uint32(i + 1), pol.Type, pol.Domain,
			nonNil(pol.String), nonNil(pol.MXHosts), uint64(pol.SuccessfulSessions), uint64(pol.FailedSessions)})
	}
	p.row = []any{key, day, domain, r.OrganizationName, r.ReportID, r.DateBegin.UTC(), r.DateEnd.UTC(),
		r.ContactInfo, uint32(len(r.Policies)), ok, failed, nonNil(r.Tolerations), o.Source, o.Part, o.MessageID, o.ReceivedAt.UTC()}

	g := &s.group
	g.mu.Lock()
	defer g.mu.Unlock()
	if s.overfull(g) {
		// A write failed before and left the group full.
		if err := s.write(ctx); err != nil {
			return fmt.Errorf("storing %s: %w", what, err)
		}
	}
	if g.tlsKeys[key] {
		return dmarcd.ErrDuplicate
	}
	if g.empty() {
		g.oldest = time.Now()
	}
	if g.tlsKeys == nil {
		g.tlsKeys = map[string]bool{}
	}
	g.tls = append(g.tls, p)
	g.tlsKeys[key] = true
	g.tlsRows += len(p.failures) + len(p.policies)
	if s.full(g) {
		if err := s.write(ctx); err != nil {
			return fmt.Errorf("storing %s: %w", what, err)
		}
	}
	return nil
}

// writeTLS writes the TLS reports of the group: the failure details of all
// in one batch, their policies in another, their rows in a third. Reports
// stored already (by another process, or by a write of the group that
// failed after the server took it) are dropped first; a write that fails
// keeps the group, to be written again whole; g.mu is held.
func (s *Store) writeTLS(ctx context.Context) error {
	g := &s.group
	var domains, keys ch.GroupSet
	seen := map[string]bool{}
	for _, p := range g.tls {
		if !seen[p.domain] {
			seen[p.domain] = true
			domains.Value = append(domains.Value, p.domain)
		}
		keys.Value = append(keys.Value, p.key)
	}
	what := fmt.Sprintf("%d TLS reports from %s", len(g.tls), g.tls[0].what)
	stored, err := s.storedKeys(ctx, `SELECT DISTINCT report_key FROM tlsrpt_reports WHERE domain IN ? AND report_key IN ?`, domains, keys)
	if err != nil {
		return fmt.Errorf("storing %s: asking which are stored already: %w", what, err)
	}
	var failures, policies, rows [][]any
	for _, p := range g.tls {
		if stored[p.key] {
			continue
		}
		failures = append(failures, p.failures...)
		policies = append(policies, p.policies...)
		rows = append(rows, p.row)
	}
	for _, t := range []struct {
		insert, what string
		rows         [][]any
	}{
		{insertTLSFailure, "the failure details of ", failures},
		{insertTLSPolicy, "the policies of ", policies},
		{insertTLSReport, "", rows},
	} {
		if err := s.insertBatch(ctx, t.insert, t.rows); err != nil {
			return fmt.Errorf("storing %s%s: %w", t.what, what, err)
		}
	}
	for _, p := range g.tls {
		s.remember(partitionOf("tlsrpt_reports", p.domain, p.day), p.key)
	}
	g.tls, g.tlsKeys, g.tlsRows = nil, nil, 0
	return nil
}
