package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/dmarcd/dmarcd"
)

var _ dmarcd.TLSStore = (*Store)(nil)

// AddTLSReport stores a TLS report, its policies and their failure
// details in the open group (group.go), unless one with the same key is
// stored or waiting in the group (ErrDuplicate).
func (s *Store) AddTLSReport(ctx context.Context, r *dmarcd.TLSReport, o dmarcd.Origin) error {
	tx, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("storing TLS report %s from %s: %w", r.ReportID, r.OrganizationName, err)
	}
	key := r.Key()
	switch err := addTLSReport(context.WithoutCancel(ctx), tx, key, r, o); {
	case errors.Is(err, dmarcd.ErrDuplicate):
		s.found(key)
		s.end(key, 0, false)
		return err
	case err != nil:
		return fmt.Errorf("storing TLS report %s from %s: %w", r.ReportID, r.OrganizationName, s.lose(err))
	}
	if err := s.end(key, 0, true); err != nil {
		return fmt.Errorf("storing TLS report %s from %s: %w", r.ReportID, r.OrganizationName, err)
	}
	return nil
}

// addTLSReport writes the rows of a TLS report in tx.
func addTLSReport(ctx context.Context, tx *sql.Tx, key string, r *dmarcd.TLSReport, o dmarcd.Origin) error {
	var ok, failed int64
	for _, p := range r.Policies {
		ok += p.SuccessfulSessions
		failed += p.FailedSessions
	}
	var id int64
	err := tx.QueryRowContext(ctx, `INSERT INTO tlsrpt_reports (report_key, org_name, report_id, domain, date_begin, date_end,
    contact_info, policies, successful, failed, tolerations, source, part, message_id, received_at)
VALUES (?,?,?,?,?,?, ?,?,?,?,?,?,?,?,?) ON CONFLICT (report_key) DO NOTHING RETURNING id`,
		key, r.OrganizationName, r.ReportID, r.Domain(), r.DateBegin.Unix(), r.DateEnd.Unix(),
		r.ContactInfo, len(r.Policies), ok, failed, jsonArray(r.Tolerations), o.Source, o.Part, o.MessageID, o.ReceivedAt.Unix()).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return dmarcd.ErrDuplicate
	}
	if err != nil {
		return err
	}
	for i, p := range r.Policies {
		if _, err := tx.ExecContext(ctx, `INSERT INTO tlsrpt_policies (report, seq, policy_type, policy_domain, policy_string, mx_hosts, successful, failed)
VALUES (?,?,?,?,?,?,?,?)`, id, i+1, p.Type, p.Domain, jsonArray(p.String), jsonArray(p.MXHosts), p.SuccessfulSessions, p.FailedSessions); err != nil {
			return fmt.Errorf("policy %d: %w", i+1, err)
		}
		for j, f := range p.FailureDetails {
			if _, err := tx.ExecContext(ctx, `INSERT INTO tlsrpt_failures (report, policy_seq, seq, result_type, sending_mta_ip,
    receiving_mx_hostname, receiving_mx_helo, receiving_ip, failed_sessions, additional_information, failure_reason_code)
VALUES (?,?,?,?,?,?,?,?,?,?,?)`, id, i+1, j+1, f.ResultType, f.SendingMTAIP, f.ReceivingMXHostname, f.ReceivingMXHelo,
				f.ReceivingIP, f.FailedSessions, f.AdditionalInformation, f.FailureReasonCode); err != nil {
				return fmt.Errorf("policy %d, failure detail %d: %w", i+1, j+1, err)
			}
		}
	}
	return nil
}
