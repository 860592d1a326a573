package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/internal/storetest"
)

func openTemp(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dmarcd.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func queryString(t testing.TB, s *Store, q string, args ...any) string {
	t.Helper()
	rows, err := s.Query(context.Background(), q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			if i > 0 {
				out += "|"
			}
			if b, ok := v.([]byte); ok {
				v = string(b)
			}
			out += fmt.Sprint(v)
		}
		out += "\n"
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestStoreOnce(t *testing.T) {
	s, _ := openTemp(t)
	if err := storetest.Store(t, s, storetest.Report("r1"), storetest.Records()); err != nil {
		t.Fatal(err)
	}
	if err := storetest.Store(t, s, storetest.Report("r1"), storetest.Records()); !errors.Is(err, dmarcd.ErrDuplicate) {
		t.Fatalf("second store: got %v, want ErrDuplicate", err)
	}
	// Same id, another day: another report.
	r := storetest.Report("r1")
	r.Metadata.DateBegin = r.Metadata.DateBegin.AddDate(0, 0, 1)
	if err := storetest.Store(t, s, r, storetest.Records()); err != nil {
		t.Fatal(err)
	}
	got := queryString(t, s, `SELECT COUNT(*), SUM(count) FROM records`)
	if got != "4|26\n" {
		t.Errorf("records: %q", got)
	}
}

func TestAbortLeavesNothing(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	w, err := s.BeginAggregate(ctx, storetest.Report("r1"), dmarcd.Origin{})
	if err != nil {
		t.Fatal(err)
	}
	recs := storetest.Records()
	w.Write(ctx, &recs[0])
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if got := queryString(t, s, `SELECT (SELECT COUNT(*) FROM reports), (SELECT COUNT(*) FROM records)`); got != "0|0\n" {
		t.Errorf("after abort: %q", got)
	}
	// The aborted report can be stored afterwards.
	if err := storetest.Store(t, s, storetest.Report("r1"), storetest.Records()); err != nil {
		t.Fatal(err)
	}
}

func TestViews(t *testing.T) {
	s, _ := openTemp(t)
	if err := storetest.Store(t, s, storetest.Report("r1"), storetest.Records()); err != nil {
		t.Fatal(err)
	}
	for _, c := range storetest.Views {
		if got := queryString(t, s, c.Query); got != c.Want {
			t.Errorf("%s\n got: %q\nwant: %q", c.Query, got, c.Want)
		}
	}
}

func TestQueryIsReadOnly(t *testing.T) {
	s, _ := openTemp(t)
	if _, err := s.Query(context.Background(), `DELETE FROM aggregate_reports`); err == nil {
		t.Fatal("a DELETE through Query succeeded")
	}
}

func TestQuarantineOnce(t *testing.T) {
	s, _ := openTemp(t)
	q := dmarcd.Quarantined{Origin: dmarcd.Origin{Source: "file:/x"}, Reason: "bad", Raw: []byte("junk")}
	for range 2 {
		if err := s.Quarantine(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	if got := queryString(t, s, `SELECT reason, size FROM quarantined`); got != "bad|4\n" {
		t.Errorf("quarantine: %q", got)
	}
}

func TestFailureOnce(t *testing.T) {
	s, _ := openTemp(t)
	f := &dmarcd.FailureReport{ReportFrom: "r@receiver.example", FeedbackType: "auth-failure", ReportedDomain: "example.com",
		SourceIP: "192.0.2.9", ArrivalDateText: "Mon, 2 Nov 2026 08:00:00 +0000", OriginalHeaders: "From: a@example.com\r\n"}
	if err := s.AddFailure(context.Background(), f, dmarcd.Origin{}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddFailure(context.Background(), f, dmarcd.Origin{}); !errors.Is(err, dmarcd.ErrDuplicate) {
		t.Fatalf("got %v, want ErrDuplicate", err)
	}
	if got := queryString(t, s, `SELECT domain, source_ip, feedback_type FROM failures`); got != "example.com|192.0.2.9|auth-failure\n" {
		t.Errorf("failures: %q", got)
	}
}

// TestConcurrentWriters stores the same reports from two stores on one
// file at once, as two dmarcd processes would: each report lands once.
func TestConcurrentWriters(t *testing.T) {
	_, path := openTemp(t)
	var wg sync.WaitGroup
	stored := make([]int, 2)
	for i := range 2 {
		s, err := Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				err := storetest.Store(t, s, storetest.Report(fmt.Sprint(j)), storetest.Records())
				if err == nil {
					stored[i]++
				} else if !errors.Is(err, dmarcd.ErrDuplicate) {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if stored[0]+stored[1] != 50 {
		t.Errorf("stored %d + %d, want 50 in all", stored[0], stored[1])
	}
	s, _ := Open(context.Background(), path)
	defer s.Close()
	if got := queryString(t, s, `SELECT COUNT(*) FROM reports`); got != "50\n" {
		t.Errorf("reports: %q", got)
	}
}

func TestMigrateIsIdempotent(t *testing.T) {
	s, path := openTemp(t)
	v, err := s.SchemaVersion(context.Background())
	if err != nil || v < 1 {
		t.Fatalf("version %d, %v", v, err)
	}
	s.Close()
	s2, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
}

// TestRollupsMatchRecords: the rollups kept on insert equal the sums over
// the records they summarise.
func TestRollupsMatchRecords(t *testing.T) {
	s, _ := openTemp(t)
	for i := range 5 {
		r := storetest.Report(fmt.Sprint(i))
		r.Metadata.DateBegin = r.Metadata.DateBegin.AddDate(0, 0, i%2)
		if i == 4 {
			r.Metadata.OrgName = "Yahoo"
		}
		if err := storetest.Store(t, s, r, storetest.Records()); err != nil {
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
		got, want := queryString(t, s, c.rollup), queryString(t, s, c.direct)
		if got != want || got == "" {
			t.Errorf("%s\n got %q\nwant %q", c.rollup, got, want)
		}
	}
}

// TestOpenReadOnly: a path without a store is refused (a mistyped --store
// creates nothing); an existing store reads, and writes fail.
func TestOpenReadOnly(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "typo.db")
	if _, err := OpenReadOnly(context.Background(), missing); !errors.Is(err, ErrNoStore) {
		t.Errorf("missing store: %v", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Error("OpenReadOnly created the file")
	}
	s, path := openTemp(t)
	if err := storetest.Store(t, s, storetest.Report("r1"), storetest.Records()); err != nil {
		t.Fatal(err)
	}
	ro, err := OpenReadOnly(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	var n int
	if err := ro.ro.QueryRow("SELECT COUNT(*) FROM reports").Scan(&n); err != nil || n != 1 {
		t.Errorf("reading: %d, %v", n, err)
	}
	if err := ro.Quarantine(context.Background(), dmarcd.Quarantined{Raw: []byte("x")}); err == nil {
		t.Error("a read-only store took a write")
	}
}

// TestConcurrentFirstUse: processes that open a new store at once all
// succeed: each migration checks the version inside its transaction.
func TestConcurrentFirstUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.db")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			s, err := Open(context.Background(), path)
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
}

// TestNewerSchemaRefused: a store written by a newer dmarcd is refused,
// for writing and for reading, with a word on what to do.
func TestNewerSchemaRefused(t *testing.T) {
	s, path := openTemp(t)
	if _, err := s.db.Exec("PRAGMA user_version = 999"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(context.Background(), path); err == nil || !strings.Contains(err.Error(), "newer than this dmarcd knows") {
		t.Errorf("Open: %v", err)
	}
	if _, err := OpenReadOnly(context.Background(), path); err == nil || !strings.Contains(err.Error(), "upgrade dmarcd") {
		t.Errorf("OpenReadOnly: %v", err)
	}
}

// TestFlushSyncs: after Flush every committed frame of the WAL is in the
// database file (the checkpoint syncs the WAL first).
func TestFlushSyncs(t *testing.T) {
	s, _ := openTemp(t)
	if err := storetest.Store(t, s, storetest.Report("r1"), storetest.Records()); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var busy, frames, done int
	if err := s.db.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &done); err != nil || busy != 0 || frames != done {
		t.Errorf("after Flush: busy %d, %d frames, %d checkpointed, %v", busy, frames, done, err)
	}
}

// BenchmarkFlush is the cost of making a report durable before its mail
// is moved: a report of 10 records stored, then Flush, against the same
// without Flush (the IMAP poller flushes once per batch of messages).
func BenchmarkFlush(b *testing.B) {
	for _, flush := range []bool{false, true} {
		b.Run(fmt.Sprintf("flush=%v", flush), func(b *testing.B) {
			s, _ := openTemp(b)
			for i := range b.N {
				if err := storetest.Store(b, s, storetest.Report(fmt.Sprint("r", i)), storetest.Records()); err != nil {
					b.Fatal(err)
				}
				if flush {
					if err := s.Flush(context.Background()); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
