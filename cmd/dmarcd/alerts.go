package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/advisor"
	"github.com/dmarcd/dmarcd/advisor/alert"
	"github.com/dmarcd/dmarcd/advisor/slack"
	imapingest "github.com/dmarcd/dmarcd/ingest/imap"
)

// mailboxFailuresBeforeAlert: a mailbox whose polls fail this many times in
// a row (a refused login at once) is an ingest-health alert.
const mailboxFailuresBeforeAlert = 3

type alertsCmd struct {
	Check        bool          `help:"Run the alert checks once now: record what starts and resolves, post it to Slack when configured, and print it."`
	FlushTimeout time.Duration `help:"With --check, how long to keep trying to post to Slack before giving up (what is left is posted by the daemon or the next check); exit 1 when some is left." default:"2m"`
}

// Run prints the alerts firing now and the recent history, or runs the
// checks once with --check.
func (c *alertsCmd) Run(e *env) error {
	open := e.openStoreReadOnly
	if c.Check {
		open = e.openStore
	}
	st, err := open()
	if err != nil {
		return err
	}
	defer st.Close()
	as, ok := st.(dmarcd.AlertStore)
	if !ok {
		return errors.New("alerts: this store keeps no alert history")
	}
	if c.Check {
		eng, err := newAlertEngine(e, st, as, nil)
		if err != nil {
			return err
		}
		told, err := eng.Check(e.ctx)
		if err != nil {
			return err
		}
		for _, a := range told {
			state := "FIRING"
			if a.Resolved {
				state = "RESOLVED"
			}
			fmt.Fprintf(e.stdout, "%s %s %s %s: %s\n", state, a.Domain, a.Kind, a.Subject, a.Title)
		}
		if len(told) == 0 {
			fmt.Fprintln(e.stdout, "nothing new")
		}
		if !e.cfg.Slack.enabled() && e.cfg.Web.AccountsFile == "" {
			return nil
		}
		ctx, cancel := context.WithTimeout(e.ctx, c.FlushTimeout)
		defer cancel()
		err = flushOutbox(e.withContext(ctx), as)
		pending, perr := as.PendingNotifications(e.ctx)
		if perr != nil {
			return perr
		}
		if !e.cfg.Slack.enabled() {
			// The instance's messages wait for a [slack]: not this
			// check's to post.
			pending = slices.DeleteFunc(pending, func(n dmarcd.Notification) bool { return n.To == "" })
		}
		if len(pending) > 0 {
			why := "another dmarcd is posting them"
			if err != nil {
				why = "Slack did not take them in " + c.FlushTimeout.String() + ": " + err.Error()
			}
			return fmt.Errorf("%d notifications are not posted yet (%s); the daemon or the next check posts them", len(pending), why)
		}
		if err != nil && ctx.Err() == nil {
			return err
		}
		return nil
	}
	states, err := as.AlertStates(e.ctx)
	if err != nil {
		return err
	}
	n := 0
	for _, s := range states {
		if s.State == dmarcd.AlertFiring {
			fmt.Fprintf(e.stdout, "firing since %s: %s %s %s: %s\n", s.At.Format(time.DateTime), s.Domain, s.Kind, s.Subject, s.Title)
			n++
		}
	}
	if n == 0 {
		fmt.Fprintln(e.stdout, "no alert is firing (history: dmarcd query 'SELECT * FROM alerts ORDER BY at DESC')")
	}
	return nil
}

