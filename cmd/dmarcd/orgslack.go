package main

// Each organisation's own Slack channel (set by its owners on the
// dashboard): the alerts about its domains and its part of the weekly
// recommendation, each a copy of its own in the outbox, posted on its own.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/advisor/alert"
	"github.com/dmarcd/dmarcd/advisor/slack"
	"github.com/dmarcd/dmarcd/dashboards/accounts"
)

// sharedAccounts is the dashboard's state file, opened once for the
// process: the web page, the alert routes and the outbox share it.
type sharedAccounts struct {
	mu  sync.Mutex
	acc *accounts.Store
}

func (s *sharedAccounts) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.acc != nil {
		s.acc.Close()
		s.acc = nil
	}
}

// accounts returns the dashboard's state file, nil when web.accounts_file
// is not set. It stays open until the process ends.
func (e *env) accounts() (*accounts.Store, error) {
	if e.cfg.Web.AccountsFile == "" {
		return nil, nil
	}
	s := e.dashboard
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.acc == nil {
		acc, err := e.openAccounts()
		if err != nil {
			return nil, err
		}
		s.acc = acc
	}
	return s.acc, nil
}

// watchedDomains are the sender domains dmarcd watches and advises on: the
// [[domain]] tables, and the domains the dashboard's organisations own
// (with the settings made on the page), the config file winning.
func watchedDomains(e *env) ([]dmarcd.SenderDomain, error) {
	out := slices.Clone(e.cfg.Domains)
	acc, err := e.accounts()
	if err != nil || acc == nil {
		return out, err
	}
	set, err := acc.SenderDomains(e.ctx)
	if err != nil {
		return nil, err
	}
	orgs, err := acc.Orgs(e.ctx)
	if err != nil {
		return nil, err
	}
	for _, o := range orgs {
		for _, name := range o.Domains {
			d := dmarcd.SenderDomain{Name: name, Mode: dmarcd.ModeOwn}
			if i := slices.IndexFunc(set, func(s dmarcd.SenderDomain) bool { return s.Name == name }); i >= 0 {
				d = set[i]
			}
			if _, configured := lookupConfigured(e.cfg, name); !configured {
				out = append(out, d)
			}
		}
	}
	return out, nil
}

// alertRoutes sends the alerts about a domain to its organisation's Slack
// channel too, when it has one that takes alerts.
func alertRoutes(acc *accounts.Store) func(ctx context.Context, a dmarcd.Alert) ([]string, error) {
	return func(ctx context.Context, a dmarcd.Alert) ([]string, error) {
		if a.Domain == "" {
			return nil, nil
		}
		ds, err := acc.SlackFor(ctx, a.Domain)
		if err != nil {
			return nil, err
		}
		var to []string
		for _, d := range ds {
			to = append(to, d.Destination())
		}
		return to, nil
	}
}

// queueOrgWeekly queues each organisation's part of the weekly
// recommendation for its Slack channel, when it asked for it and owns a
// domain the recommendation is about.
func queueOrgWeekly(ctx context.Context, e *env, as dmarcd.AlertStore, w alert.Weekly) error {
	acc, err := e.accounts()
	if err != nil || acc == nil {
		return err
	}
	dests, err := acc.SlackDestinations(ctx)
	if err != nil {
		return err
	}
	owner := map[string]int64{}
	var domains []string
	for _, r := range w.Recommendations {
		domains = append(domains, r.Domain)
	}
	for _, k := range w.Keys {
		domains = append(domains, k.Key.Domain)
	}
	for _, f := range w.Failed {
		domains = append(domains, f.Domain)
	}
	for _, p := range w.TLS {
		domains = append(domains, p.Domain)
	}
	for _, d := range domains {
		if _, seen := owner[d]; seen {
			continue
		}
		org, ok, err := acc.DomainOwner(ctx, d)
		if err != nil {
			return err
		}
		if !ok {
			org = 0
		}
		owner[d] = org
	}
	for _, d := range dests {
		if !d.Weekly {
			continue
		}
		part := w.Only(func(domain string) bool { return owner[domain] == d.Org })
		if len(part.Recommendations) == 0 && len(part.Keys) == 0 && len(part.Failed) == 0 {
			continue
		}
		part.To = d.Destination()
		if err := alert.QueueWeekly(ctx, as, part); err != nil {
			return err
		}
	}
	return nil
}

// orgPoster posts to an organisation's Slack channel, read from the state
// file at each post (a new webhook applies at once, a removed one stops
// the posts), and keeps on the organisation how the last post went, for
// its owners to see on the dashboard.
type orgPoster struct {
	acc      *accounts.Store
	org      int64
	prefixes []string
	now      func() time.Time
}

func (p *orgPoster) Post(ctx context.Context, n dmarcd.Notification) error {
	d, err := p.acc.Slack(ctx, p.org)
	if errors.Is(err, accounts.ErrNotFound) {
		return &alert.PermanentError{Reason: "the organisation has no Slack destination any more"}
	}
	if err != nil {
		return err
	}
	// Checked again at each post: the allowed prefixes may have narrowed
	// since the webhook was saved.
	if err := accounts.CheckWebhookURL(d.WebhookURL, p.prefixes); err != nil {
		return p.refused(ctx, &alert.PermanentError{Reason: err.Error()})
	}
	notifier, err := slack.New(slack.Options{WebhookURL: d.WebhookURL})
	if err != nil {
		return p.refused(ctx, &alert.PermanentError{Reason: err.Error()})
	}
	err = notifier.Post(ctx, n)
	var perm *alert.PermanentError
	switch {
	case err == nil:
		if d.Problem != "" {
			return p.acc.SlackDelivered(ctx, p.org, "", p.now())
		}
		return nil
	case errors.As(err, &perm):
		return p.refused(ctx, perm)
	default:
		return err
	}
}

// refused keeps Slack's answer on the organisation and returns it.
func (p *orgPoster) refused(ctx context.Context, perm *alert.PermanentError) error {
	if err := p.acc.SlackDelivered(ctx, p.org, perm.Reason, p.now()); err != nil {
		return err
	}
	return perm
}

// outboxes returns an outbox for each destination with notifications
// pending: the instance's channel when [slack] is set, each
// organisation's.
func outboxes(e *env, as dmarcd.AlertStore) ([]*alert.Outbox, error) {
	pending, err := as.PendingNotifications(e.ctx)
	if err != nil {
		return nil, err
	}
	var out []*alert.Outbox
	seen := map[string]bool{}
	for _, n := range pending {
		if seen[n.To] {
			continue
		}
		seen[n.To] = true
		var poster alert.Poster
		if n.To == "" {
			if poster, err = newPoster(e.cfg.Slack); err != nil {
				return nil, err
			}
			if poster == nil {
				continue // no [slack]: the instance's messages wait
			}
		} else {
			org, ok := accounts.ParseDestination(n.To)
			acc, err := e.accounts()
			if err != nil {
				return nil, err
			}
			if !ok || acc == nil {
				continue // not a destination of this configuration
			}
			poster = &orgPoster{acc: acc, org: org, prefixes: e.cfg.Web.webhookPrefixes(), now: e.now}
		}
		out = append(out, &alert.Outbox{State: as, Poster: poster, Logger: e.log, Now: e.now, To: n.To})
	}
	return out, nil
}

// fmtDestination names a destination in the log.
func fmtDestination(to string) string {
	if to == "" {
		return "slack"
	}
	return fmt.Sprintf("slack of %s", to)
}
