package clickhouse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/internal/storetest"
	"github.com/dmarcd/dmarcd/internal/testserver"
)

func openTemp(t testing.TB, opts Options) (*Store, string) {
	t.Helper()
	dsn := testserver.ClickHouse(t)
	s, err := OpenOptions(context.Background(), dsn, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dsn
}

// queryString runs q and renders its rows as in the sqlite tests: columns
// joined by |, rows ended by a newline; days as YYYY-MM-DD, times as
// YYYY-MM-DD HH:MM:SS, arrays as JSON.
func queryString(t testing.TB, s *Store, q string, args ...any) string {
	t.Helper()
	rows, err := s.Query(context.Background(), q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	types, _ := rows.ColumnTypes()
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

func render(v any, typ string) string {
	switch v := v.(type) {
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
	}
	return fmt.Sprint(v)
}

func TestStoreOnce(t *testing.T) {
	s, _ := openTemp(t, Options{})
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
	if got := queryString(t, s, `SELECT COUNT(*), SUM(count) FROM records`); got != "4|26\n" {
		t.Errorf("records: %q", got)
	}
}

func TestAbortLeavesNothing(t *testing.T) {
	// A batch of one record: the aborted report has records in the table.
	s, _ := openTemp(t, Options{BatchRecords: 1})
	ctx := context.Background()
	w, err := s.BeginAggregate(ctx, storetest.Report("r1"), dmarcd.Origin{})
	if err != nil {
		t.Fatal(err)
	}
	recs := storetest.Records()
	if err := w.Write(ctx, &recs[0]); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if got := queryString(t, s, `SELECT count() FROM aggregate_records`); got != "1\n" {
		t.Errorf("the aborted batch is not in the table: %q", got)
	}
	for _, q := range []string{
		`SELECT COUNT(*) FROM reports`, `SELECT COUNT(*) FROM records`, `SELECT COUNT(*) FROM dkim_signatures`,
		`SELECT COUNT(*) FROM daily_domains`, `SELECT COUNT(*) FROM daily_sources`,
		`SELECT COUNT(*) FROM daily_selectors`, `SELECT COUNT(*) FROM daily_reporters`,
	} {
		if got := queryString(t, s, q); got != "0\n" {
			t.Errorf("after abort, %s: %q", q, got)
		}
	}
	// The aborted report can be stored afterwards, and counts once.
	if err := storetest.Store(t, s, storetest.Report("r1"), storetest.Records()); err != nil {
		t.Fatal(err)
	}
	checkOnce(t, s)
}

// checkOnce checks that every view shows storetest.Report("r1") with
// storetest.Records() exactly once.
func checkOnce(t *testing.T, s *Store) {
	t.Helper()
	for _, c := range storetest.Views {
		if got := queryString(t, s, c.Query); got != c.Want {
			t.Errorf("%s\n got: %q\nwant: %q", c.Query, got, c.Want)
		}
	}
}

func TestViews(t *testing.T) {
	s, _ := openTemp(t, Options{})
	if err := storetest.Store(t, s, storetest.Report("r1"), storetest.Records()); err != nil {
		t.Fatal(err)
	}
	checkOnce(t, s)
	// The rollups hold it once, so the views read them: no day is
	// unsettled.
	if got := queryString(t, s, `SELECT count() FROM rollup_unsettled`); got != "0\n" {
		t.Errorf("unsettled days after a clean store: %q", got)
	}
	// An absent pct is NULL, as in SQLite.
	r := storetest.Report("r2")
	r.Policy.Pct = dmarcd.PctAbsent
	if err := storetest.Store(t, s, r, nil); err != nil {
		t.Fatal(err)
	}
	if got := queryString(t, s, `SELECT pct, record_count FROM reports WHERE report_id = 'r2'`); got != "<nil>|0\n" {
		t.Errorf("absent pct: %q", got)
	}
}

// TestDuplicatesBeforeMerge stores the same report twice, as two writers
// racing past the existence check would (both begin before either
// commits; two processes, or one writing each report at its Commit), and
// checks that every view counts it once before ClickHouse merges anything,
// and after.
func TestDuplicatesBeforeMerge(t *testing.T) {
	s, _ := openTemp(t, Options{GroupReports: 1})
	w1, err := storetest.Write(t, s, storetest.Report("r1"), storetest.Records())
	if err != nil {
		t.Fatal(err)
	}
	w2, err := storetest.Write(t, s, storetest.Report("r1"), storetest.Records())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r := storetest.Report("r1")
	r.RecordCount, r.MessageCount = 2, 13
	if err := w1.Commit(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := w2.Commit(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got := queryString(t, s, `SELECT count(), sum(messages) FROM rollup_domains`); got != "2|26\n" {
		t.Errorf("the rollup table should hold both copies before a merge: %q", got)
	}
	checkOnce(t, s)
	if err := s.conn.Exec(ctx, "OPTIMIZE TABLE aggregate_records FINAL"); err != nil {
		t.Fatal(err)
	}
	if err := s.conn.Exec(ctx, "OPTIMIZE TABLE aggregate_reports FINAL"); err != nil {
		t.Fatal(err)
	}
	checkOnce(t, s)
	// A third copy now finds it.
	if err := storetest.Store(t, s, storetest.Report("r1"), storetest.Records()); !errors.Is(err, dmarcd.ErrDuplicate) {
		t.Errorf("third store: got %v, want ErrDuplicate", err)
	}
}

// TestConcurrentDuplicates stores the same reports from two stores at once,
// as two dmarcd processes would: each report counts once, whichever won.
func TestConcurrentDuplicates(t *testing.T) {
	s1, dsn := openTemp(t, Options{})
	s2, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	const reports = 30
	var wg sync.WaitGroup
	stored := make([]int, 2)
	for i, s := range []*Store{s1, s2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range reports {
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
	t.Logf("stored %d + %d of %d reports (a sum above %[3]d means the writers raced)", stored[0], stored[1], reports)
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
		if got := queryString(t, s1, c.query); got != c.want {
			t.Errorf("%s\n got: %q\nwant: %q", c.query, got, c.want)
		}
	}
}

func TestQueryIsReadOnly(t *testing.T) {
	s, _ := openTemp(t, Options{})
	ctx := context.Background()
	if rows, err := s.Query(ctx, `DROP TABLE aggregate_reports`); err == nil {
		rows.Close()
		t.Error("a DROP TABLE through Query succeeded")
	}
	if rows, err := s.Query(ctx, `INSERT INTO quarantine (sha256) SELECT 'x'`); err == nil {
		rows.Close()
		t.Error("an INSERT through Query succeeded")
	}
	if got := queryString(t, s, `SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = 'aggregate_reports'`); got != "1\n" {
		t.Errorf("aggregate_reports: %q", got)
	}
}

// TestAnalyst opens the store as the read-only user of docs/SQL.md
// (profile readonly=1), as `dmarcd query` would for an analyst.
func TestAnalyst(t *testing.T) {
	s, dsn := openTemp(t, Options{})
	if err := storetest.Store(t, s, storetest.Report("r1"), storetest.Records()); err != nil {
		t.Fatal(err)
	}
	analyst := strings.Replace(dsn, "clickhouse://default:@", "clickhouse://analyst:analyst@", 1)
	a, err := Open(context.Background(), analyst)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if got := queryString(t, a, `SELECT SUM(messages) FROM daily_domains`); got != "13\n" {
		t.Errorf("analyst: %q", got)
	}
	if rows, err := a.Query(context.Background(), `DROP TABLE aggregate_reports`); err == nil {
		rows.Close()
		t.Error("the analyst dropped a table")
	}
	if err := storetest.Store(t, a, storetest.Report("r2"), storetest.Records()); err == nil {
		t.Error("the analyst stored a report")
	}
}

func TestQuarantineOnce(t *testing.T) {
	s, _ := openTemp(t, Options{})
	q := dmarcd.Quarantined{Origin: dmarcd.Origin{Source: "file:/x", ReceivedAt: time.Now()}, Reason: "bad", Raw: []byte("junk")}
	for range 2 {
		if err := s.Quarantine(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	if got := queryString(t, s, `SELECT reason, size FROM quarantined`); got != "bad|4\n" {
		t.Errorf("quarantine: %q", got)
	}
	if got := queryString(t, s, `SELECT length(raw) FROM quarantine`); got != "4\n" {
		t.Errorf("raw: %q", got)
	}
}

func TestFailureOnce(t *testing.T) {
	s, _ := openTemp(t, Options{})
	f := &dmarcd.FailureReport{ReportFrom: "r@receiver.example", FeedbackType: "auth-failure", ReportedDomain: "example.com",
		SourceIP: "192.0.2.9", ArrivalDateText: "Mon, 2 Nov 2026 08:00:00 +0000", ArrivalDate: time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC),
		OriginalHeaders: "From: a@example.com\r\n", OriginalRcptTo: []string{"b@example.net"},
		Fields: []dmarcd.Field{{Name: "Feedback-Type", Value: "auth-failure"}}}
	if err := s.AddFailure(context.Background(), f, dmarcd.Origin{ReceivedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddFailure(context.Background(), f, dmarcd.Origin{ReceivedAt: time.Now()}); !errors.Is(err, dmarcd.ErrDuplicate) {
		t.Fatalf("got %v, want ErrDuplicate", err)
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.AddFailure(context.Background(), f, dmarcd.Origin{ReceivedAt: time.Now()}); !errors.Is(err, dmarcd.ErrDuplicate) {
		t.Fatalf("stored: got %v, want ErrDuplicate", err)
	}
	if got := queryString(t, s, `SELECT domain, source_ip, feedback_type, arrival_date, report_date, original_rcpt_to FROM failures`); got != "example.com|192.0.2.9|auth-failure|2026-11-02 08:00:00|<nil>|[\"b@example.net\"]\n" {
		t.Errorf("failures: %q", got)
	}
}

// TestRetention drops the partitions of months past the retention from
// every table, and keeps the recent ones.
func TestRetention(t *testing.T) {
	s, _ := openTemp(t, Options{})
	ctx := context.Background()
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	for i, month := range []time.Month{8, 9, 10, 11} {
		r := storetest.Report(fmt.Sprint("r", i))
		r.Metadata.DateBegin = time.Date(2026, month, 3, 0, 0, 0, 0, time.UTC)
		r.Metadata.DateEnd = r.Metadata.DateBegin.Add(24*time.Hour - time.Second)
		if err := storetest.Store(t, s, r, storetest.Records()); err != nil {
			t.Fatal(err)
		}
		f := &dmarcd.FailureReport{ReportFrom: "r@receiver.example", ReportedDomain: "example.com",
			ArrivalDate: r.Metadata.DateBegin, ArrivalDateText: r.Metadata.DateBegin.String()}
		if err := s.AddFailure(ctx, f, dmarcd.Origin{ReceivedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	q := dmarcd.Quarantined{Origin: dmarcd.Origin{ReceivedAt: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}, Raw: []byte("old")}
	if err := s.Quarantine(ctx, q); err != nil {
		t.Fatal(err)
	}
	// Keep November and the two months before.
	n, err := s.DropBefore(ctx, dmarcd.RetentionCutoff(now, 2))
	if err != nil {
		t.Fatal(err)
	}
	// August from the 8 tables of reports and records, and from
	// failure_reports; January 2025 from quarantine.
	if n != 9 {
		t.Errorf("dropped %d partitions, want 9", n)
	}
	for _, c := range []struct{ query, want string }{
		{`SELECT toString(min(day)), COUNT(*) FROM reports`, "2026-09-03|3\n"},
		{`SELECT toString(min(day)), SUM(count) FROM records`, "2026-09-03|39\n"},
		{`SELECT toString(min(day)), SUM(messages) FROM daily_domains`, "2026-09-03|39\n"},
		{`SELECT SUM(messages) FROM daily_sources`, "39\n"},
		{`SELECT SUM(messages) FROM daily_selectors`, "60\n"},
		{`SELECT SUM(reports) FROM daily_reporters`, "3\n"},
		{`SELECT COUNT(*) FROM failures`, "3\n"},
		{`SELECT COUNT(*) FROM quarantined`, "0\n"},
		{`SELECT DISTINCT partition FROM system.parts WHERE database = currentDatabase() AND active AND partition < '202609'`, ""},
	} {
		if got := queryString(t, s, c.query); got != c.want {
			t.Errorf("%s\n got: %q\nwant: %q", c.query, got, c.want)
		}
	}
	// Nothing more to drop.
	if n, err := s.DropBefore(ctx, dmarcd.RetentionCutoff(now, 2)); err != nil || n != 0 {
		t.Errorf("second run dropped %d, %v", n, err)
	}
}

func TestMigrateIsIdempotent(t *testing.T) {
	s, dsn := openTemp(t, Options{})
	ctx := context.Background()
	v, err := s.SchemaVersion(ctx)
	if err != nil || v < 1 {
		t.Fatalf("version %d, %v", v, err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	files, _ := fs.Glob(migrations, "migrations/*.sql")
	if got, want := queryString(t, s2, `SELECT count(), max(version) FROM schema_migrations`), fmt.Sprintf("%d|%d\n", len(files), len(files)); got != want {
		t.Errorf("schema_migrations: %q, want %q", got, want)
	}
	// A migration cut off half way is applied again: every statement is
	// idempotent.
	for _, f := range files {
		text, _ := migrations.ReadFile(f)
		for _, stmt := range splitStatements(string(text)) {
			if err := s.conn.Exec(ctx, stmt); err != nil {
				t.Errorf("%s: re-applying %.60q: %v", f, stmt, err)
			}
		}
	}
}

func TestSplitStatements(t *testing.T) {
	got := splitStatements("-- a; comment\nCREATE TABLE a (x String DEFAULT ';');\n/* b; */ SELECT `;`, \"x;\", 'it\\'s;' ;\n\n  ;")
	want := []string{"CREATE TABLE a (x String DEFAULT ';')", "SELECT `;`, \"x;\", 'it\\'s;'"}
	if len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("statement %d: got %q, want %q", i, got[i], want[i])
		}
	}
}

func TestOpenBadDSN(t *testing.T) {
	for _, dsn := range []string{"clickhouse://127.0.0.1:9000/bad-name", "clickhouse:///x"} {
		if s, err := Open(context.Background(), dsn); err == nil {
			s.Close()
			t.Errorf("%s: opened", dsn)
		}
	}
}
