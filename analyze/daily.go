package analyze

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/dmarcd/dmarcd"
)

// Day is the compliance of one domain on one day.
type Day struct {
	Day         string // YYYY-MM-DD
	Messages    int64
	DMARCPass   int64
	DKIMAligned int64
	SPFAligned  int64
	Quarantined int64 // disposition applied by receivers
	Rejected    int64
}

// PassRate is the share of messages that passed DMARC, 0..1.
func (d Day) PassRate() float64 { return ratio(d.DMARCPass, d.Messages) }

// DKIMRate and SPFRate are the shares of messages with aligned, passing
// DKIM and SPF.
func (d Day) DKIMRate() float64 { return ratio(d.DKIMAligned, d.Messages) }
func (d Day) SPFRate() float64  { return ratio(d.SPFAligned, d.Messages) }

// Window is a range of days, both ends included, as YYYY-MM-DD.
type Window struct {
	From, To string
}

// Daily returns the compliance of domain for each day of the window that
// has reports, oldest first.
func Daily(ctx context.Context, q Querier, domain string, w Window) ([]Day, error) {
	rows, err := q.Query(ctx, `
SELECT day, SUM(messages), SUM(dmarc_pass), SUM(dkim_aligned), SUM(spf_aligned), SUM(quarantined), SUM(rejected)
FROM daily_domains
WHERE domain = ? AND day >= ? AND day <= ?
GROUP BY day
ORDER BY day`, domain, w.From, w.To)
	if err != nil {
		return nil, fmt.Errorf("reading daily compliance of %s: %w", domain, err)
	}
	defer rows.Close()
	var out []Day
	for rows.Next() {
		var d Day
		var day DayText
		if err := rows.Scan(&day, &d.Messages, &d.DMARCPass, &d.DKIMAligned, &d.SPFAligned, &d.Quarantined, &d.Rejected); err != nil {
			return nil, fmt.Errorf("reading daily compliance of %s: %w", domain, err)
		}
		d.Day = string(day)
		out = append(out, d)
	}
	return out, rows.Err()
}

// Total sums days.
func Total(days []Day) Day {
	var t Day
	for _, d := range days {
		t.Messages += d.Messages
		t.DMARCPass += d.DMARCPass
		t.DKIMAligned += d.DKIMAligned
		t.SPFAligned += d.SPFAligned
		t.Quarantined += d.Quarantined
		t.Rejected += d.Rejected
	}
	if len(days) > 0 {
		t.Day = days[0].Day + ".." + days[len(days)-1].Day
	}
	return t
}

// PublishedDay is the policy receivers saw published on one day, as their
// reports say (policy_published), with the reports' volume.
type PublishedDay struct {
	Day string
	P   string
	// Pct is the pct of the reports, 100 when they carry none; HasPct
	// says whether they did (RFC 7489 reports do, RFC 9990 reports
	// dropped it).
	Pct     int
	HasPct  bool
	Testing string
	// Messages is the mail of the reports under this policy.
	Messages int64
	// RFC7489 and RFC9990 say which report formats the day's reports
	// came in (all of them, not only the policy kept): a report with pct
	// and no testing is of RFC 7489, whose schema requires pct; the
	// others of RFC 9990.
	RFC7489, RFC9990 bool
}

// Step is the rollout step the policy is at: p and pct, none for p=none
// or a p that is not a policy.
func (d PublishedDay) Step() dmarcd.RolloutStep {
	s := dmarcd.RolloutStep{Policy: dmarcd.Policy(strings.ToLower(d.P)), Percent: d.Pct}
	if s.Policy != dmarcd.PolicyQuarantine && s.Policy != dmarcd.PolicyReject {
		s = dmarcd.RolloutStep{Policy: dmarcd.PolicyNone, Percent: 100}
	}
	return s
}

// Matches says whether the reports of the day saw the step with testing:
// the same policy, the same pct where they carry one, the same testing
// where they carry it. RFC 9990 reports carry no pct, so they match any
// percentage of their policy; RFC 7489 reports carry no testing.
func (d PublishedDay) Matches(step dmarcd.RolloutStep, testing bool) bool {
	seen := d.Step()
	if seen.Policy != step.Policy {
		return false
	}
	if seen.Policy == dmarcd.PolicyNone {
		return true
	}
	if d.HasPct && seen.Percent != step.Percent {
		return false
	}
	return d.Testing == "" || (d.Testing == "y") == testing
}

// Published returns, per day of the window, the policy most of the day's
// reported mail was evaluated under, oldest first. The advisor reads how
// long a domain has been at its current step from it: receivers report what
// they saw, so no history of our own is needed. A tie goes to the first
// policy in the order of p, testing and pct (an absent pct first), the
// same in every store.
func Published(ctx context.Context, q Querier, domain string, w Window) ([]PublishedDay, error) {
	// The ORDER BY is total, so that both stores break ties alike (their
	// NULLs sort apart: hence the COALESCE).
	rows, err := q.Query(ctx, `
SELECT domain, day, p, pct, testing, SUM(message_count)
FROM reports
WHERE domain = ? AND day >= ? AND day <= ?
GROUP BY domain, day, p, pct, testing
ORDER BY day, SUM(message_count) DESC, p, testing, COALESCE(pct, -1)`, domain, w.From, w.To)
	if err != nil {
		return nil, fmt.Errorf("reading the published policy of %s: %w", domain, err)
	}
	byDomain, err := publishedDays(rows)
	if err != nil {
		return nil, fmt.Errorf("reading the published policy of %s: %w", domain, err)
	}
	return byDomain[domain], nil
}

