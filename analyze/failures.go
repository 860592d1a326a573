package analyze

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strconv"
)

// Failure is one failure report (RFC 9991) as a list shows it: who
// reported which message, and why it failed. Never the reported message's
// body, which the failures view does not have.
type Failure struct {
	// ID is the decimal id of the failures view: a sequence in SQLite, a
	// UInt64 hash in ClickHouse, so the same report has another id in
	// each store.
	ID              string
	Domain          string
	ReportFrom      string
	ArrivalDate     string // YYYY-MM-DD HH:MM:SS UTC, "" when the report gives none
	ReceivedAt      string // when dmarcd read the report
	SourceIP        string
	AuthFailure     string
	DeliveryResult  string
	OriginalFrom    string
	OriginalSubject string
	MailFrom        string
}

// FailureDetail is one failure report with the header of the reported
// message.
type FailureDetail struct {
	Failure
	ReportSubject     string
	ReportDate        string
	FeedbackType      string
	UserAgent         string
	ReportedDomain    string
	RcptTo            []string
	IdentityAlignment string
	DKIMDomain        string
	DKIMSelector      string
	AuthResults       []string
	OriginalTo        string
	OriginalMessageID string
	OriginalHeaders   string
	Tolerations       []string
	Source            string
}

// failureColumns are the columns of a Failure, in the order of
// scanFailure.
const failureColumns = `id, domain, report_from, arrival_date, received_at, source_ip, auth_failure, delivery_result,
       original_from, original_subject, original_mail_from`

func scanFailure(rows *sql.Rows, extra ...any) (Failure, error) {
	var f Failure
	var id ID
	var arrival, received TimeText
	dest := append([]any{&id, &f.Domain, &f.ReportFrom, &arrival, &received, &f.SourceIP, &f.AuthFailure, &f.DeliveryResult,
		&f.OriginalFrom, &f.OriginalSubject, &f.MailFrom}, extra...)
	if err := rows.Scan(dest...); err != nil {
		return f, err
	}
	f.ID, f.ArrivalDate, f.ReceivedAt = string(id), string(arrival), string(received)
	return f, nil
}

// FailureCount counts the failure reports of domain, of all domains when
// domain is "".
func FailureCount(ctx context.Context, q Querier, domain string) (int64, error) {
	where, args := "", []any{}
	if domain != "" {
		where, args = "WHERE domain = ?", append(args, domain)
	}
	rows, err := q.Query(ctx, "SELECT COUNT(*) FROM failures "+where, args...)
	if err != nil {
		return 0, fmt.Errorf("counting the failure reports: %w", err)
	}
	defer rows.Close()
	var n Count
	if rows.Next() {
		if err := rows.Scan(&n); err != nil {
			return 0, fmt.Errorf("counting the failure reports: %w", err)
		}
	}
	return int64(n), rows.Err()
}

// Failures returns at most limit failure reports after the first offset,
// newest first: by the arrival of the reported message, else by when
// dmarcd read the report, else by the date of the report. domain filters
// when not "".
func Failures(ctx context.Context, q Querier, domain string, offset, limit int) ([]Failure, error) {
	where, args := "", []any{}
	if domain != "" {
		where, args = "WHERE domain = ?", append(args, domain)
	}
	// The order is the same in both stores up to the id, which differs
	// (a sequence, a hash): reports read at once without an arrival date
	// are told apart by what identifies them (dmarcd.FailureReport.Key)
	// first. NULLs sort last in DESC in both stores; a nullable column
	// sorts only DESC.
	rows, err := q.Query(ctx, "SELECT "+failureColumns+" FROM failures "+where+`
ORDER BY arrival_date DESC, received_at DESC, report_date DESC, report_from, reported_domain, source_ip, original_message_id,
         original_headers, id DESC
LIMIT ? OFFSET ?`, append(args, limit, offset)...)
	if err != nil {
		return nil, fmt.Errorf("reading the failure reports: %w", err)
	}
	defer rows.Close()
	var out []Failure
	for rows.Next() {
		f, err := scanFailure(rows)
		if err != nil {
			return nil, fmt.Errorf("reading the failure reports: %w", err)
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// FailureByID returns the failure report with id, nil when there is none.
// id is the decimal id of the failures view (Failure.ID).
func FailureByID(ctx context.Context, q Querier, id uint64) (*FailureDetail, error) {
	// database/sql takes no uint64 above the int64 range: such an id (a
	// ClickHouse hash) is compared as text.
	where, arg := "id = ?", any(int64(id))
	if id > math.MaxInt64 {
		where, arg = "CAST(id AS TEXT) = ?", strconv.FormatUint(id, 10)
	}
	rows, err := q.Query(ctx, "SELECT "+failureColumns+`,
       report_subject, report_date, feedback_type, user_agent, reported_domain, original_rcpt_to, identity_alignment,
       dkim_domain, dkim_selector, authentication_results, original_to, original_message_id, original_headers, tolerations, source
FROM failures
WHERE `+where+`
LIMIT 1`, arg)
	if err != nil {
		return nil, fmt.Errorf("reading failure report %d: %w", id, err)
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, rows.Err()
	}
	var d FailureDetail
	var reportDate TimeText
	var rcpt, auth, tol TextList
	f, err := scanFailure(rows, &d.ReportSubject, &reportDate, &d.FeedbackType, &d.UserAgent, &d.ReportedDomain, &rcpt, &d.IdentityAlignment,
		&d.DKIMDomain, &d.DKIMSelector, &auth, &d.OriginalTo, &d.OriginalMessageID, &d.OriginalHeaders, &tol, &d.Source)
	if err != nil {
		return nil, fmt.Errorf("reading failure report %d: %w", id, err)
	}
	d.Failure, d.ReportDate, d.RcptTo, d.AuthResults, d.Tolerations = f, string(reportDate), rcpt, auth, tol
	return &d, nil
}
