package alert

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/internal/synth"
	"github.com/dmarcd/dmarcd/internal/testserver"
	"github.com/dmarcd/dmarcd/schema/sqlite"
)

var domains = []Domain{{SenderDomain: dmarcd.SenderDomain{Name: "example.com"}}}

func engine(s *sqlite.Store, now *time.Time) *Engine {
	return &Engine{
		State: s,
		Detectors: []Detector{
			FailingSources(s, domains), PassRate(s, domains), SilentReporters(s, domains), QuarantineGrowth(s, 5),
			TLSFailures(s, domains),
		},
		Now: func() time.Time { return *now },
	}
}

func kinds(as []dmarcd.Alert) []string {
	var out []string
	for _, a := range as {
		k := string(a.Kind) + ":" + a.Subject
		if a.Resolved {
			k += ":resolved"
		}
		out = append(out, k)
	}
	return out
}

func check(t *testing.T, e *Engine) []string {
	t.Helper()
	told, err := e.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return kinds(told)
}

var ours = synth.Traffic{IP: "192.0.2.1", PerDay: 1000, Pass: true}

func TestQuietOnHealthyData(t *testing.T) {
	s := testserver.SQLite(t)
	synth.Dataset{Domain: "example.com", From: "2026-10-20", To: "2026-11-19",
		Sources: []synth.Traffic{ours, {IP: "100.64.0.9", PerDay: 10}}}.Write(t, s)
	now := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	if got := check(t, engine(s, &now)); len(got) != 0 {
		t.Errorf("alerts on healthy data: %v", got)
	}
}

