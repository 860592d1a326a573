package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd"
)

// SchemaStore is what the contract asks of every engine: a dmarcd.Store
// that says its schema version. The optional interfaces (dmarcd.Flusher,
// dmarcd.Retainer, dmarcd.AlertStore) are tested where a store has them.
type SchemaStore interface {
	dmarcd.Store
	SchemaVersion(ctx context.Context) (int, error)
}

// Engine is what Run needs to know of one store engine.
type Engine struct {
	// Location returns where a new store can be made: a file path, a
	// DSN. Nothing is there yet.
	Location func(t testing.TB) string
	// Open opens the store at location, creating it and bringing its
	// schema up to date.
	Open func(ctx context.Context, location string) (SchemaStore, error)
	// OpenReadOnly opens the existing store at location for reading
	// only, and refuses a location without one.
	OpenReadOnly func(ctx context.Context, location string) (SchemaStore, error)
	// SetSchemaVersion makes s look written by a dmarcd whose schema is
	// version v.
	SetSchemaVersion func(t testing.TB, s SchemaStore, v int)
	// Parallel runs the cases at the same time (as many as go test's
	// -parallel), each with stores of its own: on a ClickHouse cluster a
	// case spends most of its time waiting for the distributed DDL that
	// makes its new store.
	Parallel bool
}

