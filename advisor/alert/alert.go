// Package alert watches the stored reports and tells people, once, when
// something fails: a new failing source, a falling pass rate, a large
// reporter gone silent, a DKIM key due, DNS drift, unhealthy ingest. It
// keeps each alert's state in the store, so that an alert is told when it
// starts and when it resolves, and not again in between.
//
// What is told goes through an outbox (dmarcd.AlertStore): a notification
// is kept until the chat service took it, so that an outage delays it and
// loses nothing (see Outbox).
package alert

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/dmarcd/dmarcd"
)

// DefaultSuppress is the suppression window: an alert that resolved is not
// told again if it fires within this time (a flapping condition, or reports
// that arrive a day late, would otherwise repeat it).
const DefaultSuppress = 24 * time.Hour

// Detector finds the conditions that hold now. An alert already firing
// stays firing while its detector returns it; a new one fires only when its
// Onset is set. A returned alert with Clear set is a condition checked and
// found not to hold, with today's figures: it resolves the alert of its key
// with them.
type Detector struct {
	// Kinds are the kinds of alerts the detector raises: while it fails,
	// the alerts of these kinds keep their state, since nothing says
	// their conditions are gone.
	Kinds  []dmarcd.AlertKind
	Detect func(ctx context.Context, now time.Time) ([]dmarcd.Alert, error)
}

// DomainErrors is the error of a detector that failed for some domains
// only: the alerts it returned for the others count, and the alerts of
// these domains keep their state.
type DomainErrors map[string]error

func (e DomainErrors) Error() string {
	var parts []string
	for _, d := range slices.Sorted(maps.Keys(e)) {
		parts = append(parts, d+": "+e[d].Error())
	}
	return strings.Join(parts, "; ")
}

// Engine runs the detectors and keeps alert state.
type Engine struct {
	State     dmarcd.AlertStore
	Detectors []Detector
	// Suppress is the suppression window; DefaultSuppress when zero.
	Suppress time.Duration
	Now      func() time.Time
	Logger   *slog.Logger
	// Redact removes secrets from text that goes into alerts (a failing
	// detector's error); nothing is removed when nil.
	Redact func(string) string
	// Routes, when set, names the destinations besides the instance's
	// channel that get an alert (an organisation's own Slack channel for
	// the alerts about its domains: Notification.To). Each gets its own
	// copy. Alerts about dmarcd's own health go to the instance only.
	Routes func(ctx context.Context, a dmarcd.Alert) ([]string, error)
}

// failure is a detector that failed this check: for every domain, or for
// the domains listed.
type failure struct {
	kinds   []dmarcd.AlertKind
	domains DomainErrors // nil: every domain
}

// covers says whether the failure keeps the state of an alert.
func (f failure) covers(st dmarcd.AlertEvent) bool {
	if !slices.Contains(f.kinds, st.Kind) {
		return false
	}
	if f.domains == nil {
		return true
	}
	_, ok := f.domains[st.Domain]
	return ok
}

// Check runs every detector once, records what started and what resolved,
// and queues a notification for each. It returns the notifications queued.
//
// State changes only on evidence. A detector that fails (DNS down, the
// store unreachable) resolves none of its alerts; its failure is an alert
// of its own (dmarcd.AlertHealth), told once, resolved when it works
// again. An alert resolves when its detector ran and did not return it;
// the resolution carries the detector's current figures where it gave
// them (Clear).
func (e *Engine) Check(ctx context.Context) ([]dmarcd.Alert, error) {
	now := time.Now().UTC()
	if e.Now != nil {
		now = e.Now().UTC()
	}
	suppress := e.Suppress
	if suppress == 0 {
		suppress = DefaultSuppress
	}
	log := e.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	redact := e.Redact
	if redact == nil {
		redact = func(s string) string { return s }
	}
	seen := map[string]dmarcd.Alert{}
	cleared := map[string]dmarcd.Alert{}
	var order []string
	var failures []failure
	add := func(a dmarcd.Alert) {
		k := a.Key()
		if a.Clear {
			cleared[k] = a
			return
		}
		if prev, ok := seen[k]; ok {
			a.Onset = a.Onset || prev.Onset
		} else {
			order = append(order, k)
		}
		seen[k] = a
	}
	for _, d := range e.Detectors {
		found, err := d.Detect(ctx, now)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		kinds := kindsText(d.Kinds)
		var de DomainErrors
		switch {
		case errors.As(err, &de):
			failures = append(failures, failure{kinds: d.Kinds, domains: de})
			for domain, derr := range de {
				log.Error("alert detector failed for a domain", "kinds", kinds, "domain", domain, "err", redact(derr.Error()))
				add(healthAlert(domain, kinds, redact(derr.Error())))
			}
		case err != nil:
			// One failing detector must not silence the others.
			failures = append(failures, failure{kinds: d.Kinds})
			log.Error("alert detector failed", "kinds", kinds, "err", redact(err.Error()))
			add(healthAlert("", kinds, redact(err.Error())))
			continue
		}
		for _, a := range found {
			add(a)
		}
	}
	states, err := e.State.AlertStates(ctx)
	if err != nil {
		return nil, err
	}
	last := map[string]dmarcd.AlertEvent{}
	for _, s := range states {
		last[s.Key] = s
	}
	var told []dmarcd.Alert
	for _, k := range order {
		a := seen[k]
		st, known := last[k]
		switch {
		case known && st.State == dmarcd.AlertFiring:
			continue // still firing: told once already
		case !a.Onset:
			continue
		case known && st.State == dmarcd.AlertResolved && now.Sub(st.At) < suppress:
			log.Info("alert suppressed: it resolved within the suppression window", "alert", k, "resolved", st.At)
			continue
		}
		a.At = now
		var after time.Time // the event this one follows: none, or a resolution
		if known {
			after = st.At
		}
		if err := e.record(ctx, a, dmarcd.AlertFiring, after); err != nil {
			return told, err
		}
		told = append(told, a)
		log.Info("alert", "alert", k, "title", a.Title)
	}
	for _, st := range states {
		if st.State != dmarcd.AlertFiring {
			continue
		}
		if _, still := seen[st.Key]; still {
			continue
		}
		if !e.raises(st) {
			continue // another's to resolve: the outbox's chat channel alerts
		}
		if slices.ContainsFunc(failures, func(f failure) bool { return f.covers(st) }) {
			log.Info("alert kept: its detector failed, so nothing says it is gone", "alert", st.Key)
			continue
		}
		a := resolution(st, cleared[st.Key], now)
		if err := e.record(ctx, a, dmarcd.AlertResolved, st.At); err != nil {
			return told, err
		}
		told = append(told, a)
		log.Info("alert resolved", "alert", st.Key)
	}
	return told, nil
}

