package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/internal/storetest"
)

// commit begins, writes and commits a report without flushing.
func commit(t testing.TB, s *Store, r *dmarcd.AggregateReport, recs []dmarcd.Record) error {
	t.Helper()
	w, err := storetest.Write(t, s, r, recs)
	if err != nil {
		return err
	}
	defer w.Abort()
	return w.Commit(context.Background(), r)
}

// TestGroupWrittenOnFlush: committed reports wait in the group, unseen and
// yet duplicates, until Flush writes them in one insert per table.
func TestGroupWrittenOnFlush(t *testing.T) {
	s, _ := openTemp(t, Options{})
	ctx := context.Background()
	for i := range 3 {
		if err := commit(t, s, storetest.Report(fmt.Sprint("r", i)), storetest.Records()); err != nil {
			t.Fatal(err)
		}
	}
	if got := queryString(t, s, `SELECT (SELECT count() FROM aggregate_reports), (SELECT count() FROM aggregate_records)`); got != "0|0\n" {
		t.Errorf("before Flush: %q", got)
	}
	if _, err := s.BeginAggregate(ctx, storetest.Report("r1"), dmarcd.Origin{}); !errors.Is(err, dmarcd.ErrDuplicate) {
		t.Errorf("a report waiting in the group: got %v, want ErrDuplicate", err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ query, want string }{
		{`SELECT COUNT(*), SUM(message_count) FROM reports`, "3|39\n"},
		{`SELECT COUNT(*), SUM(count) FROM records`, "6|39\n"},
		{`SELECT SUM(messages), SUM(dmarc_pass) FROM daily_domains`, "39|30\n"},
		{`SELECT count() FROM rollup_unsettled`, "0\n"},
		// One insert per table: one part each.
		{`SELECT table, count() FROM system.parts WHERE database = currentDatabase() AND active
			AND table IN ('aggregate_reports', 'aggregate_records', 'rollup_domains') GROUP BY table ORDER BY table`,
			"aggregate_records|1\naggregate_reports|1\nrollup_domains|1\n"},
	} {
		if got := queryString(t, s, c.query); got != c.want {
			t.Errorf("%s\n got: %q\nwant: %q", c.query, got, c.want)
		}
	}
	if err := commit(t, s, storetest.Report("r1"), storetest.Records()); !errors.Is(err, dmarcd.ErrDuplicate) {
		t.Errorf("a stored report: got %v, want ErrDuplicate", err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Errorf("Flush of an empty group: %v", err)
	}
}

// TestGroupBounds: a group is written at the Commit that fills it, by
// reports, by records, or by age.
func TestGroupBounds(t *testing.T) {
	count := func(s *Store) string {
		return queryString(t, s, `SELECT count() FROM aggregate_reports`)
	}
	for _, c := range []struct {
		name    string
		opts    Options
		written int // reports visible after the third commit
	}{
		{"reports", Options{GroupReports: 3}, 3},
		{"records", Options{GroupRecords: 4}, 2}, // two reports of two records fill it
		{"one", Options{GroupReports: 1}, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, _ := openTemp(t, c.opts)
			for i := range 3 {
				if err := commit(t, s, storetest.Report(fmt.Sprint("r", i)), storetest.Records()); err != nil {
					t.Fatal(err)
				}
			}
			if got := count(s); got != fmt.Sprintf("%d\n", c.written) {
				t.Errorf("after three commits: %q reports, want %d", got, c.written)
			}
		})
	}
	t.Run("age", func(t *testing.T) {
		s, _ := openTemp(t, Options{GroupAge: 200 * time.Millisecond})
		if err := commit(t, s, storetest.Report("r0"), storetest.Records()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(250 * time.Millisecond)
		if err := commit(t, s, storetest.Report("r1"), storetest.Records()); err != nil {
			t.Fatal(err)
		}
		if got := count(s); got != "2\n" {
			t.Errorf("a commit after the group's age: %q reports", got)
		}
	})
}

// TestGroupCloseWrites: Close writes what is pending.
func TestGroupCloseWrites(t *testing.T) {
	s, dsn := openTemp(t, Options{})
	if err := commit(t, s, storetest.Report("r1"), storetest.Records()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	storetest.CheckViews(t, s2)
}

// TestGroupSameReportTwice: two writers of one report in one process, both
// past BeginAggregate: the group holds it once, and so do the rollups.
func TestGroupSameReportTwice(t *testing.T) {
	s, _ := openTemp(t, Options{})
	ctx := context.Background()
	w1, err := storetest.Write(t, s, storetest.Report("r1"), storetest.Records())
	if err != nil {
		t.Fatal(err)
	}
	w2, err := storetest.Write(t, s, storetest.Report("r1"), storetest.Records())
	if err != nil {
		t.Fatal(err)
	}
	r := storetest.Report("r1")
	r.RecordCount, r.MessageCount = 2, 13
	for _, w := range []dmarcd.RecordWriter{w1, w2} {
		if err := w.Commit(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	storetest.CheckViews(t, s)
	if got := queryString(t, s, `SELECT count(), sum(messages) FROM rollup_domains`); got != "1|13\n" {
		t.Errorf("rollup_domains: %q", got)
	}
}

// TestGroupLargeReport: a report larger than a batch inserts its first
// records while it is read and the rest with the group; the ledger finds
// it fed exactly once.
func TestGroupLargeReport(t *testing.T) {
	s, _ := openTemp(t, Options{BatchRecords: 1})
	ctx := context.Background()
	if err := commit(t, s, storetest.Report("r1"), storetest.Records()); err != nil {
		t.Fatal(err)
	}
	if got := queryString(t, s, `SELECT count() FROM aggregate_records`); got != "2\n" {
		t.Errorf("records inserted while the report was read: %q", got)
	}
	if got := queryString(t, s, `SELECT count() FROM reports`); got != "0\n" {
		t.Errorf("the report is visible before Flush: %q", got)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	storetest.CheckViews(t, s)
	if got := queryString(t, s, `SELECT count() FROM rollup_unsettled`); got != "0\n" {
		t.Errorf("unsettled: %q", got)
	}
}

// TestGroupKeptOnFailure: a write that fails keeps the group; the reports
// stay duplicates meanwhile, and the next Flush stores them once.
func TestGroupKeptOnFailure(t *testing.T) {
	s, _ := openTemp(t, Options{})
	ctx := context.Background()
	if err := commit(t, s, storetest.Report("r1"), storetest.Records()); err != nil {
		t.Fatal(err)
	}
	dead, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Flush(dead); err == nil {
		t.Fatal("Flush with an ended context succeeded")
	}
	if err := commit(t, s, storetest.Report("r1"), storetest.Records()); !errors.Is(err, dmarcd.ErrDuplicate) {
		t.Errorf("a report of a failed group offered again: got %v, want ErrDuplicate", err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	storetest.CheckViews(t, s)
	if got := queryString(t, s, `SELECT count() FROM rollup_unsettled`); got != "0\n" {
		t.Errorf("unsettled: %q", got)
	}
}

// TestGroupConcurrentWriters: goroutines of one process committing the
// same reports into one group, and flushing, store each report once.
func TestGroupConcurrentWriters(t *testing.T) {
	s, _ := openTemp(t, Options{})
	const reports, writers = 20, 4
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for j := range reports {
				err := commit(t, s, storetest.Report(fmt.Sprint(j)), storetest.Records())
				if err != nil && !errors.Is(err, dmarcd.ErrDuplicate) {
					t.Error(err)
				}
				if j%7 == 6 {
					if err := s.Flush(context.Background()); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ query, want string }{
		{`SELECT COUNT(*), SUM(message_count) FROM reports`, fmt.Sprintf("%d|%d\n", reports, reports*13)},
		{`SELECT COUNT(*), SUM(count) FROM records`, fmt.Sprintf("%d|%d\n", 2*reports, reports*13)},
		{`SELECT SUM(messages) FROM daily_domains`, fmt.Sprintf("%d\n", reports*13)},
		{`SELECT SUM(reports) FROM daily_reporters`, fmt.Sprintf("%d\n", reports)},
	} {
		if got := queryString(t, s, c.query); got != c.want {
			t.Errorf("%s\n got: %q\nwant: %q", c.query, got, c.want)
		}
	}
}

// failureReport is a failure report about example.com numbered i.
func failureReport(i int) *dmarcd.FailureReport {
	return &dmarcd.FailureReport{ReportFrom: "r@receiver.example", FeedbackType: "auth-failure", ReportedDomain: "example.com",
		SourceIP: fmt.Sprintf("192.0.2.%d", i), ArrivalDate: time.Date(2026, 11, 2, 8, 0, i, 0, time.UTC),
		ArrivalDateText: fmt.Sprint("Mon, 2 Nov 2026 08:00:", i), OriginalHeaders: "From: a@example.com\r\n"}
}

// TestGroupFailureReports: failure reports wait in the group with the
// aggregate reports, duplicates already, and are written by Flush in one
// insert; the group's bound on reports holds for them too.
func TestGroupFailureReports(t *testing.T) {
	s, _ := openTemp(t, Options{GroupReports: 5})
	ctx := context.Background()
	for i := range 3 {
		if err := s.AddFailure(ctx, failureReport(i), dmarcd.Origin{ReceivedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if err := commit(t, s, storetest.Report("r1"), storetest.Records()); err != nil {
		t.Fatal(err)
	}
	if got := queryString(t, s, `SELECT (SELECT count() FROM failure_reports), (SELECT count() FROM aggregate_reports)`); got != "0|0\n" {
		t.Errorf("before Flush: %q", got)
	}
	if err := s.AddFailure(ctx, failureReport(1), dmarcd.Origin{ReceivedAt: time.Now()}); !errors.Is(err, dmarcd.ErrDuplicate) {
		t.Errorf("a failure report waiting in the group: got %v, want ErrDuplicate", err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ query, want string }{
		{`SELECT COUNT(*) FROM failures`, "3\n"},
		{`SELECT COUNT(*) FROM reports`, "1\n"},
		{`SELECT count() FROM system.parts WHERE database = currentDatabase() AND active AND table = 'failure_reports'`, "1\n"},
	} {
		if got := queryString(t, s, c.query); got != c.want {
			t.Errorf("%s\n got: %q\nwant: %q", c.query, got, c.want)
		}
	}
	// Five waiting failure reports fill the group: the fifth writes it.
	for i := 10; i < 15; i++ {
		if err := s.AddFailure(ctx, failureReport(i), dmarcd.Origin{ReceivedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if got := queryString(t, s, `SELECT COUNT(*) FROM failures`); got != "8\n" {
		t.Errorf("after filling the group: %q failure reports, want 8", got)
	}
}