// newAlertEngine builds the alert checks of the configuration. pollers may
// be nil (no daemon: no mailbox health).
func newAlertEngine(e *env, st dmarcd.Store, as dmarcd.AlertStore, pollers []*imapingest.Poller) (*alert.Engine, error) {
	r, err := newResolver(e.cfg.DNS)
	if err != nil {
		return nil, err
	}
	classify, err := newClassifiers(e, r)
	if err != nil {
		return nil, err
	}
	watched, err := watchedDomains(e)
	if err != nil {
		return nil, err
	}
	var domains []alert.Domain
	for _, d := range watched {
		domains = append(domains, alert.Domain{SenderDomain: d, Thresholds: e.cfg.Alerts.thresholds(d.Name), Classifier: classify(d)})
	}
	detectors := []alert.Detector{
		alert.FailingSources(st, domains),
		alert.PassRate(st, domains),
		alert.SilentReporters(st, domains),
		alert.TLSFailures(st, domains),
		alert.QuarantineGrowth(st, e.cfg.Alerts.QuarantinePerDay),
		alert.KeysDue(func(ctx context.Context) ([]advisor.KeyAdvice, error) { return keyAdvice(e, st) }),
		alert.KeysUnusable(func(context.Context) ([]alert.UnusableKey, error) { return unusableKeys(e.cfg) }),
		alert.DNSDrift(r, watched, ourSPF(e.cfg.Sending), func(d dmarcd.SenderDomain) ([]advisor.DKIMPublicKey, error) {
			return dkimKeys(e.cfg, d.Name)
		}),
	}
	if pollers != nil {
		detectors = append(detectors, mailboxHealth(pollers))
	}
	eng := &alert.Engine{State: as, Detectors: detectors, Logger: e.log, Now: e.now, Redact: e.redact.text,
		Suppress: time.Duration(e.cfg.Alerts.SuppressHours) * time.Hour}
	acc, err := e.accounts()
	if err != nil {
		return nil, err
	}
	if acc != nil {
		eng.Routes = alertRoutes(acc)
	}
	return eng, nil
}

// mailboxHealth alerts on mailboxes that cannot be read: a refused login,
// or failures in a row.
func mailboxHealth(pollers []*imapingest.Poller) alert.Detector {
	return alert.Detector{Kinds: []dmarcd.AlertKind{dmarcd.AlertIngest}, Detect: func(ctx context.Context, now time.Time) ([]dmarcd.Alert, error) {
		var out []dmarcd.Alert
		for _, p := range pollers {
			h := p.Health()
			login := h.LastErrorKind == imapingest.ErrAuth || h.LastErrorKind == imapingest.ErrCredentials
			cert := h.LastErrorKind == imapingest.ErrTLS
			if !login && !cert && h.Failures < mailboxFailuresBeforeAlert {
				continue
			}
			what := fmt.Sprintf("%d attempts in a row failed", h.Failures)
			switch {
			case login:
				what = "the login is refused"
			case cert:
				what = "its certificate is refused"
			}
			out = append(out, dmarcd.Alert{
				Kind: dmarcd.AlertIngest, Subject: "mailbox:" + h.Mailbox, Onset: true,
				Title:  fmt.Sprintf("Mailbox %s cannot be read: %s", h.Mailbox, what),
				Text:   fmt.Sprintf("The last attempt, at %s, failed: %s", h.LastErrorAt.UTC().Format(time.DateTime), h.LastError),
				Facts:  []dmarcd.Fact{{Label: "Error kind", Value: h.LastErrorKind}, {Label: "Failures", Value: fmt.Sprint(h.Failures)}},
				Action: "Check the mailbox's credentials (password or OAuth token) and that the server is reachable; reports pile up in the mailbox meanwhile, none is lost.",
			})
		}
		return out, nil
	}}
}

// newPoster returns the Slack notifier of the configuration, nil when Slack
// is not configured.
func newPoster(cfg SlackConfig) (alert.Poster, error) {
	if !cfg.enabled() {
		return nil, nil
	}
	webhook, token, err := cfg.secrets()
	if err != nil {
		return nil, err
	}
	return slack.New(slack.Options{WebhookURL: webhook, Token: token, Channel: cfg.Channel})
}