// raises says whether the alert is one the engine raises, and so resolves
// when it is gone: a kind of its detectors, or its own health alert about
// checks that failed. The outbox raises and resolves the alerts about a
// chat channel that refuses messages.
func (e *Engine) raises(st dmarcd.AlertEvent) bool {
	if st.Kind == dmarcd.AlertHealth {
		return strings.HasPrefix(st.Subject, "checks:")
	}
	return slices.ContainsFunc(e.Detectors, func(d Detector) bool { return slices.Contains(d.Kinds, st.Kind) })
}

// resolution is the follow-up of a firing alert whose condition is gone:
// with the detector's current figures when it gave them, else a plain
// word, never the figures of when it fired.
func resolution(st dmarcd.AlertEvent, clear dmarcd.Alert, now time.Time) dmarcd.Alert {
	a := dmarcd.Alert{Domain: st.Domain, Kind: st.Kind, Subject: st.Subject, Resolved: true, At: now}
	if clear.Clear {
		a.Title, a.Text, a.Facts = "Resolved: "+clear.Title, clear.Text, clear.Facts
		return a
	}
	what := string(st.Kind)
	if st.Subject != "" {
		what += " " + st.Subject
	}
	if st.Domain != "" {
		what += " of " + st.Domain
	}
	a.Title = "Resolved: " + what
	a.Text = fmt.Sprintf("The condition is no longer seen (it fired at %s UTC).", st.At.UTC().Format("2006-01-02 15:04"))
	return a
}

// healthAlert is the alert about a detector that cannot run: dmarcd's own
// health, told once while it lasts.
func healthAlert(domain, kinds, err string) dmarcd.Alert {
	a := dmarcd.Alert{Domain: domain, Kind: dmarcd.AlertHealth, Subject: "checks:" + kinds, Onset: true,
		Title:  "dmarcd cannot run the " + kinds + " checks",
		Text:   "The check failed: " + err + ". Until it runs again, its alerts keep their state: none is resolved for want of evidence.",
		Action: "Look at the dmarcd log; check DNS ([dns] resolver) and the store."}
	if domain != "" {
		a.Title += " for " + domain
	}
	return a
}

func kindsText(kinds []dmarcd.AlertKind) string {
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = string(k)
	}
	return strings.Join(parts, ",")
}

// record appends the event and queues its notifications, one for each
// destination. The notification ids derive from the change (the alert,
// its new state and the time of the event it follows, after: zero for its
// first) and the destination, not from the time of the check, so that a
// crash between the two and a second check cannot queue one twice, nor can
// two checks that find the same change at once (two daemons whose leases
// overlapped, docs/CLUSTER.md). The destinations are asked first: when
// that fails, nothing is recorded and the next check tries again.
func (e *Engine) record(ctx context.Context, a dmarcd.Alert, state string, after time.Time) error {
	payload, err := json.Marshal(a)
	if err != nil {
		return err
	}
	to := []string{""}
	if e.Routes != nil && a.Kind != dmarcd.AlertHealth {
		more, err := e.Routes(ctx, a)
		if err != nil {
			return fmt.Errorf("the destinations of alert %s: %w", a.Key(), err)
		}
		to = append(to, more...)
	}
	if err := e.State.AddAlertEvent(ctx, dmarcd.AlertEvent{At: a.At, Key: a.Key(), Domain: a.Domain, Kind: a.Kind,
		Subject: a.Subject, State: state, Title: a.Title, Text: a.Text}); err != nil {
		return err
	}
	for _, dest := range to {
		id := notificationID("alert", a.Key(), state, after.UTC())
		if dest != "" {
			id = notificationID("alert", a.Key(), state, after.UTC(), dest)
		}
		if err := e.State.AddNotification(ctx, dmarcd.Notification{
			ID: id, Created: a.At, Kind: KindAlert, Payload: payload, To: dest,
		}); err != nil {
			return err
		}
	}
	return nil
}

// Notification kinds.
const (
	KindAlert  = "alert"
	KindWeekly = "weekly"
)

func notificationID(parts ...any) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprint(h, p, "\x00")
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}
