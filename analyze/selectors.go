package analyze

import (
	"context"
	"fmt"
	"strings"
)

// SelectorReport is what one reporter saw of the DKIM signatures with one
// selector of a signing domain: how many, and how many passed.
type SelectorReport struct {
	OrgName  string
	Selector string // lower case
	// Messages counts the messages that carried the signature; Passed
	// those where it passed.
	Messages int64
	Passed   int64
}

// SelectorReports sums, per reporter and selector, the DKIM signatures
// of the signing domain dkimDomain (d=, any case) on the days from from
// (YYYY-MM-DD) on, by reporter and then selector. The key advisor reads
// from it whether a new key passes at the large reporters.
func SelectorReports(ctx context.Context, q Querier, dkimDomain, from string) ([]SelectorReport, error) {
	rows, err := q.Query(ctx, `
SELECT org_name, lower(selector), SUM(count), SUM(CASE WHEN result = 'pass' THEN count ELSE 0 END)
FROM dkim_signatures
WHERE lower(dkim_domain) = ? AND day >= ?
GROUP BY org_name, lower(selector)
ORDER BY org_name, lower(selector)`, strings.ToLower(dkimDomain), from)
	if err != nil {
		return nil, fmt.Errorf("reading the DKIM signatures of %s: %w", dkimDomain, err)
	}
	defer rows.Close()
	var out []SelectorReport
	for rows.Next() {
		var r SelectorReport
		var messages, passed Count
		if err := rows.Scan(&r.OrgName, &r.Selector, &messages, &passed); err != nil {
			return nil, fmt.Errorf("reading the DKIM signatures of %s: %w", dkimDomain, err)
		}
		r.Messages, r.Passed = int64(messages), int64(passed)
		out = append(out, r)
	}
	return out, rows.Err()
}

// SelectorTraffic counts the messages signed with selector of the signing
// domain dkimDomain (both any case) on the days after after (YYYY-MM-DD),
// and gives the last such day ("" when there is none). The key advisor
// reads from it whether mail is still signed with a retired key.
func SelectorTraffic(ctx context.Context, q Querier, dkimDomain, selector, after string) (messages int64, lastDay string, err error) {
	rows, err := q.Query(ctx, `
SELECT day, SUM(messages)
FROM daily_selectors
WHERE lower(dkim_domain) = ? AND lower(selector) = ? AND day > ?
GROUP BY day
ORDER BY day`, strings.ToLower(dkimDomain), strings.ToLower(selector), after)
	if err != nil {
		return 0, "", fmt.Errorf("reading the mail signed with %s of %s: %w", selector, dkimDomain, err)
	}
	defer rows.Close()
	for rows.Next() {
		var day DayText
		var n Count
		if err := rows.Scan(&day, &n); err != nil {
			return 0, "", fmt.Errorf("reading the mail signed with %s of %s: %w", selector, dkimDomain, err)
		}
		messages += int64(n)
		lastDay = string(day)
	}
	return messages, lastDay, rows.Err()
}
