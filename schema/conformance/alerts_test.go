package conformance

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/internal/testserver"
)

// alertLife runs the same alert history and outbox through an AlertStore
// and returns what each read gave, one line per row: the states after each
// step, the pending notifications after each delivery, and the alerts view.
func alertLife(t *testing.T, s dmarcd.Store) []string {
	t.Helper()
	as, ok := s.(dmarcd.AlertStore)
	if !ok {
		t.Fatalf("%T is no dmarcd.AlertStore", s)
	}
	ctx := context.Background()
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	event := func(domain string, kind dmarcd.AlertKind, subject, state string, at time.Time) dmarcd.AlertEvent {
		return dmarcd.AlertEvent{At: at, Key: dmarcd.Alert{Domain: domain, Kind: kind, Subject: subject}.Key(),
			Domain: domain, Kind: kind, Subject: subject, State: state,
			Title: fmt.Sprintf("%s %s %s", kind, subject, state), Text: "what happened to " + subject}
	}
	var out []string
	states := func(step string) {
		t.Helper()
		got, err := as.AlertStates(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range got {
			out = append(out, fmt.Sprintf("%s: %s %s %s %s %s %s %s %q", step, e.At.Format(time.RFC3339), e.Key, e.Domain,
				e.Kind, e.Subject, e.State, e.Title, e.Text))
		}
	}
	pending := func(step string) {
		t.Helper()
		got, err := as.PendingNotifications(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range got {
			out = append(out, fmt.Sprintf("%s: %s %s %s %s", step, n.ID, n.Created.Format(time.RFC3339), n.Kind, n.Payload))
		}
		out = append(out, fmt.Sprintf("%s: %d pending", step, len(got)))
	}
	add := func(e dmarcd.AlertEvent) {
		t.Helper()
		if err := as.AddAlertEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}

	states("empty")
	add(event("example.com", dmarcd.AlertPassRate, "dmarc", dmarcd.AlertFiring, t0))
	add(event("example.com", dmarcd.AlertFailingSource, "192.0.2.7", dmarcd.AlertFiring, t0))
	add(event("example.net", dmarcd.AlertReporterSilent, "google.com", dmarcd.AlertFiring, t0.Add(time.Minute)))
	states("three firing")
	add(event("example.com", dmarcd.AlertPassRate, "dmarc", dmarcd.AlertResolved, t0.Add(time.Hour)))
	states("one resolved")
	// Fires again after resolving; and an alert firing and resolving
	// within one second: the order of adding decides.
	add(event("example.com", dmarcd.AlertPassRate, "dmarc", dmarcd.AlertFiring, t0.Add(2*time.Hour)))
	add(event("example.org", dmarcd.AlertKeyDue, "s2025", dmarcd.AlertFiring, t0.Add(2*time.Hour)))
	add(event("example.org", dmarcd.AlertKeyDue, "s2025", dmarcd.AlertResolved, t0.Add(2*time.Hour)))
	states("fired again")

	pending("empty outbox")
	for _, n := range []dmarcd.Notification{
		{ID: "alert-1", Created: t0, Kind: "alert", Payload: []byte(`{"title":"first"}`)},
		{ID: "alert-2", Created: t0, Kind: "alert", Payload: []byte(`{"title":"second, same second"}`)},
		{ID: "weekly-1", Created: t0.Add(-24 * time.Hour), Kind: "weekly", Payload: []byte(`{"recommendations":[]}`)},
		// The same id queued twice is kept once, as first queued.
		{ID: "alert-1", Created: t0.Add(time.Hour), Kind: "alert", Payload: []byte(`{"title":"queued again"}`)},
	} {
		if err := as.AddNotification(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	pending("queued")
	// Claims: the first claimant holds a notification until its claim
	// lapses; it renews by claiming again; after the lapse another takes
	// it.
	claim := func(step, id, owner string, now time.Time) {
		t.Helper()
		ok, err := as.ClaimNotification(ctx, id, owner, now, now.Add(2*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s: %s claims %s: %v", step, owner, id, ok))
	}
	claim("claim", "alert-1", "daemon", t0)
	claim("claim", "alert-1", "cron", t0.Add(time.Second))
	claim("renew", "alert-1", "daemon", t0.Add(time.Minute))
	claim("claim", "alert-1", "cron", t0.Add(2*time.Minute))
	claim("lapsed", "alert-1", "cron", t0.Add(4*time.Minute))
	claim("lapsed", "alert-1", "daemon", t0.Add(4*time.Minute+time.Second))
	// A notification the service refused for good leaves the outbox.
	if err := as.AddNotification(ctx, dmarcd.Notification{ID: "alert-3", Created: t0.Add(time.Minute), Kind: "alert", Payload: []byte(`{"title":"refused"}`)}); err != nil {
		t.Fatal(err)
	}
	if err := as.MarkUndeliverable(ctx, "alert-3", t0.Add(time.Minute), "404 no_service"); err != nil {
		t.Fatal(err)
	}
	pending("undeliverable")
	for i, id := range []string{"alert-1", "alert-1", "weekly-1", "alert-2"} {
		if err := as.MarkDelivered(ctx, id, t0.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
		pending(fmt.Sprintf("delivered %d (%s)", i+1, id))
	}
	if err := as.AddNotification(ctx, dmarcd.Notification{ID: "alert-1", Created: t0, Kind: "alert", Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	pending("delivered, queued again")

	rows, err := queryRows(s, `SELECT at, domain, kind, subject, state, title, text FROM alerts`)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(rows)
	for _, r := range rows {
		out = append(out, "alerts view: "+r)
	}
	return out
}

// TestAlertStoreSameAnswers runs one alert history and outbox through
// both stores: the same states, the same pending notifications in the
// same order, the same alerts view.
func TestAlertStoreSameAnswers(t *testing.T) {
	want := alertLife(t, openSQLite(t))
	for _, line := range []string{
		"three firing: 2026-11-02T09:00:00Z example.com|pass-rate|dmarc example.com pass-rate dmarc firing pass-rate dmarc firing \"what happened to dmarc\"",
		"one resolved: 2026-11-02T10:00:00Z example.com|pass-rate|dmarc example.com pass-rate dmarc resolved pass-rate dmarc resolved \"what happened to dmarc\"",
		"fired again: 2026-11-02T11:00:00Z example.org|key-due|s2025 example.org key-due s2025 resolved key-due s2025 resolved \"what happened to s2025\"",
		"queued: alert-1 2026-11-02T09:00:00Z alert {\"title\":\"first\"}",
		"queued: 3 pending",
		"claim: daemon claims alert-1: true",
		"claim: cron claims alert-1: false",
		"renew: daemon claims alert-1: true",
		"claim: cron claims alert-1: false",
		"lapsed: cron claims alert-1: true",
		"lapsed: daemon claims alert-1: false",
		"undeliverable: 3 pending",
		"delivered 2 (alert-1): 2 pending",
		"delivered 4 (alert-2): 0 pending",
		"delivered, queued again: 0 pending",
	} {
		if !slices.Contains(want, line) {
			t.Errorf("SQLite gave no line %q; it gave:\n%s", line, lines(want))
		}
	}
	got := alertLife(t, openClickHouse(t, testserver.ClickHouse(t)))
	if !slices.Equal(got, want) {
		t.Errorf("ClickHouse:\n%s\nSQLite:\n%s", lines(got), lines(want))
	}
}

func lines(s []string) string {
	out := ""
	for _, l := range s {
		out += "  " + l + "\n"
	}
	return out
}