// Run runs the store contract against one engine: every engine answers
// each case the same. schema/sqlite and schema/clickhouse call it; what is
// particular to one engine (ClickHouse's merges and insert groups,
// SQLite's checkpoints) is tested beside it, and schema/conformance
// compares the two engines' answers over the real corpus.
func Run(t *testing.T, e Engine) {
	open := func(t *testing.T) (SchemaStore, string) {
		t.Helper()
		loc := e.Location(t)
		s, err := e.Open(context.Background(), loc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s, loc
	}
	run := func(name string, f func(t *testing.T)) {
		t.Run(name, func(t *testing.T) {
			if e.Parallel {
				t.Parallel()
			}
			f(t)
		})
	}
	run("StoreOnce", func(t *testing.T) { s, _ := open(t); storeOnce(t, s) })
	run("AbortLeavesNothing", func(t *testing.T) { s, _ := open(t); abortLeavesNothing(t, s) })
	run("Views", func(t *testing.T) { s, _ := open(t); views(t, s) })
	run("RollupsMatchRecords", func(t *testing.T) { s, _ := open(t); rollupsMatchRecords(t, s) })
	run("QueryIsReadOnly", func(t *testing.T) { s, _ := open(t); queryIsReadOnly(t, s) })
	run("QuarantineOnce", func(t *testing.T) { s, _ := open(t); quarantineOnce(t, s) })
	run("FailureOnce", func(t *testing.T) { s, _ := open(t); failureOnce(t, s) })
	run("ConcurrentWriters", func(t *testing.T) { concurrentWriters(t, e) })
	run("ConcurrentFirstUse", func(t *testing.T) { concurrentFirstUse(t, e) })
	run("MigrateIsIdempotent", func(t *testing.T) { migrateIsIdempotent(t, e) })
	run("OpenReadOnly", func(t *testing.T) { openReadOnly(t, e) })
	run("NewerSchemaRefused", func(t *testing.T) { newerSchemaRefused(t, e) })
	run("Retention", func(t *testing.T) {
		s, _ := open(t)
		r, ok := s.(dmarcd.Retainer)
		if !ok {
			t.Skip("the store drops nothing (not a dmarcd.Retainer)")
		}
		retention(t, s, r)
	})
	run("AlertStore", func(t *testing.T) {
		s, _ := open(t)
		a, ok := s.(dmarcd.AlertStore)
		if !ok {
			t.Skip("the store keeps no alerts (not a dmarcd.AlertStore)")
		}
		alertStore(t, s, a)
	})
	run("Leases", func(t *testing.T) { leases(t, e) })
}

func storeOnce(t *testing.T, s SchemaStore) {
	if err := Store(t, s, Report("r1"), Records()); err != nil {
		t.Fatal(err)
	}
	if err := Store(t, s, Report("r1"), Records()); !errors.Is(err, dmarcd.ErrDuplicate) {
		t.Fatalf("second store: got %v, want ErrDuplicate", err)
	}
	// Same id, another day: another report.
	r := Report("r1")
	r.Metadata.DateBegin = r.Metadata.DateBegin.AddDate(0, 0, 1)
	if err := Store(t, s, r, Records()); err != nil {
		t.Fatal(err)
	}
	if got := QueryString(t, s, `SELECT COUNT(*), SUM(count) FROM records`); got != "4|26\n" {
		t.Errorf("records: %q", got)
	}
}

func abortLeavesNothing(t *testing.T, s SchemaStore) {
	ctx := context.Background()
	w, err := s.BeginAggregate(ctx, Report("r1"), dmarcd.Origin{})
	if err != nil {
		t.Fatal(err)
	}
	recs := Records()
	if err := w.Write(ctx, &recs[0]); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if f, ok := s.(dmarcd.Flusher); ok {
		if err := f.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, view := range []string{"reports", "records", "dkim_signatures", "daily_domains", "daily_sources", "daily_selectors", "daily_reporters"} {
		if got := QueryString(t, s, "SELECT COUNT(*) FROM "+view); got != "0\n" {
			t.Errorf("after abort, %s holds %q rows", view, got)
		}
	}
	// The aborted report can be stored afterwards, and counts once.
	if err := Store(t, s, Report("r1"), Records()); err != nil {
		t.Fatal(err)
	}
	CheckViews(t, s)
}

// CheckViews checks that every view shows Report("r1") with Records()
// exactly once.
func CheckViews(t *testing.T, s dmarcd.Store) {
	t.Helper()
	for _, c := range Views {
		if got := QueryString(t, s, c.Query); got != c.Want {
			t.Errorf("%s\n got: %q\nwant: %q", c.Query, got, c.Want)
		}
	}
}

func views(t *testing.T, s SchemaStore) {
	if err := Store(t, s, Report("r1"), Records()); err != nil {
		t.Fatal(err)
	}
	CheckViews(t, s)
	// An absent pct is NULL.
	r := Report("r2")
	r.Policy.Pct = dmarcd.PctAbsent
	if err := Store(t, s, r, nil); err != nil {
		t.Fatal(err)
	}
	if got := QueryString(t, s, `SELECT pct, record_count FROM reports WHERE report_id = 'r2'`); got != "<nil>|0\n" {
		t.Errorf("absent pct: %q", got)
	}
}

// rollupsMatchRecords: the rollups kept on insert equal the sums over the
// records they summarise.
func rollupsMatchRecords(t *testing.T, s SchemaStore) {
	for i := range 5 {
		r := Report(fmt.Sprint(i))
		r.Metadata.DateBegin = r.Metadata.DateBegin.AddDate(0, 0, i%2)
		if i == 4 {
			r.Metadata.OrgName = "Yahoo"
		}
		if err := Store(t, s, r, Records()); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct{ rollup, direct string }{
		{`SELECT day, domain, messages, dmarc_pass, dkim_aligned, spf_aligned, quarantined, rejected FROM daily_domains ORDER BY day`,
			`SELECT day, domain, SUM(count), SUM(dmarc_pass * count), SUM(CASE WHEN dkim = 'pass' THEN count ELSE 0 END),
			SUM(CASE WHEN spf = 'pass' THEN count ELSE 0 END), SUM(CASE WHEN disposition = 'quarantine' THEN count ELSE 0 END),
			SUM(CASE WHEN disposition = 'reject' THEN count ELSE 0 END) FROM records GROUP BY day, domain ORDER BY day`},
		{`SELECT day, source_ip, messages, dmarc_pass FROM daily_sources ORDER BY day, source_ip`,
			`SELECT day, source_ip, SUM(count), SUM(dmarc_pass * count) FROM records GROUP BY day, source_ip ORDER BY day, source_ip`},
		{`SELECT day, org_name, reports, messages FROM daily_reporters ORDER BY day, org_name`,
			`SELECT day, org_name, COUNT(*), SUM(message_count) FROM reports GROUP BY day, org_name ORDER BY day, org_name`},
		{`SELECT day, dkim_domain, selector, messages, passed FROM daily_selectors ORDER BY day, selector`,
			`SELECT day, dkim_domain, selector, SUM(count), SUM(CASE WHEN result = 'pass' THEN count ELSE 0 END) FROM dkim_signatures GROUP BY day, dkim_domain, selector ORDER BY day, selector`},
	} {
		got, want := QueryString(t, s, c.rollup), QueryString(t, s, c.direct)
		if got != want || got == "" {
			t.Errorf("%s\n got %q\nwant %q", c.rollup, got, want)
		}
	}
}

func queryIsReadOnly(t *testing.T, s SchemaStore) {
	ctx := context.Background()
	if err := Store(t, s, Report("r1"), Records()); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`DELETE FROM aggregate_reports`,
		`DROP TABLE aggregate_reports`,
		`INSERT INTO quarantine (sha256) SELECT 'x'`,
	} {
		if rows, err := s.Query(ctx, q); err == nil {
			rows.Close()
			t.Errorf("%s through Query succeeded", q)
		}
	}
	if got := QueryString(t, s, `SELECT COUNT(*) FROM reports`); got != "1\n" {
		t.Errorf("reports after the refused writes: %q", got)
	}
}

func quarantineOnce(t *testing.T, s SchemaStore) {
	q := dmarcd.Quarantined{Origin: dmarcd.Origin{Source: "file:/x", ReceivedAt: time.Now()}, Reason: "bad", Raw: []byte("junk")}
	for range 2 {
		if err := s.Quarantine(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	if got := QueryString(t, s, `SELECT reason, size FROM quarantined`); got != "bad|4\n" {
		t.Errorf("quarantine: %q", got)
	}
}

func failureOnce(t *testing.T, s SchemaStore) {
	ctx := context.Background()
	f := &dmarcd.FailureReport{ReportFrom: "r@receiver.example", FeedbackType: "auth-failure", ReportedDomain: "example.com",
		SourceIP: "192.0.2.9", ArrivalDateText: "Mon, 2 Nov 2026 08:00:00 +0000", ArrivalDate: time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC),
		OriginalHeaders: "From: a@example.com\r\n", OriginalRcptTo: []string{"b@example.net"},
		Fields: []dmarcd.Field{{Name: "Feedback-Type", Value: "auth-failure"}}}
	origin := dmarcd.Origin{ReceivedAt: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)}
	if err := s.AddFailure(ctx, f, origin); err != nil {
		t.Fatal(err)
	}
	// A duplicate before and after a Flush (a grouping store holds the
	// first one until then).
	if err := s.AddFailure(ctx, f, origin); !errors.Is(err, dmarcd.ErrDuplicate) {
		t.Fatalf("got %v, want ErrDuplicate", err)
	}
	if fl, ok := s.(dmarcd.Flusher); ok {
		if err := fl.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddFailure(ctx, f, origin); !errors.Is(err, dmarcd.ErrDuplicate) {
		t.Fatalf("stored: got %v, want ErrDuplicate", err)
	}
	if got := QueryString(t, s, `SELECT domain, source_ip, feedback_type, arrival_date, original_rcpt_to FROM failures`); got != "example.com|192.0.2.9|auth-failure|2026-11-02 08:00:00|[\"b@example.net\"]\n" {
		t.Errorf("failures: %q", got)
	}
}

// concurrentWriters stores the same reports from two stores on one
// location at once, as two dmarcd processes would: each report counts
// once in every view, whichever won.
func concurrentWriters(t *testing.T, e Engine) {
	ctx := context.Background()
	loc := e.Location(t)
	const reports = 30
	stores := make([]SchemaStore, 2)
	for i := range stores {
		s, err := e.Open(ctx, loc)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores[i] = s
	}
	var wg sync.WaitGroup
	stored := make([]int, len(stores))
	for i, s := range stores {
		wg.Go(func() {
			for j := range reports {
				err := Store(t, s, Report(fmt.Sprint(j)), Records())
				if err == nil {
					stored[i]++
				} else if !errors.Is(err, dmarcd.ErrDuplicate) {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("stored %d + %d of %d reports (a sum above %[3]d means the writers raced past each other's check)", stored[0], stored[1], reports)
	if stored[0]+stored[1] < reports {
		t.Errorf("stored %d + %d, want at least %d in all", stored[0], stored[1], reports)
	}
	for _, c := range []struct{ query, want string }{
		{`SELECT COUNT(*), SUM(message_count) FROM reports`, fmt.Sprintf("%d|%d\n", reports, reports*13)},
		{`SELECT COUNT(*), SUM(count) FROM records`, fmt.Sprintf("%d|%d\n", 2*reports, reports*13)},
		{`SELECT SUM(messages), SUM(dmarc_pass), SUM(quarantined) FROM daily_domains`, fmt.Sprintf("%d|%d|%d\n", reports*13, reports*10, reports*3)},
		{`SELECT SUM(messages) FROM daily_sources`, fmt.Sprintf("%d\n", reports*13)},
		{`SELECT SUM(reports), SUM(messages) FROM daily_reporters`, fmt.Sprintf("%d|%d\n", reports, reports*13)},
		{`SELECT SUM(messages), SUM(passed) FROM daily_selectors`, fmt.Sprintf("%d|%d\n", reports*20, reports*20)},
	} {
		if got := QueryString(t, stores[0], c.query); got != c.want {
			t.Errorf("%s\n got: %q\nwant: %q", c.query, got, c.want)
		}
	}
}

// concurrentFirstUse: processes that open a new store at once all
// succeed, and the store is usable.
func concurrentFirstUse(t *testing.T, e Engine) {
	ctx := context.Background()
	loc := e.Location(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			s, err := e.Open(ctx, loc)
			if err == nil {
				err = s.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	s, err := e.Open(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := Store(t, s, Report("r1"), Records()); err != nil {
		t.Fatal(err)
	}
	CheckViews(t, s)
}

// migrateIsIdempotent: opening a store again changes nothing.
func migrateIsIdempotent(t *testing.T, e Engine) {
	ctx := context.Background()
	loc := e.Location(t)
	s, err := e.Open(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.SchemaVersion(ctx)
	if err != nil || v < 1 {
		t.Fatalf("version %d, %v", v, err)
	}
	if err := Store(t, s, Report("r1"), Records()); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := e.Open(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if v2, err := s2.SchemaVersion(ctx); err != nil || v2 != v {
		t.Errorf("version after reopening: %d, %v; want %d", v2, err, v)
	}
	CheckViews(t, s2)
}

// openReadOnly: a location without a store is refused (a mistyped
// --store creates nothing); an existing store reads, and writes fail.
func openReadOnly(t *testing.T, e Engine) {
	ctx := context.Background()
	if s, err := e.OpenReadOnly(ctx, e.Location(t)); err == nil {
		s.Close()
		t.Error("OpenReadOnly opened a location without a store")
	}
	loc := e.Location(t)
	s, err := e.Open(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := Store(t, s, Report("r1"), Records()); err != nil {
		t.Fatal(err)
	}
	ro, err := e.OpenReadOnly(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	CheckViews(t, ro)
	if err := ro.Quarantine(ctx, dmarcd.Quarantined{Raw: []byte("x")}); err == nil {
		t.Error("a read-only store took a write")
	}
}

// newerSchemaRefused: a store written by a newer dmarcd is refused, for
// writing and for reading, with a word on what to do.
func newerSchemaRefused(t *testing.T, e Engine) {
	ctx := context.Background()
	loc := e.Location(t)
	s, err := e.Open(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	e.SetSchemaVersion(t, s, 999)
	s.Close()
	if s, err := e.Open(ctx, loc); err == nil || !strings.Contains(err.Error(), "newer than this dmarcd knows") || !strings.Contains(err.Error(), "upgrade dmarcd") {
		if err == nil {
			s.Close()
		}
		t.Errorf("Open: %v", err)
	}
	if s, err := e.OpenReadOnly(ctx, loc); err == nil || !strings.Contains(err.Error(), "upgrade dmarcd") {
		if err == nil {
			s.Close()
		}
		t.Errorf("OpenReadOnly: %v", err)
	}
}

// retention drops what was filed before the cutoff from every view, and
// keeps the rest.
func retention(t *testing.T, s SchemaStore, r dmarcd.Retainer) {
	ctx := context.Background()
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	for i, month := range []time.Month{8, 9, 10, 11} {
		rep := Report(fmt.Sprint("r", i))
		rep.Metadata.DateBegin = time.Date(2026, month, 3, 0, 0, 0, 0, time.UTC)
		rep.Metadata.DateEnd = rep.Metadata.DateBegin.Add(24*time.Hour - time.Second)
		if err := Store(t, s, rep, Records()); err != nil {
			t.Fatal(err)
		}
		f := &dmarcd.FailureReport{ReportFrom: "r@receiver.example", ReportedDomain: "example.com",
			ArrivalDate: rep.Metadata.DateBegin, ArrivalDateText: rep.Metadata.DateBegin.String()}
		if err := s.AddFailure(ctx, f, dmarcd.Origin{ReceivedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	if f, ok := s.(dmarcd.Flusher); ok {
		if err := f.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	q := dmarcd.Quarantined{Origin: dmarcd.Origin{ReceivedAt: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}, Raw: []byte("old")}
	if err := s.Quarantine(ctx, q); err != nil {
		t.Fatal(err)
	}
	// Keep November and the two months before.
	if _, err := r.DropBefore(ctx, dmarcd.RetentionCutoff(now, 2)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ query, want string }{
		{`SELECT MIN(day), COUNT(*) FROM reports`, "2026-09-03|3\n"},
		{`SELECT MIN(day), SUM(count) FROM records`, "2026-09-03|39\n"},
		{`SELECT MIN(day), SUM(messages) FROM daily_domains`, "2026-09-03|39\n"},
		{`SELECT SUM(messages) FROM daily_sources`, "39\n"},
		{`SELECT SUM(messages) FROM daily_selectors`, "60\n"},
		{`SELECT SUM(reports) FROM daily_reporters`, "3\n"},
		{`SELECT COUNT(*) FROM failures`, "3\n"},
		{`SELECT COUNT(*) FROM quarantined`, "0\n"},
	} {
		if got := QueryString(t, s, c.query); got != c.want {
			t.Errorf("%s\n got: %q\nwant: %q", c.query, got, c.want)
		}
	}
	// Nothing more to drop.
	if n, err := r.DropBefore(ctx, dmarcd.RetentionCutoff(now, 2)); err != nil || n != 0 {
		t.Errorf("second run dropped %d, %v", n, err)
	}
}

// alertStore runs an alert's life and the outbox: the latest state of
// each alert, notifications pending oldest first and kept once, claims
// that one holder at a time wins, delivered and undeliverable ones leaving
// the outbox.
func alertStore(t *testing.T, s SchemaStore, a dmarcd.AlertStore) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	event := func(subject, state string, at time.Time) dmarcd.AlertEvent {
		return dmarcd.AlertEvent{At: at, Key: "example.com|pass-rate|" + subject, Domain: "example.com", Kind: dmarcd.AlertPassRate,
			Subject: subject, State: state, Title: subject + " " + state, Text: "text of " + subject}
	}
	for _, ev := range []dmarcd.AlertEvent{
		event("a", dmarcd.AlertFiring, t0), event("b", dmarcd.AlertFiring, t0),
		event("a", dmarcd.AlertResolved, t0.Add(time.Hour)),
		// Two events in the same second: the later one counts.
		event("c", dmarcd.AlertFiring, t0.Add(time.Hour)), event("c", dmarcd.AlertResolved, t0.Add(time.Hour)),
	} {
		if err := a.AddAlertEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	states, err := a.AlertStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range states {
		got = append(got, e.Subject+" "+e.State+" "+e.At.UTC().Format(time.DateTime)+" "+string(e.Kind))
	}
	want := []string{"b firing 2026-11-02 09:00:00 pass-rate", "a resolved 2026-11-02 10:00:00 pass-rate", "c resolved 2026-11-02 10:00:00 pass-rate"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("states\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := QueryString(t, s, `SELECT at, subject, state FROM alerts ORDER BY at, subject, state`); got !=
		"2026-11-02 09:00:00|a|firing\n2026-11-02 09:00:00|b|firing\n2026-11-02 10:00:00|a|resolved\n2026-11-02 10:00:00|c|firing\n2026-11-02 10:00:00|c|resolved\n" {
		t.Errorf("alerts view: %q", got)
	}

	for _, n := range []dmarcd.Notification{
		{ID: "n1", Created: t0, Kind: "alert", Payload: []byte(`{"n":1}`)},
		{ID: "n2", Created: t0, Kind: "alert", Payload: []byte(`{"n":2}`)},
		{ID: "n3", Created: t0.Add(time.Minute), Kind: "alert", Payload: []byte(`{"n":3}`), To: "org:7"},
		{ID: "n0", Created: t0.Add(-time.Hour), Kind: "weekly", Payload: []byte(`{"n":0}`)},
		{ID: "n1", Created: t0, Kind: "alert", Payload: []byte(`{"again":true}`)}, // kept once: the first
	} {
		if err := a.AddNotification(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	pending := func() string {
		t.Helper()
		ns, err := a.PendingNotifications(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out string
		for _, n := range ns {
			out += n.ID + " " + n.Kind + " " + n.Created.UTC().Format(time.DateTime) + " " + string(n.Payload)
			if n.To != "" {
				out += " to " + n.To
			}
			out += "\n"
		}
		return out
	}
	if got := pending(); got != "n0 weekly 2026-11-02 08:00:00 {\"n\":0}\nn1 alert 2026-11-02 09:00:00 {\"n\":1}\nn2 alert 2026-11-02 09:00:00 {\"n\":2}\nn3 alert 2026-11-02 09:01:00 {\"n\":3} to org:7\n" {
		t.Errorf("pending: %q", got)
	}

	// Claims: one holder at a time, until its claim lapses.
	claim := func(owner string, at time.Time) bool {
		t.Helper()
		ok, err := a.ClaimNotification(ctx, "n2", owner, at, at.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !claim("daemon", t0) {
		t.Error("the first claim failed")
	}
	if claim("cron", t0.Add(30*time.Second)) {
		t.Error("a second holder claimed a held notification")
	}
	if !claim("daemon", t0.Add(30*time.Second)) {
		t.Error("the holder could not renew its claim")
	}
	if !claim("cron", t0.Add(2*time.Minute)) {
		t.Error("a lapsed claim could not be taken over")
	}

	for _, id := range []string{"n1", "n1", "n0"} {
		if err := a.MarkDelivered(ctx, id, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.MarkUndeliverable(ctx, "n2", t0.Add(time.Minute), "404 no_service"); err != nil {
		t.Fatal(err)
	}
	if got := pending(); got != "n3 alert 2026-11-02 09:01:00 {\"n\":3} to org:7\n" {
		t.Errorf("pending after deliveries: %q", got)
	}
}

// QueryString runs q and renders its rows the same for every engine:
// columns joined by |, rows ended by a newline; days as YYYY-MM-DD, times
// as YYYY-MM-DD HH:MM:SS (UTC), arrays as JSON, NULL as <nil>.
func QueryString(t testing.TB, s dmarcd.Store, q string, args ...any) string {
	t.Helper()
	rows, err := s.Query(context.Background(), q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	types, err := rows.ColumnTypes()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for rows.Next() {
		vals := make([]any, len(types))
		ptrs := make([]any, len(types))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			if i > 0 {
				out.WriteByte('|')
			}
			out.WriteString(render(v, types[i].DatabaseTypeName()))
		}
		out.WriteByte('\n')
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return out.String()
}

// render writes one value as QueryString does. The SQLite driver gives
// int64, float64, string, []byte and nil; ClickHouse's gives typed values,
// pointers for Nullable columns and slices for arrays.
func render(v any, typ string) string {
	switch v := v.(type) {
	case nil:
		return "<nil>"
	case []byte:
		return string(v)
	case time.Time:
		if typ == "Date" {
			return v.Format(time.DateOnly)
		}
		return v.UTC().Format(time.DateTime)
	case *time.Time:
		if v == nil {
			return "<nil>"
		}
		return render(*v, typ)
	case []string:
		b, _ := json.Marshal(v)
		return string(b)
	case *int16:
		if v == nil {
			return "<nil>"
		}
		return fmt.Sprint(*v)
	case *string:
		if v == nil {
			return "<nil>"
		}
		return *v
	}
	return fmt.Sprint(v)
}

// leases: one holder at a time, renewed by its holder, taken over once it
// lapsed or was released; and of processes racing for a free lease, each
// with its own connection to the store, at most one holds it, round after
// round (leaseRounds), each round a lease that has lapsed again.
func leases(t *testing.T, e Engine) {
	ctx := context.Background()
	loc := e.Location(t)
	stores := make([]dmarcd.LeaseStore, leaseRacers)
	for i := range stores {
		s, err := e.Open(ctx, loc)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		l, ok := s.(dmarcd.LeaseStore)
		if !ok {
			t.Skip("the store keeps no leases (not a dmarcd.LeaseStore)")
		}
		stores[i] = l
	}
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	hold := func(s dmarcd.LeaseStore, name, owner string, at time.Time) bool {
		t.Helper()
		ok, err := s.HoldLease(ctx, name, owner, at, at.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	a, b := stores[0], stores[1]
	if !hold(a, "mailbox/x", "a", t0) {
		t.Error("a free lease could not be taken")
	}
	if hold(b, "mailbox/x", "b", t0.Add(30*time.Second)) {
		t.Error("a held lease was taken by another")
	}
	if !hold(a, "mailbox/x", "a", t0.Add(40*time.Second)) {
		t.Error("the holder could not renew its lease")
	}
	if hold(b, "mailbox/x", "b", t0.Add(90*time.Second)) {
		t.Error("a renewed lease was taken before it lapsed")
	}
	if !hold(b, "mailbox/y", "b", t0) {
		t.Error("another lease could not be taken")
	}
	if !hold(b, "mailbox/x", "b", t0.Add(101*time.Second)) {
		t.Error("a lapsed lease could not be taken over")
	}
	if hold(a, "mailbox/x", "a", t0.Add(102*time.Second)) {
		t.Error("the old holder took back a lease taken over")
	}
	if err := b.ReleaseLease(ctx, "mailbox/x", "b", t0.Add(103*time.Second)); err != nil {
		t.Fatal(err)
	}
	if !hold(a, "mailbox/x", "a", t0.Add(104*time.Second)) {
		t.Error("a released lease could not be taken")
	}

	for round := range leaseRounds {
		at := t0.Add(time.Duration(round+10) * time.Hour)
		held := make([]bool, len(stores))
		var wg sync.WaitGroup
		for i, s := range stores {
			wg.Go(func() {
				ok, err := s.HoldLease(ctx, "race", fmt.Sprint("p", i), at, at.Add(time.Minute))
				if err != nil {
					t.Error(err)
				}
				held[i] = ok
			})
		}
		wg.Wait()
		n := 0
		for _, ok := range held {
			if ok {
				n++
			}
		}
		if n > 1 {
			t.Fatalf("round %d: %d processes hold one lease: %v", round, n, held)
		}
	}
}

// Processes and rounds of the lease race.
const (
	leaseRacers = 4
	leaseRounds = 20
)
