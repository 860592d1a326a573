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
	"fmt"
	"log/slog"
	"time"

	"github.com/dmarcd/dmarcd"
)

// DefaultSuppress is the suppression window: an alert that resolved is not
// told again if it fires within this time (a flapping condition, or reports
// that arrive a day late, would otherwise repeat it).
const DefaultSuppress = 24 * time.Hour

// Detector finds the conditions that hold now. An alert already firing
// stays firing while its detector returns it; a new one fires only when
// its Onset is set.
type Detector func(ctx context.Context, now time.Time) ([]dmarcd.Alert, error)

// Engine runs the detectors and keeps alert state.
type Engine struct {
	State     dmarcd.AlertStore
	Detectors []Detector
	// Suppress is the suppression window; DefaultSuppress when zero.
	Suppress time.Duration
	Now      func() time.Time
	Logger   *slog.Logger
}

// Check runs every detector once, records what started and what resolved,
// and queues a notification for each. It returns the notifications queued.
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
	seen := map[string]dmarcd.Alert{}
	var order []string
	for _, detect := range e.Detectors {
		found, err := detect(ctx, now)
		if err != nil {
			// One failing detector must not silence the others.
			log.Error("alert detector failed", "err", err)
			continue
		}
		for _, a := range found {
			k := a.Key()
			if prev, ok := seen[k]; ok {
				a.Onset = a.Onset || prev.Onset
			} else {
				order = append(order, k)
			}
			seen[k] = a
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
		if err := e.record(ctx, a, dmarcd.AlertFiring); err != nil {
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
		a := dmarcd.Alert{Domain: st.Domain, Kind: st.Kind, Subject: st.Subject, Resolved: true, At: now,
			Title: "Resolved: " + st.Title, Text: "The condition is gone: " + st.Text}
		if err := e.record(ctx, a, dmarcd.AlertResolved); err != nil {
			return told, err
		}
		told = append(told, a)
		log.Info("alert resolved", "alert", st.Key)
	}
	return told, nil
}

// record appends the event and queues its notification. The notification
// id derives from the event, so a crash between the two and a second check
// cannot queue it twice.
func (e *Engine) record(ctx context.Context, a dmarcd.Alert, state string) error {
	payload, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if err := e.State.AddAlertEvent(ctx, dmarcd.AlertEvent{At: a.At, Key: a.Key(), Domain: a.Domain, Kind: a.Kind,
		Subject: a.Subject, State: state, Title: a.Title, Text: a.Text}); err != nil {
		return err
	}
	return e.State.AddNotification(ctx, dmarcd.Notification{
		ID: notificationID("alert", a.Key(), state, a.At), Created: a.At, Kind: KindAlert, Payload: payload,
	})
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
