package sqlite

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/dmarcd/dmarcd"
)

const insertFailure = `INSERT INTO failure_reports (
	report_key, domain, report_from, report_subject, report_date, report_message_id,
	feedback_type, version, user_agent, reported_domain, source_ip,
	original_mail_from, original_rcpt_to, arrival_date, arrival_date_text,
	auth_failure, delivery_result, identity_alignment,
	dkim_domain, dkim_identity, dkim_selector, spf_dns,
	authentication_results, reported_uri, incidents, fields,
	original_part_type, original_headers, original_from, original_to,
	original_subject, original_message_id, original_date, original_body,
	tolerations, source, part, received_at
) VALUES (?,?,?,?,?,?, ?,?,?,?,?, ?,?,?,?, ?,?,?, ?,?,?,?, ?,?,?,?, ?,?,?,?, ?,?,?,?, ?,?,?,?)
ON CONFLICT (report_key) DO NOTHING`

// AddFailure stores a failure report in the open group (group.go), unless
// one with the same key is stored or waiting in the group (ErrDuplicate).
func (s *Store) AddFailure(ctx context.Context, f *dmarcd.FailureReport, o dmarcd.Origin) error {
	fields := make([][2]string, len(f.Fields))
	for i, fl := range f.Fields {
		fields[i] = [2]string{fl.Name, fl.Value}
	}
	fieldsJSON, err := json.Marshal(fields)
	if err != nil {
		return err
	}
	var body any
	if f.OriginalBody != nil {
		body = f.OriginalBody
	}
	tx, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("storing failure report from %s about %s: %w", f.ReportFrom, f.Domain(), err)
	}
	key := f.Key()
	res, err := s.exec(context.WithoutCancel(ctx), tx, insertFailure,
		key, f.Domain(), f.ReportFrom, f.ReportSubject, unixOrNil(f.ReportDate), f.ReportMessageID,
		f.FeedbackType, f.Version, f.UserAgent, f.ReportedDomain, f.SourceIP,
		f.OriginalMailFrom, jsonArray(f.OriginalRcptTo), unixOrNil(f.ArrivalDate), f.ArrivalDateText,
		f.AuthFailure, f.DeliveryResult, f.IdentityAlignment,
		f.DKIMDomain, f.DKIMIdentity, f.DKIMSelector, f.SPFDNS,
		jsonArray(f.AuthenticationResults), jsonArray(f.ReportedURI), f.Incidents, string(fieldsJSON),
		f.OriginalPartType, f.OriginalHeaders, f.OriginalFrom, f.OriginalTo,
		f.OriginalSubject, f.OriginalMessageID, f.OriginalDate, body,
		jsonArray(f.Tolerations), o.Source, o.Part, o.ReceivedAt.Unix())
	if err != nil {
		return fmt.Errorf("storing failure report from %s about %s: %w", f.ReportFrom, f.Domain(), s.lose(err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		s.found(key)
		s.end(key, 0, false)
		return dmarcd.ErrDuplicate
	}
	if err := s.end(key, 0, true); err != nil {
		return fmt.Errorf("storing failure report from %s about %s: %w", f.ReportFrom, f.Domain(), err)
	}
	return nil
}

// Quarantine keeps input that could not be parsed; the same bytes are kept
// once.
func (s *Store) Quarantine(ctx context.Context, q dmarcd.Quarantined) error {
	sum := sha256.Sum256(q.Raw)
	release := s.settle()
	defer release()
	_, err := s.db.ExecContext(ctx, `INSERT INTO quarantine (sha256, reason, source, part, message_id, received_at, size, raw)
VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (sha256) DO NOTHING`,
		hex.EncodeToString(sum[:]), q.Reason, q.Origin.Source, q.Origin.Part, q.Origin.MessageID,
		q.Origin.ReceivedAt.Unix(), len(q.Raw), q.Raw)
	if err != nil {
		return fmt.Errorf("quarantining %s: %w", q.Origin.Source, err)
	}
	return nil
}

func unixOrNil(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.Unix()
}
