package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd"
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

func testReport(id string) *dmarcd.AggregateReport {
	return &dmarcd.AggregateReport{
		Metadata: dmarcd.ReportMetadata{
			OrgName: "google.com", Email: "noreply-dmarc-support@google.com", ReportID: id,
			DateBegin: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
			DateEnd:   time.Date(2026, 11, 1, 23, 59, 59, 0, time.UTC),
		},
		Policy: dmarcd.PolicyPublished{Domain: "example.com", ADKIM: "r", ASPF: "r", P: "quarantine", SP: "none", Pct: 5, Testing: "y"},
	}
}

func testRecords() []dmarcd.Record {
	return []dmarcd.Record{
		{SourceIP: "192.0.2.1", Count: 10, Disposition: "none", DKIM: "pass", SPF: "pass", HeaderFrom: "example.com",
			DKIMResults: []dmarcd.DKIMResult{{Domain: "example.com", Selector: "s1", Result: "pass"}, {Domain: "esp.example", Selector: "k2", Result: "pass"}},
			SPFResults:  []dmarcd.SPFResult{{Domain: "example.com", Scope: "mfrom", Result: "pass"}}},
		{SourceIP: "2001:db8::1", Count: 3, Disposition: "quarantine", DKIM: "fail", SPF: "fail", HeaderFrom: "example.com",
			Reasons: []dmarcd.PolicyOverride{{Type: "sampled_out"}}},
	}
}

func store(t testing.TB, s *Store, r *dmarcd.AggregateReport, recs []dmarcd.Record) error {
	ctx := context.Background()
	w, err := s.BeginAggregate(ctx, r, dmarcd.Origin{Source: "test", ReceivedAt: time.Now()})
	if err != nil {
		return err
	}
	defer w.Abort()
	for i := range recs {
		if err := w.Write(ctx, &recs[i]); err != nil {
			t.Fatal(err)
		}
		r.RecordCount++
		r.MessageCount += recs[i].Count
	}
	return w.Commit(ctx, r)
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
	if err := store(t, s, testReport("r1"), testRecords()); err != nil {
		t.Fatal(err)
	}
	if err := store(t, s, testReport("r1"), testRecords()); !errors.Is(err, dmarcd.ErrDuplicate) {
		t.Fatalf("second store: got %v, want ErrDuplicate", err)
	}
	// Same id, another day: another report.
	r := testReport("r1")
	r.Metadata.DateBegin = r.Metadata.DateBegin.AddDate(0, 0, 1)
	if err := store(t, s, r, testRecords()); err != nil {
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
	w, err := s.BeginAggregate(ctx, testReport("r1"), dmarcd.Origin{})
	if err != nil {
		t.Fatal(err)
	}
	recs := testRecords()
	w.Write(ctx, &recs[0])
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if got := queryString(t, s, `SELECT (SELECT COUNT(*) FROM reports), (SELECT COUNT(*) FROM records)`); got != "0|0\n" {
		t.Errorf("after abort: %q", got)
	}
	// The aborted report can be stored afterwards.
	if err := store(t, s, testReport("r1"), testRecords()); err != nil {
		t.Fatal(err)
	}
}

func TestViews(t *testing.T) {
	s, _ := openTemp(t)
	if err := store(t, s, testReport("r1"), testRecords()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ query, want string }{
		{`SELECT org_name, report_id, domain, date_begin, date_end, day, p, sp, pct, testing, record_count, message_count FROM reports`,
			"google.com|r1|example.com|2026-11-01 00:00:00|2026-11-01 23:59:59|2026-11-01|quarantine|none|5|y|2|13\n"},
		{`SELECT org_name, report_id, domain, source_ip, count, disposition, dkim, spf, dmarc_pass, header_from, dkim_domains, dkim_selectors, dkim_results, reasons FROM records ORDER BY seq`,
			"google.com|r1|example.com|192.0.2.1|10|none|pass|pass|1|example.com|[\"example.com\",\"esp.example\"]|[\"s1\",\"k2\"]|[\"pass\",\"pass\"]|[]\n" +
				"google.com|r1|example.com|2001:db8::1|3|quarantine|fail|fail|0|example.com|[]|[]|[]|[{\"type\":\"sampled_out\",\"comment\":\"\"}]\n"},
		{`SELECT dkim_domain, selector, result, count FROM dkim_signatures ORDER BY selector`,
			"esp.example|k2|pass|10\nexample.com|s1|pass|10\n"},
		{`SELECT day, domain, messages, dmarc_pass, dkim_aligned, spf_aligned, quarantined, rejected FROM daily_domains`,
			"2026-11-01|example.com|13|10|10|10|3|0\n"},
		{`SELECT day, domain, org_name, reports, messages FROM daily_reporters`, "2026-11-01|example.com|google.com|1|13\n"},
		{`SELECT selector, messages, passed FROM daily_selectors ORDER BY selector`, "k2|10|10\ns1|10|10\n"},
		{`SELECT source_ip, messages, dmarc_pass FROM daily_sources ORDER BY source_ip`, "192.0.2.1|10|10\n2001:db8::1|3|0\n"},
	} {
		if got := queryString(t, s, c.query); got != c.want {
			t.Errorf("%s\n got: %q\nwant: %q", c.query, got, c.want)
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
				err := store(t, s, testReport(fmt.Sprint(j)), testRecords())
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
		r := testReport(fmt.Sprint(i))
		r.Metadata.DateBegin = r.Metadata.DateBegin.AddDate(0, 0, i%2)
		if i == 4 {
			r.Metadata.OrgName = "Yahoo"
		}
		if err := store(t, s, r, testRecords()); err != nil {
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