// LastPublished returns, for every domain with reports, the policy of its
// last day of reports (the last day of Domains), as Published gives it
// for that day: the step a domain is at by its reports, for all domains in
// one query.
func LastPublished(ctx context.Context, q Querier) (map[string]PublishedDay, error) {
	// The last day is daily_domains', as in Domains, so that a report
	// without records does not move it. It is read first, then the reports
	// from the earliest last day on, rather than in one query with WHERE
	// (domain, day) IN (SELECT ... FROM daily_domains): on a ClickHouse
	// cluster such a subquery runs on each shard, where it names a view
	// of another database (docs/CLUSTER.md).
	rows, err := q.Query(ctx, `SELECT domain, MAX(day) FROM daily_domains GROUP BY domain`)
	if err != nil {
		return nil, fmt.Errorf("reading the last day of each domain: %w", err)
	}
	last := map[string]string{}
	earliest := ""
	for rows.Next() {
		var domain string
		var day DayText
		if err := rows.Scan(&domain, &day); err != nil {
			rows.Close()
			return nil, fmt.Errorf("reading the last day of each domain: %w", err)
		}
		last[domain] = string(day)
		if earliest == "" || string(day) < earliest {
			earliest = string(day)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the last day of each domain: %w", err)
	}
	out := make(map[string]PublishedDay, len(last))
	if len(last) == 0 {
		return out, nil
	}
	rows, err = q.Query(ctx, `
SELECT domain, day, p, pct, testing, SUM(message_count)
FROM reports
WHERE day >= ?
GROUP BY domain, day, p, pct, testing
ORDER BY domain, day, SUM(message_count) DESC, p, testing, COALESCE(pct, -1)`, earliest)
	if err != nil {
		return nil, fmt.Errorf("reading the published policies: %w", err)
	}
	byDomain, err := publishedDays(rows)
	if err != nil {
		return nil, fmt.Errorf("reading the published policies: %w", err)
	}
	for domain, days := range byDomain {
		for _, d := range days {
			if d.Day == last[domain] {
				out[domain] = d
			}
		}
	}
	return out, nil
}

// publishedDays reads rows of domain, day, p, pct, testing and messages,
// ordered by domain and day and then the most mail first, into the days of
// each domain: per day the policy with the most mail, with the report
// formats of all the day's reports.
func publishedDays(rows *sql.Rows) (map[string][]PublishedDay, error) {
	defer rows.Close()
	out := map[string][]PublishedDay{}
	for rows.Next() {
		var domain string
		var d PublishedDay
		var day DayText
		var pct *int64
		if err := rows.Scan(&domain, &day, &d.P, &pct, &d.Testing, &d.Messages); err != nil {
			return nil, err
		}
		d.Day = string(day)
		d.Pct = 100
		if pct != nil {
			d.Pct, d.HasPct = int(*pct), true
		}
		d.RFC7489 = d.HasPct && d.Testing == ""
		d.RFC9990 = !d.RFC7489
		days := out[domain]
		// Keep the policy with the most mail per day.
		if n := len(days); n > 0 && days[n-1].Day == d.Day {
			old, new := days[n-1].RFC7489 || d.RFC7489, days[n-1].RFC9990 || d.RFC9990
			if d.Messages > days[n-1].Messages {
				days[n-1] = d
			}
			days[n-1].RFC7489, days[n-1].RFC9990 = old, new
			continue
		}
		out[domain] = append(days, d)
	}
	return out, rows.Err()
}

// Reporter is one organisation that sent reports about a domain.
type Reporter struct {
	OrgName  string
	Reports  int64
	Messages int64
	LastDay  string
}

// Reporters returns who reported on domain in the window, the most mail
// first.
func Reporters(ctx context.Context, q Querier, domain string, w Window) ([]Reporter, error) {
	rows, err := q.Query(ctx, `
SELECT org_name, SUM(reports), SUM(messages), MAX(day)
FROM daily_reporters
WHERE domain = ? AND day >= ? AND day <= ?
GROUP BY org_name
ORDER BY SUM(messages) DESC, org_name`, domain, w.From, w.To)
	if err != nil {
		return nil, fmt.Errorf("reading the reporters of %s: %w", domain, err)
	}
	defer rows.Close()
	var out []Reporter
	for rows.Next() {
		var r Reporter
		var last DayText
		if err := rows.Scan(&r.OrgName, &r.Reports, &r.Messages, &last); err != nil {
			return nil, fmt.Errorf("reading the reporters of %s: %w", domain, err)
		}
		r.LastDay = string(last)
		out = append(out, r)
	}
	return out, rows.Err()
}
