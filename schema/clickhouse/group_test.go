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

// tlsReport is a TLS report about example.com numbered i, with a policy
// and a failure detail.
func tlsReport(i int) *dmarcd.TLSReport {
	day := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	return &dmarcd.TLSReport{OrganizationName: "Reporter", ReportID: fmt.Sprint("tls-", i), DateBegin: day, DateEnd: day.Add(24*time.Hour - time.Second),
		Policies: []dmarcd.TLSPolicy{{Type: "sts", Domain: "example.com", MXHosts: []string{"mx.example.com"}, SuccessfulSessions: 10, FailedSessions: 2,
			FailureDetails: []dmarcd.TLSFailureDetail{{ResultType: "certificate-expired", SendingMTAIP: "192.0.2.1", ReceivingMXHostname: "mx.example.com", FailedSessions: 2}}}}}
}

// TestGroupTLSReports: TLS reports wait in the group, duplicates already,
// and are written by Flush in one insert per table; a write that fails
// keeps them, and the next Flush stores them once.
func TestGroupTLSReports(t *testing.T) {
	s, _ := openTemp(t, Options{GroupReports: 5})
	ctx := context.Background()
	origin := dmarcd.Origin{ReceivedAt: time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)}
	for i := range 3 {
		if err := s.AddTLSReport(ctx, tlsReport(i), origin); err != nil {
			t.Fatal(err)
		}
	}
	if got := queryString(t, s, `SELECT (SELECT count() FROM tlsrpt_reports), (SELECT count() FROM tlsrpt_policies)`); got != "0|0\n" {
		t.Errorf("before Flush: %q", got)
	}
	if err := s.AddTLSReport(ctx, tlsReport(1), origin); !errors.Is(err, dmarcd.ErrDuplicate) {
		t.Errorf("a TLS report waiting in the group: got %v, want ErrDuplicate", err)
	}
	dead, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Flush(dead); err == nil {
		t.Fatal("Flush with an ended context succeeded")
	}
	if err := s.AddTLSReport(ctx, tlsReport(2), origin); !errors.Is(err, dmarcd.ErrDuplicate) {
		t.Errorf("a TLS report of a failed group offered again: got %v, want ErrDuplicate", err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ query, want string }{
		{`SELECT COUNT(*), SUM(successful_sessions), SUM(failed_sessions) FROM tls_reports`, "3|30|6\n"},
		{`SELECT COUNT(*) FROM tls_policies`, "3\n"},
		{`SELECT COUNT(*), SUM(failed_sessions) FROM tls_failures`, "3|6\n"},
		{`SELECT table, count() FROM system.parts WHERE database = currentDatabase() AND active
			AND table LIKE 'tlsrpt_%' GROUP BY table ORDER BY table`, "tlsrpt_failures|1\ntlsrpt_policies|1\ntlsrpt_reports|1\n"},
	} {
		if got := queryString(t, s, c.query); got != c.want {
			t.Errorf("%s\n got: %q\nwant: %q", c.query, got, c.want)
		}
	}
	if err := s.AddTLSReport(ctx, tlsReport(0), origin); !errors.Is(err, dmarcd.ErrDuplicate) {
		t.Errorf("a stored TLS report: got %v, want ErrDuplicate", err)
	}
	// Five waiting TLS reports fill the group: the fifth writes it.
	for i := 10; i < 15; i++ {
		if err := s.AddTLSReport(ctx, tlsReport(i), origin); err != nil {
			t.Fatal(err)
		}
	}
	if got := queryString(t, s, `SELECT COUNT(*) FROM tls_reports`); got != "8\n" {
		t.Errorf("after filling the group: %q TLS reports, want 8", got)
	}
}

// TestGroupStoredByAnother: a process that read the keys of a partition
// (known.go) takes a report another process stores afterwards, and drops
// it when it writes its group: every kind of report is stored once, and
// is a duplicate for both processes afterwards.
func TestGroupStoredByAnother(t *testing.T) {
	a, dsn := openTemp(t, Options{})
	b, err := OpenOptions(context.Background(), dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	origin := dmarcd.Origin{ReceivedAt: time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)}
	// b reads the partitions' keys with a first report of each kind.
	if err := commit(t, b, storetest.Report("r0"), storetest.Records()); err != nil {
		t.Fatal(err)
	}
	if err := b.AddFailure(ctx, failureReport(0), origin); err != nil {
		t.Fatal(err)
	}
	if err := b.AddTLSReport(ctx, tlsReport(0), origin); err != nil {
		t.Fatal(err)
	}
	// a stores the next reports and writes them.
	if err := commit(t, a, storetest.Report("r1"), storetest.Records()); err != nil {
		t.Fatal(err)
	}
	if err := a.AddFailure(ctx, failureReport(1), origin); err != nil {
		t.Fatal(err)
	}
	if err := a.AddTLSReport(ctx, tlsReport(1), origin); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// b, not knowing, takes them, and drops them when it writes.
	if err := commit(t, b, storetest.Report("r1"), storetest.Records()); err != nil {
		t.Fatal(err)
	}
	if err := b.AddFailure(ctx, failureReport(1), origin); err != nil {
		t.Fatal(err)
	}
	if err := b.AddTLSReport(ctx, tlsReport(1), origin); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ query, want string }{
		{`SELECT count(), uniqExact(report_key) FROM aggregate_reports`, "2|2\n"},
		{`SELECT count(), uniqExact(report_key, seq) FROM aggregate_records`, "4|4\n"},
		{`SELECT count(), uniqExact(report_key) FROM failure_reports`, "2|2\n"},
		{`SELECT count(), uniqExact(report_key) FROM tlsrpt_reports`, "2|2\n"},
		{`SELECT count(), uniqExact(report_key) FROM tlsrpt_policies`, "2|2\n"},
		{`SELECT count() FROM rollup_unsettled`, "0\n"},
	} {
		if got := queryString(t, b, c.query); got != c.want {
			t.Errorf("%s\n got: %q\nwant: %q", c.query, got, c.want)
		}
	}
	if got := queryString(t, b, `SELECT COUNT(*), SUM(messages) FROM daily_reporters`); got != "1|26\n" {
		t.Errorf("daily_reporters: %q", got)
	}
	for _, s := range []*Store{a, b} {
		if err := commit(t, s, storetest.Report("r1"), storetest.Records()); !errors.Is(err, dmarcd.ErrDuplicate) {
			t.Errorf("a stored report: got %v, want ErrDuplicate", err)
		}
		if err := s.AddFailure(ctx, failureReport(1), origin); !errors.Is(err, dmarcd.ErrDuplicate) {
			t.Errorf("a stored failure report: got %v, want ErrDuplicate", err)
		}
		if err := s.AddTLSReport(ctx, tlsReport(1), origin); !errors.Is(err, dmarcd.ErrDuplicate) {
			t.Errorf("a stored TLS report: got %v, want ErrDuplicate", err)
		}
	}
}
