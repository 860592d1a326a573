package clickhouse

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/dmarcd/dmarcd"
)

const insertFailure = `INSERT INTO failure_reports (
	report_key, day, domain, report_from, report_subject, report_date, report_message_id,
	feedback_type, version, user_agent, reported_domain, source_ip,
	original_mail_from, original_rcpt_to, arrival_date, arrival_date_text,
	auth_failure, delivery_result, identity_alignment,
	dkim_domain, dkim_identity, dkim_selector, spf_dns,
	authentication_results, reported_uri, incidents, field_names, field_values,
	original_part_type, original_headers, original_from, original_to,
	original_subject, original_message_id, original_date, original_body,
	tolerations, source, part, received_at)`

// listFailureKeys lists the keys of a domain's failure reports of a month
// (known.go).
const listFailureKeys = `SELECT report_key FROM failure_reports WHERE domain = ? AND day >= toDate(?) AND day < toDate(?)`

const insertQuarantine = `INSERT INTO quarantine (sha256, day, reason, source, part, message_id, received_at, size, raw)`

// AddFailure hands a failure report to the group of grouped writes (see
// group.go), unless one with the same key is stored or waits there
// (ErrDuplicate): it is stored when the group is written (Flush). A report
// with an arrival date and a reported domain, both part of its key, is
// looked for among the keys of its partition (known.go); another is looked
// for by a query of its own. The group is checked again before it is
// written, so that a copy another process stored meanwhile is not written
// again; two processes writing at the same moment both store it, and the
// failures view shows it once.
func (s *Store) AddFailure(ctx context.Context, f *dmarcd.FailureReport, o dmarcd.Origin) error {
	key := f.Key()
	if s.group.pendingFailure(key) {
		return dmarcd.ErrDuplicate
	}
	// The partition: a date of the report itself where there is one, so
	// that copies of it fall in the same partition and merge.
	day := f.ArrivalDate
	if day.IsZero() {
		day = f.ReportDate
	}
	if day.IsZero() {
		day = o.ReceivedAt
	}
	day = utcDay(day)
	dup := true
	var err error
	if !f.ArrivalDate.IsZero() && f.ReportedDomain != "" {
		dup, err = s.maybeStored(ctx, partitionOf("failure_reports", f.Domain(), day), key, func(ctx context.Context) ([]string, error) {
			return s.listKeys(ctx, listFailureKeys, f.Domain(), day)
		})
	}
	if err == nil && dup {
		var n uint64
		err = s.conn.QueryRow(ctx, "SELECT count() FROM failure_reports WHERE report_key = ?", key).Scan(&n)
		dup = n > 0
	}
	if err != nil {
		return fmt.Errorf("looking for failure report from %s about %s: %w", f.ReportFrom, f.Domain(), err)
	}
	if dup {
		return dmarcd.ErrDuplicate
	}
	names, values := make([]string, len(f.Fields)), make([]string, len(f.Fields))
	for i, fl := range f.Fields {
		names[i], values[i] = fl.Name, fl.Value
	}
	var body *string
	if f.OriginalBody != nil {
		b := string(f.OriginalBody)
		body = &b
	}
	row := []any{
		key, day, f.Domain(), f.ReportFrom, f.ReportSubject, timeOrNil(f.ReportDate), f.ReportMessageID,
		f.FeedbackType, f.Version, f.UserAgent, f.ReportedDomain, f.SourceIP,
		f.OriginalMailFrom, nonNil(f.OriginalRcptTo), timeOrNil(f.ArrivalDate), f.ArrivalDateText,
		f.AuthFailure, f.DeliveryResult, f.IdentityAlignment,
		f.DKIMDomain, f.DKIMIdentity, f.DKIMSelector, f.SPFDNS,
		nonNil(f.AuthenticationResults), nonNil(f.ReportedURI), uint64(max(f.Incidents, 0)), names, values,
		f.OriginalPartType, f.OriginalHeaders, f.OriginalFrom, f.OriginalTo,
		f.OriginalSubject, f.OriginalMessageID, f.OriginalDate, body,
		nonNil(f.Tolerations), o.Source, o.Part, o.ReceivedAt.UTC()}
	size := len(f.OriginalHeaders) + len(f.OriginalBody)
	for _, fl := range f.Fields {
		size += len(fl.Name) + len(fl.Value)
	}

	g := &s.group
	g.mu.Lock()
	defer g.mu.Unlock()
	if s.overfull(g) {
		// A write failed before and left the group full.
		if err := s.write(ctx); err != nil {
			return fmt.Errorf("storing failure report from %s about %s: %w", f.ReportFrom, f.Domain(), err)
		}
	}
	if g.failureKeys[key] {
		return dmarcd.ErrDuplicate
	}
	if g.empty() {
		g.oldest = time.Now()
	}
	if g.failureKeys == nil {
		g.failureKeys = map[string]bool{}
	}
	g.failures = append(g.failures, row)
	g.failureKeys[key] = true
	g.failureBytes += size
	if s.full(g) {
		if err := s.write(ctx); err != nil {
			return fmt.Errorf("storing failure report from %s about %s: %w", f.ReportFrom, f.Domain(), err)
		}
	}
	return nil
}

// insertFailures inserts the rows of failure reports in one batch.
func (s *Store) insertFailures(ctx context.Context, rows [][]any) error {
	return s.insertBatch(ctx, insertFailure, rows)
}

// insertBatch inserts rows in one batch; none is nothing. A row's error
// names its first value, the report's key.
func (s *Store) insertBatch(ctx context.Context, insert string, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	b, err := s.conn.PrepareBatch(ctx, insert)
	if err != nil {
		return err
	}
	for _, row := range rows {
		if err := b.Append(row...); err != nil {
			b.Abort()
			return fmt.Errorf("report %s: %w", row[0], err)
		}
	}
	return b.Send()
}

// Quarantine keeps input that could not be parsed; the same bytes are kept
// once.
func (s *Store) Quarantine(ctx context.Context, q dmarcd.Quarantined) error {
	sum := sha256.Sum256(q.Raw)
	digest := hex.EncodeToString(sum[:])
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM quarantine WHERE sha256 = ?", digest).Scan(&n); err != nil {
		return fmt.Errorf("quarantining %s: %w", q.Origin.Source, err)
	}
	if n > 0 {
		return nil
	}
	err := s.insertRow(ctx, insertQuarantine, digest, utcDay(q.Origin.ReceivedAt), q.Reason,
		q.Origin.Source, q.Origin.Part, q.Origin.MessageID, q.Origin.ReceivedAt.UTC(), uint64(len(q.Raw)), string(q.Raw))
	if err != nil {
		return fmt.Errorf("quarantining %s: %w", q.Origin.Source, err)
	}
	return nil
}

// insertRow inserts one row with a batch: Exec of INSERT ... VALUES hangs
// on 18.16.
func (s *Store) insertRow(ctx context.Context, insert string, values ...any) error {
	b, err := s.conn.PrepareBatch(ctx, insert)
	if err != nil {
		return err
	}
	if err := b.Append(values...); err != nil {
		b.Abort()
		return err
	}
	return b.Send()
}

// utcDay is the UTC date of t, as a midnight time for a Date column.
func utcDay(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
