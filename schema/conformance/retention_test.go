package conformance

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/internal/storetest"
	"github.com/dmarcd/dmarcd/internal/testserver"
)

// TestRetention keeps two months before the current one on both stores:
// the reports, records, rollups, failure reports and quarantined input of
// older months go, the others stay, and both stores answer alike.
func TestRetention(t *testing.T) {
	stores := map[string]dmarcd.Store{
		"sqlite":     openSQLite(t),
		"clickhouse": openClickHouse(t, testserver.ClickHouse(t)),
	}
	ctx := context.Background()
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC) // any day: the cutoff is computed from it
	thisMonth := time.Date(now.Year(), now.Month(), 3, 0, 0, 0, 0, time.UTC)
	want := map[string]string{}
	got := map[string]map[string]string{}
	for name, s := range stores {
		for i := range 4 {
			begin := thisMonth.AddDate(0, -i, 0)
			r := storetest.Report(fmt.Sprint("r", i))
			r.Metadata.DateBegin, r.Metadata.DateEnd = begin, begin.Add(24*time.Hour-time.Second)
			w, err := storetest.Write(t, s, r, storetest.Records())
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Commit(ctx, r); err != nil {
				t.Fatal(err)
			}
			f := &dmarcd.FailureReport{ReportFrom: "r@receiver.example", ReportedDomain: "example.com",
				ArrivalDate: begin, ArrivalDateText: begin.String()}
			if err := s.AddFailure(ctx, f, dmarcd.Origin{ReceivedAt: now}); err != nil {
				t.Fatal(err)
			}
			tls := &dmarcd.TLSReport{OrganizationName: "Google Inc.", ReportID: fmt.Sprint("t", i), DateBegin: begin, DateEnd: begin.Add(24*time.Hour - time.Second),
				Policies: []dmarcd.TLSPolicy{{Type: "sts", Domain: "example.com", SuccessfulSessions: 10, FailedSessions: 1,
					FailureDetails: []dmarcd.TLSFailureDetail{{ResultType: "certificate-expired", FailedSessions: 1}}}}}
			if err := s.(dmarcd.TLSStore).AddTLSReport(ctx, tls, dmarcd.Origin{ReceivedAt: now}); err != nil {
				t.Fatal(err)
			}
			q := dmarcd.Quarantined{Origin: dmarcd.Origin{Source: "test", ReceivedAt: begin}, Raw: fmt.Appendf(nil, "bad %d", i)}
			if err := s.Quarantine(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		if f, ok := s.(dmarcd.Flusher); ok {
			if err := f.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
		n, err := s.(dmarcd.Retainer).DropBefore(ctx, dmarcd.RetentionCutoff(now, 2))
		if err != nil || n == 0 {
			t.Fatalf("%s: dropped %d, %v", name, n, err)
		}
		got[name] = map[string]string{}
		for _, q := range []string{
			`SELECT COUNT(*), MIN(day) FROM reports`,
			`SELECT COUNT(*), SUM(count) FROM records`,
			`SELECT COUNT(*), SUM(messages), MIN(day) FROM daily_domains`,
			`SELECT SUM(messages) FROM daily_sources`,
			`SELECT SUM(messages) FROM daily_selectors`,
			`SELECT SUM(reports) FROM daily_reporters`,
			`SELECT COUNT(*) FROM dkim_signatures`,
			`SELECT COUNT(*) FROM failures`,
			`SELECT COUNT(*) FROM quarantined`,
			`SELECT COUNT(*) FROM tls_reports`,
			`SELECT COUNT(*), SUM(failed_sessions) FROM tls_failures`,
		} {
			rows, err := queryRows(s, q)
			if err != nil {
				t.Fatalf("%s: %s: %v", name, q, err)
			}
			got[name][q] = fmt.Sprint(rows)
		}
	}
	first := thisMonth.AddDate(0, -2, 0).Format(time.DateOnly)
	want[`SELECT COUNT(*), MIN(day) FROM reports`] = "[3 | " + first + "]"
	want[`SELECT COUNT(*), SUM(count) FROM records`] = "[6 | 39]"
	want[`SELECT COUNT(*), SUM(messages), MIN(day) FROM daily_domains`] = "[3 | 39 | " + first + "]"
	want[`SELECT SUM(messages) FROM daily_sources`] = "[39]"
	want[`SELECT SUM(messages) FROM daily_selectors`] = "[60]"
	want[`SELECT SUM(reports) FROM daily_reporters`] = "[3]"
	want[`SELECT COUNT(*) FROM dkim_signatures`] = "[6]"
	want[`SELECT COUNT(*) FROM failures`] = "[3]"
	want[`SELECT COUNT(*) FROM quarantined`] = "[3]"
	want[`SELECT COUNT(*) FROM tls_reports`] = "[3]"
	want[`SELECT COUNT(*), SUM(failed_sessions) FROM tls_failures`] = "[3 | 3]"
	for name, answers := range got {
		for q, w := range want {
			if answers[q] != w {
				t.Errorf("%s: %s\n got: %s\nwant: %s", name, q, answers[q], w)
			}
		}
	}
	// Again: nothing more to drop.
	for name, s := range stores {
		if n, err := s.(dmarcd.Retainer).DropBefore(ctx, dmarcd.RetentionCutoff(now, 2)); err != nil || n != 0 {
			t.Errorf("%s: second run dropped %d, %v", name, n, err)
		}
	}
}
