// Package analyze reads the stored reports and says how each domain and
// each sending source fares: volume, DMARC pass rate, DKIM- and SPF-aligned
// shares, and what receivers did with the mail.
//
// It is the one read layer of dmarcd: every query of the web pages, the
// advisor, the alert detectors and the commands is a function here that
// takes a Querier and returns typed results, reads the documented views
// (docs/SQL.md) with SQL that both stores accept (plain SELECT, WHERE,
// GROUP BY, ORDER BY and LIMIT, days compared as 'YYYY-MM-DD' text, every
// input a ? parameter), and scans the values whose Go types differ
// between the stores' drivers with the dialect scanners of scan.go. Where
// a caller shows rows in order or under a limit, the ORDER BY is total, so
// that both stores give the same rows. The conformance suite
// (schema/conformance) runs every such function on both stores with the
// report corpus and compares the answers; it fails when one is missing
// from its list.
package analyze

import (
	"context"
	"database/sql"
	"fmt"
)

// Querier runs read-only SQL; every dmarcd.Store is one.
type Querier interface {
	Query(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// DomainCompliance sums the aggregate reports of one policy domain.
type DomainCompliance struct {
	Domain      string
	FirstDay    string // YYYY-MM-DD of the earliest report
	LastDay     string
	Reports     int64
	Reporters   int64
	Messages    int64
	DMARCPass   int64 // aligned DKIM or aligned SPF passed
	DKIMAligned int64
	SPFAligned  int64
	Quarantined int64 // disposition applied by receivers
	Rejected    int64
}

// PassRate is the share of messages that passed DMARC, 0..1.
func (d DomainCompliance) PassRate() float64 { return ratio(d.DMARCPass, d.Messages) }

// DKIMRate is the share of messages with aligned, passing DKIM.
func (d DomainCompliance) DKIMRate() float64 { return ratio(d.DKIMAligned, d.Messages) }

// SPFRate is the share of messages with aligned, passing SPF.
func (d DomainCompliance) SPFRate() float64 { return ratio(d.SPFAligned, d.Messages) }

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Domains returns the compliance of every domain with reports, the most
// mail first. Where domains is not empty, only those.
func Domains(ctx context.Context, q Querier, domains ...string) ([]DomainCompliance, error) {
	rows, err := q.Query(ctx, `
SELECT domain, MIN(day), MAX(day), SUM(messages), SUM(dmarc_pass), SUM(dkim_aligned),
       SUM(spf_aligned), SUM(quarantined), SUM(rejected)
FROM daily_domains
GROUP BY domain
ORDER BY SUM(messages) DESC, domain`)
	if err != nil {
		return nil, fmt.Errorf("reading per-domain compliance: %w", err)
	}
	defer rows.Close()
	want := map[string]bool{}
	for _, d := range domains {
		want[d] = true
	}
	var out []DomainCompliance
	index := map[string]int{}
	for rows.Next() {
		var d DomainCompliance
		if err := rows.Scan(&d.Domain, (*DayText)(&d.FirstDay), (*DayText)(&d.LastDay), &d.Messages, &d.DMARCPass, &d.DKIMAligned,
			&d.SPFAligned, &d.Quarantined, &d.Rejected); err != nil {
			return nil, fmt.Errorf("reading per-domain compliance: %w", err)
		}
		if len(want) > 0 && !want[d.Domain] {
			continue
		}
		index[d.Domain] = len(out)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading per-domain compliance: %w", err)
	}
	rows.Close()

	rows, err = q.Query(ctx, `SELECT domain, COUNT(*), COUNT(DISTINCT org_name) FROM reports GROUP BY domain`)
	if err != nil {
		return nil, fmt.Errorf("reading reports per domain: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var domain string
		var reports, reporters int64
		if err := rows.Scan(&domain, &reports, &reporters); err != nil {
			return nil, fmt.Errorf("reading reports per domain: %w", err)
		}
		if i, ok := index[domain]; ok {
			out[i].Reports, out[i].Reporters = reports, reporters
		}
	}
	return out, rows.Err()
}

// DomainTotals sums the mail of every domain with reports in the window:
// the figures of analyze.Total, by domain, in one query for all of them
// (the front page shows every domain's row). Day is empty.
func DomainTotals(ctx context.Context, q Querier, w Window) (map[string]Day, error) {
	rows, err := q.Query(ctx, `
SELECT domain, SUM(messages), SUM(dmarc_pass), SUM(dkim_aligned), SUM(spf_aligned), SUM(quarantined), SUM(rejected)
FROM daily_domains
WHERE day >= ? AND day <= ?
GROUP BY domain`, w.From, w.To)
	if err != nil {
		return nil, fmt.Errorf("reading the domains' mail from %s to %s: %w", w.From, w.To, err)
	}
	defer rows.Close()
	out := map[string]Day{}
	for rows.Next() {
		var domain string
		var m, p, dk, sp, qu, re Count
		if err := rows.Scan(&domain, &m, &p, &dk, &sp, &qu, &re); err != nil {
			return nil, fmt.Errorf("reading the domains' mail from %s to %s: %w", w.From, w.To, err)
		}
		out[domain] = Day{Messages: int64(m), DMARCPass: int64(p), DKIMAligned: int64(dk), SPFAligned: int64(sp),
			Quarantined: int64(qu), Rejected: int64(re)}
	}
	return out, rows.Err()
}

// HasReports says whether any aggregate report is about domain (its
// policy domain, as the reporter wrote it).
func HasReports(ctx context.Context, q Querier, domain string) (bool, error) {
	rows, err := q.Query(ctx, `SELECT domain FROM reports WHERE domain = ? LIMIT 1`, domain)
	if err != nil {
		return false, fmt.Errorf("looking for reports about %s: %w", domain, err)
	}
	defer rows.Close()
	found := rows.Next()
	return found, rows.Err()
}
