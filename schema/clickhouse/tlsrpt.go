package clickhouse

import (
	"context"
	"fmt"

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

// AddTLSReport stores a TLS report unless one with the same key is stored
// (ErrDuplicate): its failure details, its policies, then its row, which
// makes it a report of the tls_reports view. TLS reports are few (one per
// reporter and day) and are written at once, not grouped. The check and
// the inserts are not atomic: two racing writers both store it, and the
// views show it once.
func (s *Store) AddTLSReport(ctx context.Context, r *dmarcd.TLSReport, o dmarcd.Origin) error {
	key, domain := r.Key(), r.Domain()
	what := fmt.Sprintf("TLS report %s from %s", r.ReportID, r.OrganizationName)
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM tlsrpt_reports WHERE domain = ? AND report_key = ?", domain, key).Scan(&n); err != nil {
		return fmt.Errorf("looking for %s: %w", what, err)
	}
	if n > 0 {
		return dmarcd.ErrDuplicate
	}
	day := utcDay(r.DateBegin)
	var ok, failed uint64
	var details int
	for _, p := range r.Policies {
		ok += uint64(p.SuccessfulSessions)
		failed += uint64(p.FailedSessions)
		details += len(p.FailureDetails)
	}
	if details > 0 {
		b, err := s.conn.PrepareBatch(ctx, insertTLSFailure)
		if err != nil {
			return fmt.Errorf("storing %s: %w", what, err)
		}
		for i, p := range r.Policies {
			for j, f := range p.FailureDetails {
				if err := b.Append(key, day, domain, r.OrganizationName, r.ReportID, uint32(i+1), p.Type, p.Domain,
					uint32(j+1), f.ResultType, f.SendingMTAIP, f.ReceivingMXHostname, f.ReceivingMXHelo, f.ReceivingIP,
					uint64(f.FailedSessions), f.AdditionalInformation, f.FailureReasonCode); err != nil {
					b.Abort()
					return fmt.Errorf("storing %s: %w", what, err)
				}
			}
		}
		if err := b.Send(); err != nil {
			return fmt.Errorf("storing the failure details of %s: %w", what, err)
		}
	}
	b, err := s.conn.PrepareBatch(ctx, insertTLSPolicy)
	if err != nil {
		return fmt.Errorf("storing %s: %w", what, err)
	}
	for i, p := range r.Policies {
		if err := b.Append(key, day, domain, r.OrganizationName, r.ReportID, uint32(i+1), p.Type, p.Domain,
			nonNil(p.String), nonNil(p.MXHosts), uint64(p.SuccessfulSessions), uint64(p.FailedSessions)); err != nil {
			b.Abort()
			return fmt.Errorf("storing %s: %w", what, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("storing the policies of %s: %w", what, err)
	}
	err = s.insertRow(ctx, insertTLSReport, key, day, domain, r.OrganizationName, r.ReportID, r.DateBegin.UTC(), r.DateEnd.UTC(),
		r.ContactInfo, uint32(len(r.Policies)), ok, failed, nonNil(r.Tolerations), o.Source, o.Part, o.MessageID, o.ReceivedAt.UTC())
	if err != nil {
		return fmt.Errorf("storing %s: %w", what, err)
	}
	return nil
}
