package web

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/analyze"
)

// The queries of this file read the documented views (docs/SQL.md) with
// SQL that SQLite and ClickHouse both take: plain SELECT, WHERE, GROUP BY,
// ORDER BY and LIMIT, days compared as 'YYYY-MM-DD' strings, every input a
// bound parameter. Values whose type differs between the stores (days,
// times, lists, figures) are scanned with analyze's dialect scanners.

// windowFigures is the mail of one domain over a window.
type windowFigures struct {
	Messages, DMARCPass, DKIMAligned, SPFAligned, Quarantined, Rejected int64
}

func (f windowFigures) PassRate() float64 { return ratio(f.DMARCPass, f.Messages) }

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// domainsInWindow sums the mail of every domain over w.
func domainsInWindow(ctx context.Context, q analyze.Querier, w analyze.Window) (map[string]windowFigures, error) {
	rows, err := q.Query(ctx, `
SELECT domain, SUM(messages), SUM(dmarc_pass), SUM(dkim_aligned), SUM(spf_aligned), SUM(quarantined), SUM(rejected)
FROM daily_domains
WHERE day >= ? AND day <= ?
GROUP BY domain`, w.From, w.To)
	if err != nil {
		return nil, fmt.Errorf("reading the domains' mail from %s to %s: %w", w.From, w.To, err)
	}
	defer rows.Close()
	out := map[string]windowFigures{}
	for rows.Next() {
		var d string
		var m, p, dk, sp, qu, re analyze.Count
		if err := rows.Scan(&d, &m, &p, &dk, &sp, &qu, &re); err != nil {
			return nil, fmt.Errorf("reading the domains' mail: %w", err)
		}
		out[d] = windowFigures{int64(m), int64(p), int64(dk), int64(sp), int64(qu), int64(re)}
	}
	return out, rows.Err()
}

// sourceKnown says whether ip ever sent mail as domain, in any report.
func sourceKnown(ctx context.Context, q analyze.Querier, domain, ip string) (bool, error) {
	rows, err := q.Query(ctx, `SELECT source_ip FROM daily_sources WHERE domain = ? AND source_ip = ? LIMIT 1`, domain, ip)
	if err != nil {
		return false, fmt.Errorf("looking for source %s of %s: %w", ip, domain, err)
	}
	defer rows.Close()
	found := rows.Next()
	return found, rows.Err()
}

// sourceRecord is one record of the records view.
type sourceRecord struct {
	Day          string
	Reporter     string
	ReportID     string
	Count        int64
	Disposition  string
	DKIM, SPF    string
	HeaderFrom   string
	EnvelopeFrom string
	EnvelopeTo   string
	Signatures   []signature
	SPFChecks    []spfCheck
	Overrides    []dmarcd.PolicyOverride
}

type signature struct{ Domain, Selector, Result string }
type spfCheck struct{ Domain, Scope, Result string }

