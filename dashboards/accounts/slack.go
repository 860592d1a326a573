package accounts

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultWebhookPrefixes are the addresses an organisation's Slack webhook
// may have: Slack's incoming webhooks. dmarcd posts to the address an
// organisation gives, so any other would let a customer make the daemon
// send requests into the provider's own network.
var DefaultWebhookPrefixes = []string{"https://hooks.slack.com/"}

// MaxWebhookURLBytes bounds an organisation's webhook URL (Slack's are
// about 80 bytes).
const MaxWebhookURLBytes = 512

// SlackDestination is an organisation's own Slack channel: an incoming
// webhook that gets the alerts about its domains and, with Weekly, its
// weekly recommendation.
type SlackDestination struct {
	Org int64
	// WebhookURL is a credential: never shown on a page, logged or
	// returned by the API once saved.
	WebhookURL string
	Alerts     bool
	Weekly     bool
	Updated    time.Time
	UpdatedBy  string
	// Problem is what Slack said when it last refused a message for good
	// (a revoked webhook), at ProblemAt; empty once a message went
	// through.
	Problem   string
	ProblemAt time.Time
}

// Destination names the organisation's channel in the outbox
// (dmarcd.Notification.To).
func (d SlackDestination) Destination() string { return OrgDestination(d.Org) }

// OrgDestination is the outbox's name of an organisation's Slack channel.
func OrgDestination(org int64) string { return "org:" + strconv.FormatInt(org, 10) }

// ParseDestination returns the organisation of an outbox destination
// named by OrgDestination.
func ParseDestination(to string) (int64, bool) {
	rest, ok := strings.CutPrefix(to, "org:")
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseInt(rest, 10, 64)
	return id, err == nil && id > 0
}

// Host is the webhook's host, which a page may show.
func (d SlackDestination) Host() string {
	u, err := url.Parse(d.WebhookURL)
	if err != nil {
		return ""
	}
	return u.Host
}

// CheckWebhookURL says whether raw may be an organisation's webhook: an
// absolute URL without credentials in it that starts with one of prefixes
// (DefaultWebhookPrefixes when none).
func CheckWebhookURL(raw string, prefixes []string) error {
	if len(prefixes) == 0 {
		prefixes = DefaultWebhookPrefixes
	}
	if len(raw) > MaxWebhookURLBytes {
		return fmt.Errorf("the webhook URL is longer than %d bytes", MaxWebhookURLBytes)
	}
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || !u.IsAbs() || u.Host == "" || u.User != nil || u.Fragment != "" {
		return errors.New("the webhook URL is not a web address (Slack gives one as https://hooks.slack.com/services/...)")
	}
	canonical := u.String()
	for _, p := range prefixes {
		if strings.HasPrefix(canonical, p) {
			return nil
		}
	}
	return fmt.Errorf("the webhook URL must start with %s (Slack's incoming webhooks)", strings.Join(prefixes, " or "))
}

// SetSlack saves an organisation's Slack destination, replacing the one
// before. The caller checks the URL (CheckWebhookURL) against the
// instance's allowed prefixes.
func (s *Store) SetSlack(ctx context.Context, d SlackDestination) error {
	if d.WebhookURL == "" {
		return errors.New("a Slack destination needs a webhook URL")
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO org_slack (org_id, webhook_url, alerts, weekly, updated, updated_by) VALUES (?,?,?,?,?,?)
ON CONFLICT (org_id) DO UPDATE SET webhook_url = excluded.webhook_url, alerts = excluded.alerts, weekly = excluded.weekly,
  updated = excluded.updated, updated_by = excluded.updated_by, problem = '', problem_at = 0`,
		d.Org, strings.TrimSpace(d.WebhookURL), d.Alerts, d.Weekly, s.now().Unix(), d.UpdatedBy)
	if err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	return nil
}

// SetSlackOptions changes what an organisation's destination gets and
// keeps its webhook.
func (s *Store) SetSlackOptions(ctx context.Context, org int64, alerts, weekly bool, by string) error {
	res, err := s.db.ExecContext(ctx, "UPDATE org_slack SET alerts = ?, weekly = ?, updated = ?, updated_by = ? WHERE org_id = ?",
		alerts, weekly, s.now().Unix(), by, org)
	if err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("the Slack destination of organisation %d: %w", org, ErrNotFound)
	}
	return nil
}

// RemoveSlack removes an organisation's Slack destination: its messages
// not yet posted are kept as undeliverable by the outbox.
func (s *Store) RemoveSlack(ctx context.Context, org int64) error {
	res, err := s.db.ExecContext(ctx, "DELETE FROM org_slack WHERE org_id = ?", org)
	if err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("the Slack destination of organisation %d: %w", org, ErrNotFound)
	}
	return nil
}

// Slack returns an organisation's Slack destination; ErrNotFound when it
// has none.
func (s *Store) Slack(ctx context.Context, org int64) (SlackDestination, error) {
	ds, err := s.slack(ctx, "WHERE org_id = ?", org)
	if err != nil {
		return SlackDestination{}, err
	}
	if len(ds) == 0 {
		return SlackDestination{}, fmt.Errorf("the Slack destination of organisation %d: %w", org, ErrNotFound)
	}
	return ds[0], nil
}

// SlackDestinations returns every organisation's Slack destination.
func (s *Store) SlackDestinations(ctx context.Context) ([]SlackDestination, error) {
	return s.slack(ctx, "")
}

func (s *Store) slack(ctx context.Context, where string, args ...any) ([]SlackDestination, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT org_id, webhook_url, alerts, weekly, updated, updated_by, problem, problem_at FROM org_slack "+where+" ORDER BY org_id", args...)
	if err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	defer rows.Close()
	var out []SlackDestination
	for rows.Next() {
		var d SlackDestination
		var updated, problemAt int64
		if err := rows.Scan(&d.Org, &d.WebhookURL, &d.Alerts, &d.Weekly, &updated, &d.UpdatedBy, &d.Problem, &problemAt); err != nil {
			return nil, fmt.Errorf("accounts: %w", err)
		}
		d.Updated = time.Unix(updated, 0).UTC()
		if problemAt != 0 {
			d.ProblemAt = time.Unix(problemAt, 0).UTC()
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// SlackDelivered records how the last message to an organisation's
// channel went: problem is Slack's answer when it refused it for good, ""
// when it went through.
func (s *Store) SlackDelivered(ctx context.Context, org int64, problem string, at time.Time) error {
	var atUnix int64
	if problem != "" {
		atUnix = at.Unix()
	}
	_, err := s.db.ExecContext(ctx, "UPDATE org_slack SET problem = ?, problem_at = ? WHERE org_id = ?", problem, atUnix, org)
	if err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	return nil
}

// SlackFor returns the Slack destinations that get the alerts about
// domain: its owner's, when it has one that takes alerts.
func (s *Store) SlackFor(ctx context.Context, domain string) ([]SlackDestination, error) {
	org, ok, err := s.DomainOwner(ctx, domain)
	if err != nil || !ok {
		return nil, err
	}
	d, err := s.Slack(ctx, org)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	case !d.Alerts:
		return nil, nil
	}
	return []SlackDestination{d}, nil
}
