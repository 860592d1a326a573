package clickhouse

import (
	"context"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd"
)

// TestAlertStore runs an alert's life and the outbox on ClickHouse. The
// conformance suite (schema/conformance) compares the same with SQLite.
func TestAlertStore(t *testing.T) {
	s, _ := openTemp(t, Options{})
	ctx := context.Background()
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	event := func(subject, state string, at time.Time) dmarcd.AlertEvent {
		return dmarcd.AlertEvent{At: at, Key: "example.com|pass-rate|" + subject, Domain: "example.com", Kind: dmarcd.AlertPassRate,
			Subject: subject, State: state, Title: subject + " " + state, Text: "text of " + subject}
	}
	for _, e := range []dmarcd.AlertEvent{
		event("a", dmarcd.AlertFiring, t0), event("b", dmarcd.AlertFiring, t0),
		event("a", dmarcd.AlertResolved, t0.Add(time.Hour)),
		// Two events in the same second: the later one counts.
		event("c", dmarcd.AlertFiring, t0.Add(time.Hour)), event("c", dmarcd.AlertResolved, t0.Add(time.Hour)),
	} {
		if err := s.AddAlertEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	states, err := s.AlertStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range states {
		got = append(got, e.Subject+" "+e.State+" "+e.At.Format(time.DateTime)+" "+string(e.Kind))
	}
	want := []string{"b firing 2026-11-02 09:00:00 pass-rate", "a resolved 2026-11-02 10:00:00 pass-rate", "c resolved 2026-11-02 10:00:00 pass-rate"}
	if len(got) != len(want) {
		t.Fatalf("states %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("state %d: %q, want %q", i, got[i], want[i])
		}
	}
	if got := queryString(t, s, `SELECT at, subject, state FROM alerts ORDER BY at, subject, state`); got !=
		"2026-11-02 09:00:00|a|firing\n2026-11-02 09:00:00|b|firing\n2026-11-02 10:00:00|a|resolved\n2026-11-02 10:00:00|c|firing\n2026-11-02 10:00:00|c|resolved\n" {
		t.Errorf("alerts view: %q", got)
	}

	for _, n := range []dmarcd.Notification{
		{ID: "n1", Created: t0, Kind: "alert", Payload: []byte(`{"n":1}`)},
		{ID: "n2", Created: t0, Kind: "alert", Payload: []byte(`{"n":2}`)},
		{ID: "n0", Created: t0.Add(-time.Hour), Kind: "weekly", Payload: []byte(`{"n":0}`)},
		{ID: "n1", Created: t0, Kind: "alert", Payload: []byte(`{"again":true}`)}, // kept once: the first
	} {
		if err := s.AddNotification(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	pending := func() string {
		t.Helper()
		ns, err := s.PendingNotifications(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out string
		for _, n := range ns {
			out += n.ID + " " + n.Kind + " " + n.Created.Format(time.DateTime) + " " + string(n.Payload) + "\n"
		}
		return out
	}
	if got := pending(); got != "n0 weekly 2026-11-02 08:00:00 {\"n\":0}\nn1 alert 2026-11-02 09:00:00 {\"n\":1}\nn2 alert 2026-11-02 09:00:00 {\"n\":2}\n" {
		t.Errorf("pending: %q", got)
	}
	for _, id := range []string{"n1", "n1", "n0"} {
		if err := s.MarkDelivered(ctx, id, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if got := pending(); got != "n2 alert 2026-11-02 09:00:00 {\"n\":2}\n" {
		t.Errorf("pending after deliveries: %q", got)
	}
}