// sourceRecords returns the records of ip for domain in w, newest first,
// at most limit.
func sourceRecords(ctx context.Context, q analyze.Querier, domain, ip string, w analyze.Window, limit int) ([]sourceRecord, error) {
	rows, err := q.Query(ctx, `
SELECT day, org_name, report_id, count, disposition, dkim, spf, header_from, envelope_from, envelope_to,
       dkim_domains, dkim_selectors, dkim_results, spf_domains, spf_scopes, spf_results, reasons
FROM records
WHERE domain = ? AND source_ip = ? AND day >= ? AND day <= ?
ORDER BY day DESC, org_name, report_id
LIMIT ?`, domain, ip, w.From, w.To, limit)
	if err != nil {
		return nil, fmt.Errorf("reading the records of %s for %s: %w", ip, domain, err)
	}
	defer rows.Close()
	var out []sourceRecord
	for rows.Next() {
		var r sourceRecord
		var day analyze.DayText
		var n analyze.Count
		var dd, ds, dr, sd, ss, sr analyze.TextList
		var reasons sql.NullString
		if err := rows.Scan(&day, &r.Reporter, &r.ReportID, &n, &r.Disposition, &r.DKIM, &r.SPF, &r.HeaderFrom, &r.EnvelopeFrom, &r.EnvelopeTo,
			&dd, &ds, &dr, &sd, &ss, &sr, &reasons); err != nil {
			return nil, fmt.Errorf("reading the records of %s for %s: %w", ip, domain, err)
		}
		r.Day, r.Count = string(day), int64(n)
		for i := range dd {
			r.Signatures = append(r.Signatures, signature{dd[i], at(ds, i), at(dr, i)})
		}
		for i := range sd {
			r.SPFChecks = append(r.SPFChecks, spfCheck{sd[i], at(ss, i), at(sr, i)})
		}
		if reasons.Valid && reasons.String != "" {
			// A malformed list is shown as none rather than failing the page.
			_ = json.Unmarshal([]byte(reasons.String), &r.Overrides)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func at(l []string, i int) string {
	if i < len(l) {
		return l[i]
	}
	return ""
}

// failureRow is one failure report as the list shows it: headers only.
type failureRow struct {
	ID              string
	Domain          string
	ReportFrom      string
	ArrivalDate     string
	ReceivedAt      string
	SourceIP        string
	AuthFailure     string
	DeliveryResult  string
	OriginalFrom    string
	OriginalSubject string
	MailFrom        string
}

// failureColumns are the columns of the list; never the body, which the
// failures view does not have.
const failureColumns = `id, domain, report_from, arrival_date, received_at, source_ip, auth_failure, delivery_result,
       original_from, original_subject, original_mail_from`

func scanFailureRow(rows *sql.Rows, extra ...any) (failureRow, error) {
	var f failureRow
	var id analyze.ID
	var arrival, received analyze.TimeText
	dest := append([]any{&id, &f.Domain, &f.ReportFrom, &arrival, &received, &f.SourceIP, &f.AuthFailure, &f.DeliveryResult,
		&f.OriginalFrom, &f.OriginalSubject, &f.MailFrom}, extra...)
	if err := rows.Scan(dest...); err != nil {
		return f, err
	}
	f.ID, f.ArrivalDate, f.ReceivedAt = string(id), string(arrival), string(received)
	return f, nil
}

// failureList returns one page of failure reports, newest first (by the
// arrival of the reported message, else when dmarcd read the report), and
// the number of them all. domain filters when not empty.
func failureList(ctx context.Context, q analyze.Querier, domain string, page int) ([]failureRow, int64, error) {
	where, args := "", []any{}
	if domain != "" {
		where, args = "WHERE domain = ?", append(args, domain)
	}
	rows, err := q.Query(ctx, "SELECT COUNT(*) FROM failures "+where, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("counting the failure reports: %w", err)
	}
	var total analyze.Count
	if rows.Next() {
		err = rows.Scan(&total)
	}
	rows.Close()
	if err != nil {
		return nil, 0, fmt.Errorf("counting the failure reports: %w", err)
	}
	rows, err = q.Query(ctx, "SELECT "+failureColumns+" FROM failures "+where+`
ORDER BY arrival_date DESC, received_at DESC, id DESC
LIMIT ? OFFSET ?`, append(args, FailuresPerPage, page*FailuresPerPage)...)
	if err != nil {
		return nil, 0, fmt.Errorf("reading the failure reports: %w", err)
	}
	defer rows.Close()
	var out []failureRow
	for rows.Next() {
		f, err := scanFailureRow(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("reading the failure reports: %w", err)
		}
		out = append(out, f)
	}
	return out, int64(total), rows.Err()
}

// failureDetail is one failure report with the reported message's header.
type failureDetail struct {
	failureRow
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

// failureByID returns the failure report with id, or nil. id is the
// decimal id of the view (a sequence in SQLite, a UInt64 hash in
// ClickHouse).
func failureByID(ctx context.Context, q analyze.Querier, id uint64) (*failureDetail, error) {
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
	var d failureDetail
	var reportDate analyze.TimeText
	var rcpt, auth, tol analyze.TextList
	f, err := scanFailureRow(rows, &d.ReportSubject, &reportDate, &d.FeedbackType, &d.UserAgent, &d.ReportedDomain, &rcpt, &d.IdentityAlignment,
		&d.DKIMDomain, &d.DKIMSelector, &auth, &d.OriginalTo, &d.OriginalMessageID, &d.OriginalHeaders, &tol, &d.Source)
	if err != nil {
		return nil, fmt.Errorf("reading failure report %d: %w", id, err)
	}
	d.failureRow, d.ReportDate, d.RcptTo, d.AuthResults, d.Tolerations = f, string(reportDate), rcpt, auth, tol
	return &d, nil
}

// failureCount counts the failure reports of domain.
func failureCount(ctx context.Context, q analyze.Querier, domain string) (int64, error) {
	rows, err := q.Query(ctx, `SELECT COUNT(*) FROM failures WHERE domain = ?`, domain)
	if err != nil {
		return 0, fmt.Errorf("counting the failure reports of %s: %w", domain, err)
	}
	defer rows.Close()
	var n analyze.Count
	if rows.Next() {
		if err := rows.Scan(&n); err != nil {
			return 0, err
		}
	}
	return int64(n), rows.Err()
}

// lastTLSDay is the last day of the TLS reports (about domain, when not
// empty), "" when there is none.
func lastTLSDay(ctx context.Context, q analyze.Querier, domain string) (string, error) {
	rows, err := q.Query(ctx, `SELECT MAX(day) FROM tls_policies WHERE (? = '' OR policy_domain = ?) HAVING COUNT(*) > 0`, domain, domain)
	if err != nil {
		return "", fmt.Errorf("reading the last TLS report: %w", err)
	}
	defer rows.Close()
	var day analyze.DayText
	if rows.Next() {
		if err := rows.Scan(&day); err != nil {
			return "", fmt.Errorf("reading the last TLS report: %w", err)
		}
	}
	return string(day), rows.Err()
}