// TestFailingSourceLifecycle: a new failing source is told once, not
// repeated while it fails, resolved when it stops, and not told again when
// it flaps inside the suppression window.
func TestFailingSourceLifecycle(t *testing.T) {
	s := testserver.SQLite(t)
	ours := synth.Traffic{IP: "192.0.2.1", PerDay: 5000, Pass: true} // the pass rate stays high
	synth.Dataset{Domain: "example.com", From: "2026-10-20", To: "2026-11-19",
		Sources: []synth.Traffic{ours, {IP: "203.0.113.66", PerDay: 400, From: "2026-11-19", Until: "2026-11-20"}}}.Write(t, s)
	now := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	e := engine(s, &now)
	if got := check(t, e); strings.Join(got, ",") != "failing-source:203.0.113.66" {
		t.Fatalf("first check: %v", got)
	}
	if got := check(t, e); len(got) != 0 {
		t.Fatalf("second check repeated: %v", got)
	}
	// The next day's reports still show it failing: no repeat.
	synth.Dataset{Domain: "example.com", From: "2026-11-20", To: "2026-11-20",
		Sources: []synth.Traffic{ours, {IP: "203.0.113.66", PerDay: 400}}, Reporters: []synth.Reporter{{OrgName: "Yahoo"}}}.Write(t, s)
	now = now.Add(24 * time.Hour)
	if got := check(t, e); len(got) != 0 {
		t.Fatalf("still failing, repeated: %v", got)
	}
	// Two days without it: resolved, once.
	synth.Dataset{Domain: "example.com", From: "2026-11-21", To: "2026-11-22", Sources: []synth.Traffic{ours}}.Write(t, s)
	now = now.Add(48 * time.Hour)
	if got := check(t, e); strings.Join(got, ",") != "failing-source:203.0.113.66:resolved" {
		t.Fatalf("resolution: %v", got)
	}
	if got := check(t, e); len(got) != 0 {
		t.Fatalf("resolution repeated: %v", got)
	}
	// The history holds both events.
	rows, err := s.Query(context.Background(), `SELECT state FROM alerts ORDER BY at`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var states []string
	for rows.Next() {
		var st string
		rows.Scan(&st)
		states = append(states, st)
	}
	if strings.Join(states, ",") != "firing,resolved" {
		t.Errorf("history %v", states)
	}
}

func TestSuppressionWindow(t *testing.T) {
	s := testserver.SQLite(t)
	now := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	firing := true
	e := &Engine{State: s, Now: func() time.Time { return now }, Suppress: 24 * time.Hour,
		Detectors: []Detector{{Kinds: []dmarcd.AlertKind{dmarcd.AlertPassRate}, Detect: func(context.Context, time.Time) ([]dmarcd.Alert, error) {
			if !firing {
				return nil, nil
			}
			return []dmarcd.Alert{{Domain: "example.com", Kind: dmarcd.AlertPassRate, Subject: "dmarc", Onset: true, Title: "low"}}, nil
		}}}}
	steps := []struct {
		advance time.Duration
		firing  bool
		want    string
	}{
		{0, true, "pass-rate:dmarc"},
		{time.Hour, false, "pass-rate:dmarc:resolved"},
		{time.Hour, true, ""}, // flapping inside the window: suppressed
		{time.Hour, false, ""},
		{30 * time.Hour, true, "pass-rate:dmarc"}, // after the window: told again
	}
	for i, st := range steps {
		now = now.Add(st.advance)
		firing = st.firing
		if got := strings.Join(check(t, e), ","); got != st.want {
			t.Errorf("step %d: %q, want %q", i, got, st.want)
		}
	}
}

func TestPassRateAndSilentReporter(t *testing.T) {
	s := testserver.SQLite(t)
	synth.Dataset{Domain: "example.com", From: "2026-10-20", To: "2026-11-19",
		Sources: []synth.Traffic{ours, {IP: "100.64.0.9", PerDay: 300}},
		Reporters: []synth.Reporter{{OrgName: "google.com", Share: 0.6}, {OrgName: "Yahoo", Share: 0.3, Until: "2026-11-14"},
			{OrgName: "Tiny", Share: 0.01, Until: "2026-11-10"}}}.Write(t, s)
	now := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	got := strings.Join(check(t, engine(s, &now)), ",")
	// 300 of 1300 fail: 76.9% < 90%. Yahoo (large) went silent; Tiny is
	// too small to matter.
	if got != "pass-rate:dmarc,reporter-silent:Yahoo" {
		t.Errorf("got %q", got)
	}
}

func TestQuarantineGrowth(t *testing.T) {
	s := testserver.SQLite(t)
	now := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	for i := range 7 {
		q := dmarcd.Quarantined{Origin: dmarcd.Origin{Source: "test", ReceivedAt: now.Add(-time.Hour)}, Reason: "bad", Raw: []byte{byte(i)}}
		if err := s.Quarantine(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Join(check(t, engine(s, &now)), ","); got != "ingest-health:quarantine" {
		t.Errorf("got %q", got)
	}
}

// tlsReport stores an SMTP TLS report of one day about example.com.
func tlsReport(t *testing.T, s *sqlite.Store, day string, ok, failed int64) {
	t.Helper()
	begin, _ := time.Parse(time.DateOnly, day)
	r := &dmarcd.TLSReport{OrganizationName: "Google Inc.", ReportID: day + "_example.com", DateBegin: begin, DateEnd: begin.Add(24*time.Hour - time.Second),
		Policies: []dmarcd.TLSPolicy{{Type: "sts", Domain: "example.com", SuccessfulSessions: ok, FailedSessions: failed}}}
	if failed > 0 {
		r.Policies[0].FailureDetails = []dmarcd.TLSFailureDetail{{ResultType: "certificate-expired", ReceivingMXHostname: "mx2.example.com", FailedSessions: failed}}
	}
	if err := s.AddTLSReport(context.Background(), r, dmarcd.Origin{Source: "test", ReceivedAt: begin.AddDate(0, 0, 1)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestTLSFailures: TLS sessions to the domain's MX hosts failing above the
// threshold fire once, with the failure that counts most, and resolve when
// the reports of the window are clean; below the threshold, nothing.
func TestTLSFailures(t *testing.T) {
	s := testserver.SQLite(t)
	synth.Dataset{Domain: "example.com", From: "2026-10-20", To: "2026-11-30", Sources: []synth.Traffic{ours}}.Write(t, s)
	for d := 10; d <= 19; d++ {
		tlsReport(t, s, fmt.Sprintf("2026-11-%02d", d), 1000, 5) // 0.5%: below 1%
	}
	now := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	e := engine(s, &now)
	if got := check(t, e); len(got) != 0 {
		t.Fatalf("alerts below the threshold: %v", got)
	}
	tlsReport(t, s, "2026-11-20", 600, 400)
	now = now.AddDate(0, 0, 1)
	told, err := e.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(kinds(told), ","); got != "tls-failures:sts" {
		t.Fatalf("got %q", got)
	}
	if facts := fmt.Sprint(told[0].Facts); !strings.Contains(facts, "certificate-expired at mx2.example.com (430)") {
		t.Errorf("facts %s lack the failure that counts most", facts)
	}
	if got := check(t, e); len(got) != 0 {
		t.Errorf("told again: %v", got)
	}
	// A week later the bad day is out of the window, and the days after it
	// are clean.
	for d := 21; d <= 28; d++ {
		tlsReport(t, s, fmt.Sprintf("2026-11-%02d", d), 1000, 0)
	}
	now = time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)
	if got := strings.Join(check(t, e), ","); got != "tls-failures:sts:resolved" {
		t.Errorf("got %q, want the resolution", got)
	}
}

// TestDetectorFailureKeepsState: a detector that fails (DNS down, the store
// unreachable) resolves none of its alerts; its failure is an alert of its
// own, told once and resolved when it works again; an alert resolves only
// on evidence, with the figures of the day it resolves.
func TestDetectorFailureKeepsState(t *testing.T) {
	s := testserver.SQLite(t)
	now := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	var failing error
	rate := 0.442
	d := Detector{Kinds: []dmarcd.AlertKind{dmarcd.AlertPassRate}, Detect: func(context.Context, time.Time) ([]dmarcd.Alert, error) {
		if failing != nil {
			return nil, failing
		}
		a := dmarcd.Alert{Domain: "example.com", Kind: dmarcd.AlertPassRate, Subject: "dmarc", Onset: true,
			Title: fmt.Sprintf("DMARC pass rate of example.com is %.1f%%", 100*rate)}
		a.Clear = rate >= 0.9
		return []dmarcd.Alert{a}, nil
	}}
	e := &Engine{State: s, Now: func() time.Time { return now }, Detectors: []Detector{d}}
	if got := strings.Join(check(t, e), ","); got != "pass-rate:dmarc" {
		t.Fatalf("first check: %q", got)
	}
	// DNS goes down: nothing resolves; the failure is told once.
	failing = errors.New("reading the DMARC record: i/o timeout")
	for i := range 3 {
		now = now.Add(15 * time.Minute)
		told, err := e.Check(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want := ""
		if i == 0 {
			want = "dmarcd-health:checks:pass-rate"
		}
		if got := strings.Join(kinds(told), ","); got != want {
			t.Fatalf("failing check %d: %q, want %q", i, got, want)
		}
		if i == 0 && !strings.Contains(told[0].Text, "i/o timeout") {
			t.Errorf("the health alert does not say why: %q", told[0].Text)
		}
	}
	// It works again, and the rate has recovered: the alert resolves with
	// today's figure, and so does the health alert.
	failing, rate = nil, 0.93
	now = now.Add(15 * time.Minute)
	told, err := e.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(kinds(told), ","); got != "pass-rate:dmarc:resolved,dmarcd-health:checks:pass-rate:resolved" {
		t.Fatalf("recovery: %q", got)
	}
	for _, a := range told {
		if a.Kind == dmarcd.AlertPassRate && (a.Title != "Resolved: DMARC pass rate of example.com is 93.0%" || strings.Contains(a.Title+a.Text, "44.2")) {
			t.Errorf("resolution: %q %q", a.Title, a.Text)
		}
	}
}

// TestDomainFailureIsolated: one domain whose check fails keeps its alerts
// and hides nothing of another's.
func TestDomainFailureIsolated(t *testing.T) {
	s := testserver.SQLite(t)
	now := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	broken := false
	doms := []Domain{{SenderDomain: dmarcd.SenderDomain{Name: "a.example"}}, {SenderDomain: dmarcd.SenderDomain{Name: "b.example"}}}
	d := perDomain([]dmarcd.AlertKind{dmarcd.AlertDNSDrift}, doms, func(_ context.Context, _ time.Time, d Domain) ([]dmarcd.Alert, error) {
		if broken && d.Name == "a.example" {
			return nil, errors.New("SERVFAIL")
		}
		return []dmarcd.Alert{{Domain: d.Name, Kind: dmarcd.AlertDNSDrift, Subject: "spf", Onset: true, Title: "drift of " + d.Name}}, nil
	})
	e := &Engine{State: s, Now: func() time.Time { return now }, Detectors: []Detector{d}}
	if got := strings.Join(check(t, e), ","); got != "dns-drift:spf,dns-drift:spf" {
		t.Fatalf("first check: %q", got)
	}
	broken = true
	now = now.Add(time.Hour)
	told, err := e.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(told) != 1 || told[0].Kind != dmarcd.AlertHealth || told[0].Domain != "a.example" {
		t.Errorf("a.example failing: %+v", told)
	}
}

// TestRoutes: an alert about a domain goes to the instance's channel and
// to each destination Routes names, each a copy of its own, queued once;
// dmarcd's health alerts go to the instance only; a chat channel's alert,
// the outbox's, is not resolved by the checks.
func TestRoutes(t *testing.T) {
	s := testserver.SQLite(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	var failing error
	d := Detector{Kinds: []dmarcd.AlertKind{dmarcd.AlertPassRate}, Detect: func(context.Context, time.Time) ([]dmarcd.Alert, error) {
		if failing != nil {
			return nil, failing
		}
		return []dmarcd.Alert{{Domain: "acme.example", Kind: dmarcd.AlertPassRate, Subject: "dmarc", Onset: true, Title: "low"}}, nil
	}}
	routes := func(_ context.Context, a dmarcd.Alert) ([]string, error) {
		if a.Domain == "acme.example" {
			return []string{"org:1"}, nil
		}
		return []string{"org:2"}, nil
	}
	// A broken channel of organisation 1, told by its outbox.
	if err := s.AddAlertEvent(ctx, dmarcd.AlertEvent{At: now, Key: dmarcd.Alert{Kind: dmarcd.AlertHealth, Subject: "chat:org:1"}.Key(),
		Kind: dmarcd.AlertHealth, Subject: "chat:org:1", State: dmarcd.AlertFiring, Title: "refused"}); err != nil {
		t.Fatal(err)
	}
	e := &Engine{State: s, Now: func() time.Time { return now }, Detectors: []Detector{d}, Routes: routes}
	check(t, e)
	check(t, e)
	failing = errors.New("DNS is down")
	now = now.Add(time.Hour)
	check(t, e)
	pending, err := s.PendingNotifications(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range pending {
		got = append(got, n.Kind+" to "+n.To+": "+strings.SplitN(string(n.Payload), `"title":`, 2)[1][:8])
	}
	want := `alert to : "low","t,alert to org:1: "low","t,alert to : "dmarcd `
	if strings.Join(got, ",") != want {
		t.Errorf("queued:\n%s\nwant\n%s", strings.Join(got, ","), want)
	}
	states, _ := s.AlertStates(ctx)
	for _, st := range states {
		if st.Subject == "chat:org:1" && st.State != dmarcd.AlertFiring {
			t.Error("the checks resolved the outbox's alert about a chat channel")
		}
	}
}

// TestConcurrentChecks: two engines that check one store at once, from
// the same state (two daemons whose alerts leases overlapped), queue one
// notification for each change, though each records its event.
func TestConcurrentChecks(t *testing.T) {
	s := testserver.SQLite(t)
	rate := 0.442
	d := Detector{Kinds: []dmarcd.AlertKind{dmarcd.AlertPassRate}, Detect: func(context.Context, time.Time) ([]dmarcd.Alert, error) {
		a := dmarcd.Alert{Domain: "example.com", Kind: dmarcd.AlertPassRate, Subject: "dmarc", Onset: true,
			Title: fmt.Sprintf("DMARC pass rate of example.com is %.1f%%", 100*rate)}
		a.Clear = rate >= 0.9
		return []dmarcd.Alert{a}, nil
	}}
	start := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	for _, step := range []struct {
		rate float64
		want string
	}{{0.442, "pass-rate:dmarc"}, {0.93, "pass-rate:dmarc:resolved"}} {
		rate = step.rate
		// The two engines' clocks differ by a second.
		a := &Engine{State: s, Now: func() time.Time { return start }, Detectors: []Detector{d}}
		b := &Engine{State: s, Now: func() time.Time { return start.Add(time.Second) }, Detectors: []Detector{d}}
		states, err := s.AlertStates(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		// Both read the state before either records: as two checks at once.
		frozen := &frozenStates{AlertStore: s, states: states}
		a.State, b.State = frozen, frozen
		if got := strings.Join(check(t, a), ","); got != step.want {
			t.Fatalf("first engine: %q, want %q", got, step.want)
		}
		if got := strings.Join(check(t, b), ","); got != step.want {
			t.Fatalf("second engine: %q, want %q", got, step.want)
		}
		pending, err := s.PendingNotifications(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(pending) != 1 {
			t.Fatalf("%s: %d notifications queued, want 1", step.want, len(pending))
		}
		if err := s.MarkDelivered(context.Background(), pending[0].ID, start); err != nil {
			t.Fatal(err)
		}
		start = start.Add(time.Hour)
	}
}

// frozenStates answers AlertStates with the states read before, as a check
// that read them before another recorded its events.
type frozenStates struct {
	dmarcd.AlertStore
	states []dmarcd.AlertEvent
}

func (f *frozenStates) AlertStates(context.Context) ([]dmarcd.AlertEvent, error) {
	return f.states, nil
}
