package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/internal/storetest"
)

func openGroup(t *testing.T, opts Options) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dmarcd.db")
	s, err := OpenOptions(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// commit writes the report id with recs and commits it, without Flush.
func commit(t *testing.T, s *Store, id string, recs []dmarcd.Record) {
	t.Helper()
	w, err := storetest.Write(t, s, storetest.Report(id), recs)
	if err != nil {
		t.Fatal(err)
	}
	r := storetest.Report(id)
	for _, rec := range recs {
		r.RecordCount++
		r.MessageCount += rec.Count
	}
	if err := w.Commit(context.Background(), r); err != nil {
		t.Fatal(err)
	}
}

// reportsSeen counts the reports another connection to the file sees.
func reportsSeen(t *testing.T, path string) string {
	t.Helper()
	ro, err := OpenReadOnly(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	return strings.TrimSpace(storetest.QueryString(t, ro, `SELECT COUNT(*) FROM reports`))
}

// TestGroupCommits: committed reports wait in the open group, unseen by
// other connections, until Flush, until the group is full, or until it is
// GroupAge old; and another write of the store commits it first.
func TestGroupCommits(t *testing.T) {
	t.Run("flush", func(t *testing.T) {
		s, path := openGroup(t, Options{GroupAge: time.Hour})
		commit(t, s, "r1", storetest.Records())
		if got := reportsSeen(t, path); got != "0" {
			t.Fatalf("before Flush another connection sees %s reports", got)
		}
		if err := s.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := reportsSeen(t, path); got != "1" {
			t.Fatalf("after Flush: %s reports", got)
		}
	})
	t.Run("full", func(t *testing.T) {
		s, path := openGroup(t, Options{GroupReports: 2, GroupAge: time.Hour})
		commit(t, s, "r1", storetest.Records())
		commit(t, s, "r2", storetest.Records())
		commit(t, s, "r3", storetest.Records())
		if got := reportsSeen(t, path); got != "2" {
			t.Fatalf("groups of 2, 3 reports committed: another connection sees %s", got)
		}
	})
	t.Run("records", func(t *testing.T) {
		s, path := openGroup(t, Options{GroupRecords: 3, GroupAge: time.Hour})
		commit(t, s, "r1", storetest.Records()) // 2 records
		commit(t, s, "r2", storetest.Records()) // 4: the group commits
		commit(t, s, "r3", storetest.Records())
		if got := reportsSeen(t, path); got != "2" {
			t.Fatalf("groups of 3 records, 6 committed: another connection sees %s reports", got)
		}
	})
	t.Run("age", func(t *testing.T) {
		s, path := openGroup(t, Options{GroupAge: 10 * time.Millisecond})
		commit(t, s, "r1", storetest.Records())
		// The timer commits the group; wait for it, generously.
		for deadline := time.Now().Add(30 * time.Second); reportsSeen(t, path) != "1"; {
			if time.Now().After(deadline) {
				t.Fatal("the group was not committed at its age")
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	t.Run("other writes", func(t *testing.T) {
		s, path := openGroup(t, Options{GroupAge: time.Hour})
		commit(t, s, "r1", storetest.Records())
		if err := s.AddAlertEvent(context.Background(), dmarcd.AlertEvent{At: time.Unix(0, 0), Key: "k", State: "firing"}); err != nil {
			t.Fatal(err)
		}
		if got := reportsSeen(t, path); got != "1" {
			t.Fatalf("after an alert event: %s reports", got)
		}
	})
	t.Run("close", func(t *testing.T) {
		s, path := openGroup(t, Options{GroupAge: time.Hour})
		commit(t, s, "r1", storetest.Records())
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if got := reportsSeen(t, path); got != "1" {
			t.Fatalf("after Close: %s reports", got)
		}
	})
	t.Run("duplicate in the group", func(t *testing.T) {
		s, _ := openGroup(t, Options{GroupAge: time.Hour})
		commit(t, s, "r1", storetest.Records())
		if _, err := s.BeginAggregate(context.Background(), storetest.Report("r1"), dmarcd.Origin{}); !errors.Is(err, dmarcd.ErrDuplicate) {
			t.Fatalf("a report waiting in the group, offered again: %v", err)
		}
	})
}

// manySources are n records from n sources.
func manySources(n int) []dmarcd.Record {
	recs := make([]dmarcd.Record, n)
	for i := range recs {
		recs[i] = dmarcd.Record{SourceIP: fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255), Count: int64(1 + i%3),
			Disposition: "none", DKIM: "pass", SPF: "fail", HeaderFrom: "example.com",
			DKIMResults: []dmarcd.DKIMResult{{Domain: "example.com", Selector: fmt.Sprint("s", i%3), Result: "pass"}}}
	}
	return recs
}

// rollupsAgree fails unless the rollup tables hold exactly the sums of the
// records stored: what the daily_* views said before the rollups were
// tables (migrations/0001_reports.sql).
func rollupsAgree(t *testing.T, s *Store) {
	t.Helper()
	for _, q := range []string{
		`SELECT date(r.date_begin, 'unixepoch'), r.domain, SUM(c.count),
		   SUM(CASE WHEN c.dkim = 'pass' OR c.spf = 'pass' THEN c.count ELSE 0 END),
		   SUM(CASE WHEN c.dkim = 'pass' THEN c.count ELSE 0 END), SUM(CASE WHEN c.spf = 'pass' THEN c.count ELSE 0 END),
		   SUM(CASE WHEN c.disposition = 'quarantine' THEN c.count ELSE 0 END), SUM(CASE WHEN c.disposition = 'reject' THEN c.count ELSE 0 END)
		 FROM aggregate_records c JOIN aggregate_reports r ON r.id = c.report GROUP BY 1, 2
		 EXCEPT SELECT day, domain, messages, dmarc_pass, dkim_aligned, spf_aligned, quarantined, rejected FROM rollup_domains`,
		`SELECT day, domain, messages, dmarc_pass, dkim_aligned, spf_aligned, quarantined, rejected FROM rollup_domains
		 EXCEPT SELECT date(r.date_begin, 'unixepoch'), r.domain, SUM(c.count),
		   SUM(CASE WHEN c.dkim = 'pass' OR c.spf = 'pass' THEN c.count ELSE 0 END),
		   SUM(CASE WHEN c.dkim = 'pass' THEN c.count ELSE 0 END), SUM(CASE WHEN c.spf = 'pass' THEN c.count ELSE 0 END),
		   SUM(CASE WHEN c.disposition = 'quarantine' THEN c.count ELSE 0 END), SUM(CASE WHEN c.disposition = 'reject' THEN c.count ELSE 0 END)
		 FROM aggregate_records c JOIN aggregate_reports r ON r.id = c.report GROUP BY 1, 2`,
		`SELECT date(r.date_begin, 'unixepoch'), r.domain, c.source_ip, SUM(c.count),
		   SUM(CASE WHEN c.dkim = 'pass' OR c.spf = 'pass' THEN c.count ELSE 0 END)
		 FROM aggregate_records c JOIN aggregate_reports r ON r.id = c.report GROUP BY 1, 2, 3
		 EXCEPT SELECT day, domain, source_ip, messages, dmarc_pass FROM rollup_sources`,
		`SELECT day, domain, source_ip, messages, dmarc_pass FROM rollup_sources
		 EXCEPT SELECT date(r.date_begin, 'unixepoch'), r.domain, c.source_ip, SUM(c.count),
		   SUM(CASE WHEN c.dkim = 'pass' OR c.spf = 'pass' THEN c.count ELSE 0 END)
		 FROM aggregate_records c JOIN aggregate_reports r ON r.id = c.report GROUP BY 1, 2, 3`,
		`SELECT date(r.date_begin, 'unixepoch'), r.domain, r.org_name, COUNT(*), SUM(r.message_count)
		 FROM aggregate_reports r GROUP BY 1, 2, 3
		 EXCEPT SELECT day, domain, org_name, reports, messages FROM rollup_reporters`,
		`SELECT day, domain, org_name, reports, messages FROM rollup_reporters
		 EXCEPT SELECT date(r.date_begin, 'unixepoch'), r.domain, r.org_name, COUNT(*), SUM(r.message_count)
		 FROM aggregate_reports r GROUP BY 1, 2, 3`,
		`SELECT date(r.date_begin, 'unixepoch'), r.domain, d.domain, d.selector, SUM(c.count), SUM(CASE WHEN d.result = 'pass' THEN c.count ELSE 0 END)
		 FROM aggregate_dkim d JOIN aggregate_records c ON c.report = d.report AND c.seq = d.seq JOIN aggregate_reports r ON r.id = d.report
		 GROUP BY 1, 2, 3, 4
		 EXCEPT SELECT day, domain, dkim_domain, selector, messages, passed FROM rollup_selectors`,
		`SELECT day, domain, dkim_domain, selector, messages, passed FROM rollup_selectors
		 EXCEPT SELECT date(r.date_begin, 'unixepoch'), r.domain, d.domain, d.selector, SUM(c.count), SUM(CASE WHEN d.result = 'pass' THEN c.count ELSE 0 END)
		 FROM aggregate_dkim d JOIN aggregate_records c ON c.report = d.report AND c.seq = d.seq JOIN aggregate_reports r ON r.id = d.report
		 GROUP BY 1, 2, 3, 4`,
	} {
		if got := storetest.QueryString(t, s, q); got != "" {
			t.Errorf("rollups and records disagree:\n%s\nquery: %s", got, q)
		}
	}
}

// TestGroupAbort: a report aborted in a group with others is undone alone,
// its rollup sums with it, also when it wrote sums into the tables before
// Commit (more than MaxPendingSums sources); the others count once.
func TestGroupAbort(t *testing.T) {
	ctx := context.Background()
	s, _ := openGroup(t, Options{GroupAge: time.Hour})
	commit(t, s, "before", storetest.Records())
	for _, n := range []int{2, MaxPendingSums + 10} {
		w, err := storetest.Write(t, s, storetest.Report(fmt.Sprint("aborted-", n)), manySources(n))
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Abort(); err != nil {
			t.Fatal(err)
		}
	}
	commit(t, s, "spilled", manySources(2*MaxPendingSums+5))
	commit(t, s, "after", storetest.Records())
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := storetest.QueryString(t, s, `SELECT report_id, record_count FROM reports ORDER BY report_id`); got != "after|2\nbefore|2\nspilled|20005\n" {
		t.Errorf("reports:\n%s", got)
	}
	if got := storetest.QueryString(t, s, `SELECT COUNT(*) FROM records`); got != "20009\n" {
		t.Errorf("records: %s", got)
	}
	rollupsAgree(t, s)
	// An aborted report can be stored afterwards.
	commit(t, s, "aborted-2", manySources(2))
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	rollupsAgree(t, s)
}

// TestGroupLost: when an SQL error takes the group's transaction down (the
// disk is full: here SQLite's max_page_count), the reports committed into
// it are lost, and Flush says so, to every caller, until each of them is
// stored again; nothing is half stored, and the rollups agree.
func TestGroupLost(t *testing.T) {
	ctx := context.Background()
	s, _ := openGroup(t, Options{GroupAge: time.Hour})
	commit(t, s, "stored", storetest.Records())
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	commit(t, s, "a", storetest.Records())
	commit(t, s, "b", storetest.Records())
	// The group holds the store's one connection.
	var pages int
	if err := s.group.tx.QueryRow(`PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := s.group.tx.Exec(fmt.Sprintf(`PRAGMA max_page_count = %d`, pages+2)); err != nil {
		t.Fatal(err)
	}
	w, err := s.BeginAggregate(ctx, storetest.Report("large"), dmarcd.Origin{})
	if err != nil {
		t.Fatal(err)
	}
	recs := manySources(5000)
	var failed error
	for i := range recs {
		if failed = w.Write(ctx, &recs[i]); failed != nil {
			break
		}
	}
	if failed == nil {
		failed = w.Commit(ctx, storetest.Report("large"))
	}
	if failed == nil || !strings.Contains(failed.Error(), "full") {
		t.Fatalf("a report past max_page_count: %v", failed)
	}
	w.Abort()
	for range 2 { // whoever calls it
		if err := s.Flush(ctx); err == nil || !strings.Contains(err.Error(), "2 reports were lost") {
			t.Fatalf("Flush after the group was lost: %v", err)
		}
	}
	if _, err := s.db.Exec(`PRAGMA max_page_count = 1073741823`); err != nil {
		t.Fatal(err)
	}
	commit(t, s, "a", storetest.Records())
	if err := s.Flush(ctx); err == nil || !strings.Contains(err.Error(), "1 reports were lost") {
		t.Fatalf("Flush with one of two lost reports stored again: %v", err)
	}
	commit(t, s, "b", storetest.Records())
	if err := s.Flush(ctx); err != nil {
		t.Fatalf("Flush with the lost reports stored again: %v", err)
	}
	// A lost report never offered again fails Flush for LostExpiry, no
	// longer.
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	commit(t, s, "gone", storetest.Records())
	s.group.mu.Lock()
	s.loseLocked(errors.New("a test's loss"))
	s.group.mu.Unlock()
	now = now.Add(LostExpiry - time.Second)
	if err := s.Flush(ctx); err == nil || !strings.Contains(err.Error(), "1 reports were lost") {
		t.Fatalf("Flush just before LostExpiry: %v", err)
	}
	now = now.Add(time.Second)
	if err := s.Flush(ctx); err != nil {
		t.Fatalf("Flush at LostExpiry: %v", err)
	}
	if got := storetest.QueryString(t, s, `SELECT report_id FROM reports ORDER BY report_id`); got != "a\nb\nstored\n" {
		t.Errorf("reports:\n%s", got)
	}
	rollupsAgree(t, s)
}

// TestGroupLetsOthersWrite: while one store writes reports without pause
// (a backfill), another process's writer still gets SQLite's write lock
// between two groups, within its busy timeout. Here the other process is
// another store on the same file, with connections of its own.
func TestGroupLetsOthersWrite(t *testing.T) {
	ctx := context.Background()
	s, path := openGroup(t, Options{GroupAge: 200 * time.Millisecond})
	other, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	stop := make(chan struct{})
	written := make(chan int)
	go func() {
		n := 0
		defer func() { written <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			w, err := s.BeginAggregate(ctx, storetest.Report(fmt.Sprint("r", n)), dmarcd.Origin{})
			if err != nil {
				t.Error(err)
				return
			}
			recs := manySources(20)
			for i := range recs {
				if err := w.Write(ctx, &recs[i]); err != nil {
					t.Error(err)
					return
				}
			}
			if err := w.Commit(ctx, storetest.Report(fmt.Sprint("r", n))); err != nil {
				t.Error(err)
				return
			}
			n++
		}
	}()
	// Let the writer run a few groups first.
	for deadline := time.Now().Add(30 * time.Second); reportsSeen(t, path) == "0"; {
		if time.Now().After(deadline) {
			t.Fatal("the writer committed nothing")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t0 := time.Now()
	err = other.AddAlertEvent(ctx, dmarcd.AlertEvent{At: time.Unix(0, 0), Key: "k", State: "firing"})
	close(stop)
	n := <-written
	t.Logf("waited %v, %d reports", time.Since(t0), n)
	if err != nil {
		t.Fatalf("another process's write while %d reports were written: %v", n, err)
	}
}
