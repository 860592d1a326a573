package analyze

import (
	"context"
	"fmt"
)

// AlertChange is one change in the life of an alert, a row of the alerts
// view: it fired, or it resolved.
type AlertChange struct {
	At      string `json:"at"` // YYYY-MM-DD HH:MM:SS UTC
	Domain  string `json:"domain"`
	Kind    string `json:"kind"`
	Subject string `json:"subject"`
	State   string `json:"state"` // firing or resolved
	Title   string `json:"title"`
	Text    string `json:"text"`
}

// MaxAlertChanges bounds the history Alerts reads: enough to know which
// alerts fire after years of checks, since each alert changes at most twice
// a suppression window.
const MaxAlertChanges = 20000

// Alerts reads the alert history of the alerts view, newest first (of one
// domain when domain is not ""), and returns the alerts firing now (the
// ones whose last change is firing, newest first) and the last limit
// changes.
func Alerts(ctx context.Context, q Querier, domain string, limit int) (firing, recent []AlertChange, err error) {
	where, args := "", []any{}
	if domain != "" {
		where, args = "WHERE domain = ?", append(args, domain)
	}
	// The order is total but for two changes of one alert in one second,
	// which the view cannot tell apart (it has no sequence), so that both
	// stores give the same changes under the limit.
	rows, err := q.Query(ctx, `SELECT at, domain, kind, subject, state, title, text FROM alerts `+where+`
ORDER BY at DESC, domain, kind, subject LIMIT `+fmt.Sprint(MaxAlertChanges), args...)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the alert history: %w", err)
	}
	defer rows.Close()
	seen := map[string]bool{}
	for rows.Next() {
		var c AlertChange
		var at TimeText
		if err := rows.Scan(&at, &c.Domain, &c.Kind, &c.Subject, &c.State, &c.Title, &c.Text); err != nil {
			return nil, nil, fmt.Errorf("reading the alert history: %w", err)
		}
		c.At = string(at)
		if len(recent) < limit {
			recent = append(recent, c)
		}
		key := c.Domain + "|" + c.Kind + "|" + c.Subject
		if !seen[key] {
			seen[key] = true
			if c.State == "firing" {
				firing = append(firing, c)
			}
		}
	}
	return firing, recent, rows.Err()
}