// flushOutbox posts the pending notifications: the instance's when Slack
// is configured, each organisation's to its own channel. The destinations
// are flushed side by side, so that one that fails (an organisation's
// revoked webhook, a Slack outage of one workspace) holds back none of
// the others.
func flushOutbox(e *env, as dmarcd.AlertStore) error {
	boxes, err := outboxes(e, as)
	if err != nil {
		return err
	}
	errs := make([]error, len(boxes))
	var wg sync.WaitGroup
	for i, box := range boxes {
		wg.Go(func() {
			n, err := box.Flush(e.ctx)
			if n > 0 {
				e.log.Info("posted to "+fmtDestination(box.To), "notifications", n)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// alertsLease names the lease under which one daemon among those sharing
// a store checks the alerts and posts the outbox.
const alertsLease = "alerts"

// runAlerts checks for alerts at the configured interval and posts what
// the checks queue, until ctx ends. The outbox is flushed on its own, so
// that a Slack outage never holds the checks back.
//
// Among daemons sharing a store, only the holder of the alerts lease
// (owner's, when it holds it) checks and posts: two checks at once would
// both find an alert new and tell it twice. The holder renews the lease
// every third of lease_seconds; a standby tries to take it as often, and
// checks at once when it does.
//
// With web.accounts_file, newEngine builds the checks again before each
// check, so that a domain an organisation sets up on the dashboard is
// watched from the next check on, without a restart.
func runAlerts(ctx context.Context, e *env, eng *alert.Engine, newEngine func() (*alert.Engine, error), as dmarcd.AlertStore, owner string) {
	interval := time.Duration(e.cfg.Alerts.CheckIntervalMinutes) * time.Minute
	leases, shared := as.(dmarcd.LeaseStore)
	renew := e.cfg.leaseDuration() / 3
	flush := make(chan struct{}, 1)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-flush:
			}
			if err := flushOutbox(e, as); err != nil && ctx.Err() == nil {
				e.log.Error("posting notifications failed", "err", err)
			}
		}
	}()
	held, tried := false, false
	var checked time.Time // when this daemon last checked, holding the lease
	for {
		holds := true
		if shared {
			now := time.Now()
			ok, err := leases.HoldLease(ctx, alertsLease, owner, now, now.Add(e.cfg.leaseDuration()+dmarcd.LeaseMargin))
			if err != nil && ctx.Err() == nil {
				e.log.Error("cannot hold the alerts lease in the store: not checking alerts meanwhile", "err", err)
			}
			holds = ok && err == nil
			if holds != held || !tried {
				if holds {
					e.log.Info("checking alerts: this dmarcd holds the alerts lease", "owner", owner)
				} else {
					e.log.Info("another dmarcd checks the alerts: standing by")
				}
				held, tried, checked = holds, true, time.Time{}
			}
		}
		if holds && (checked.IsZero() || time.Since(checked) >= interval) {
			checked = time.Now()
			if e.cfg.Web.AccountsFile != "" {
				if fresh, err := newEngine(); err != nil {
					e.log.Error("reading the dashboard's domains failed: the checks watch the domains read before", "err", err)
				} else {
					eng = fresh
				}
			}
			if _, err := eng.Check(ctx); err != nil && ctx.Err() == nil {
				e.log.Error("alert checks failed", "err", err)
			}
		}
		if holds {
			select {
			case flush <- struct{}{}:
			default: // a flush is running: it reads the outbox again after
			}
		}
		wait := interval
		if shared {
			wait = min(interval, renew)
		}
		select {
		case <-ctx.Done():
			if shared && held {
				rctx, cancel := context.WithTimeout(context.Background(), imapingest.CommandTimeout)
				if err := leases.ReleaseLease(rctx, alertsLease, owner, time.Now()); err != nil {
					e.log.Warn("could not give the alerts lease up: another dmarcd takes it when it lapses", "err", err)
				}
				cancel()
			}
			return
		case <-time.After(wait):
		}
	}
}

// runWeekly queues the weekly recommendation at each time of the schedule
// and posts it.
func runWeekly(ctx context.Context, e *env, st dmarcd.Store, as dmarcd.AlertStore) error {
	sched, err := alert.ParseSchedule(e.cfg.Schedule.Weekly, e.cfg.Schedule.TimeZone)
	if err != nil {
		return err
	}
	e.log.Info("weekly recommendation scheduled", "schedule", sched.String(), "next", sched.Next(e.now()))
	return sched.Run(ctx, alert.RealClock, func(ctx context.Context, at time.Time, late bool) {
		if late {
			e.log.Info("catching up the weekly recommendation of the last scheduled time (queued once: nothing new when it went out then)", "due", at)
		}
		if err := sendWeekly(e.withContext(ctx), st, as, at, late); err != nil && ctx.Err() == nil {
			e.log.Error("weekly recommendation failed", "err", err)
		}
	})
}

// sendWeekly queues the weekly recommendation for at, for the instance's
// channel and each organisation's part for its own, and posts them.
func sendWeekly(e *env, st dmarcd.Store, as dmarcd.AlertStore, at time.Time, late bool) error {
	w, err := weekly(e, st, nil, at)
	if err != nil {
		return err
	}
	w.Late = late
	if err := alert.QueueWeekly(e.ctx, as, w); err != nil {
		return err
	}
	if err := queueOrgWeekly(e.ctx, e, as, w); err != nil {
		return err
	}
	return flushOutbox(e, as)
}

// ourSPF is what our own servers add to every sender domain's SPF record.
func ourSPF(c SendingConfig) advisor.SPFAdditions {
	return advisor.SPFAdditions{IPs: c.IPs, Includes: c.SPFIncludes}
}
