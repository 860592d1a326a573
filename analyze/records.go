package analyze

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/dmarcd/dmarcd"
)

// SourceRecord is one record of the records view: what one reporter saw
// of the mail of one source on one day, with its authentication results.
type SourceRecord struct {
	Day          string // YYYY-MM-DD
	Reporter     string // org_name
	ReportID     string
	Count        int64
	Disposition  string
	DKIM, SPF    string // the DMARC evaluation: aligned DKIM, aligned SPF
	HeaderFrom   string
	EnvelopeFrom string
	EnvelopeTo   string
	Signatures   []DKIMSignature
	SPFChecks    []SPFCheck
	// Overrides are the reporter's reasons for applying another policy
	// (forwarded, sampled_out ...); none when the column holds no valid
	// list.
	Overrides []dmarcd.PolicyOverride
}

// DKIMSignature is the result of one DKIM signature of a record.
type DKIMSignature struct{ Domain, Selector, Result string }

// SPFCheck is the result of one SPF check of a record.
type SPFCheck struct{ Domain, Scope, Result string }

// SourceSeen says whether ip ever sent mail as domain, in any report.
func SourceSeen(ctx context.Context, q Querier, domain, ip string) (bool, error) {
	rows, err := q.Query(ctx, `SELECT source_ip FROM daily_sources WHERE domain = ? AND source_ip = ? LIMIT 1`, domain, ip)
	if err != nil {
		return false, fmt.Errorf("looking for source %s of %s: %w", ip, domain, err)
	}
	defer rows.Close()
	found := rows.Next()
	return found, rows.Err()
}

// SourceRecords returns the records of ip for domain in the window, newest
// first, at most limit. The order is total (a report may hold several
// records of one source: its key and their seq tell them apart), so that
// both stores keep the same records under the limit.
func SourceRecords(ctx context.Context, q Querier, domain, ip string, w Window, limit int) ([]SourceRecord, error) {
	rows, err := q.Query(ctx, `
SELECT day, org_name, report_id, count, disposition, dkim, spf, header_from, envelope_from, envelope_to,
       dkim_domains, dkim_selectors, dkim_results, spf_domains, spf_scopes, spf_results, reasons
FROM records
WHERE domain = ? AND source_ip = ? AND day >= ? AND day <= ?
ORDER BY day DESC, org_name, report_id, report_key, seq
LIMIT ?`, domain, ip, w.From, w.To, limit)
	if err != nil {
		return nil, fmt.Errorf("reading the records of %s for %s: %w", ip, domain, err)
	}
	defer rows.Close()
	var out []SourceRecord
	for rows.Next() {
		var r SourceRecord
		var day DayText
		var n Count
		var dd, ds, dr, sd, ss, sr TextList
		var reasons string
		if err := rows.Scan(&day, &r.Reporter, &r.ReportID, &n, &r.Disposition, &r.DKIM, &r.SPF, &r.HeaderFrom, &r.EnvelopeFrom, &r.EnvelopeTo,
			&dd, &ds, &dr, &sd, &ss, &sr, &reasons); err != nil {
			return nil, fmt.Errorf("reading the records of %s for %s: %w", ip, domain, err)
		}
		r.Day, r.Count = string(day), int64(n)
		for i := range dd {
			r.Signatures = append(r.Signatures, DKIMSignature{dd[i], at(ds, i), at(dr, i)})
		}
		for i := range sd {
			r.SPFChecks = append(r.SPFChecks, SPFCheck{sd[i], at(ss, i), at(sr, i)})
		}
		if reasons != "" {
			// A malformed list is shown as none rather than failing the
			// page that lists the records.
			_ = json.Unmarshal([]byte(reasons), &r.Overrides)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
