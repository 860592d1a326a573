package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
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

// TestContract runs the store contract (internal/storetest) on ClickHouse:
// one server, a database per case.
func TestContract(t *testing.T) {
	server := testserver.ClickHouse(t)
	storetest.Run(t, contractEngine(func(testing.TB) string { return testserver.ClickHouseDatabase(server) }))
}

// contractEngine is the store contract's engine on ClickHouse, each case
// in the store location returns (a new database's DSN).
func contractEngine(location func(testing.TB) string) storetest.Engine {
	return storetest.Engine{
		Location: location,
		Open: func(ctx context.Context, dsn string) (storetest.SchemaStore, error) {
			s, err := Open(ctx, dsn)
			if err != nil {
				return nil, err
			}
			return s, nil
		},
		OpenReadOnly: func(ctx context.Context, dsn string) (storetest.SchemaStore, error) {
			s, err := OpenOptions(ctx, dsn, Options{ReadOnly: true})
			if err != nil {
				return nil, err
			}
			return s, nil
		},
		SetSchemaVersion: func(t testing.TB, s storetest.SchemaStore, v int) {
			b, err := s.(*Store).conn.PrepareBatch(context.Background(), "INSERT INTO schema_migrations (version, name, applied_at)")
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Append(uint32(v), "from a newer dmarcd", time.Now().UTC()); err != nil {
				t.Fatal(err)
			}
			if err := b.Send(); err != nil {
				t.Fatal(err)
			}
		},
	}
}

// queryString is storetest.QueryString.
func queryString(t testing.TB, s *Store, q string, args ...any) string {
	t.Helper()
	return storetest.QueryString(t, s, q, args...)
}

// TestUnsettledAfterCleanStore: the rollups hold a report stored once, so
// the views read them: no day is unsettled.
func TestUnsettledAfterCleanStore(t *testing.T) {
	s, _ := openTemp(t, Options{})
	if err := storetest.Store(t, s, storetest.Report("r1"), storetest.Records()); err != nil {
		t.Fatal(err)
	}
	if got := queryString(t, s, `SELECT count() FROM rollup_unsettled`); got != "0\n" {
		t.Errorf("unsettled days after a clean store: %q", got)
	}
}

// TestAbortWithRecordsInTable: with a batch of one record, the aborted
// report has records in the table already; no view shows them.
func TestAbortWithRecordsInTable(t *testing.T) {
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
	storetest.CheckViews(t, s)
}

// TestDuplicatesBeforeMerge stores the same report twice, as two writers
// racing past the existence checks would (both begin before either
// commits, and both groups are checked before either is written: two
// processes at the same moment), and checks that every view counts it
// once before ClickHouse merges anything, and after.
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
	// The second copy, written as the other process's group would be:
	// its check before the write ran before the first copy was stored.
	p := w2.(*recordWriter).pending(r)
	w2.Abort()
	if err := s.insertRecords(ctx, []*pendingReport{p}); err != nil {
		t.Fatal(err)
	}
	if err := s.insertRows(ctx, []*pendingReport{p}); err != nil {
		t.Fatal(err)
	}
	if got := queryString(t, s, `SELECT count(), sum(messages) FROM rollup_domains`); got != "2|26\n" {
		t.Errorf("the rollup table should hold both copies before a merge: %q", got)
	}
	storetest.CheckViews(t, s)
	if err := s.conn.Exec(ctx, "OPTIMIZE TABLE aggregate_records FINAL"); err != nil {
		t.Fatal(err)
	}
	if err := s.conn.Exec(ctx, "OPTIMIZE TABLE aggregate_reports FINAL"); err != nil {
		t.Fatal(err)
	}
	storetest.CheckViews(t, s)
	// A third copy now finds it.
	if err := storetest.Store(t, s, storetest.Report("r1"), storetest.Records()); !errors.Is(err, dmarcd.ErrDuplicate) {
		t.Errorf("third store: got %v, want ErrDuplicate", err)
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
	// On one server the migrations run as written: nothing of cluster
	// mode (cluster.go).
	if got := queryString(t, s2, `SELECT count() FROM system.tables WHERE database = currentDatabase()
		AND (engine LIKE 'Replicated%' OR engine = 'Distributed' OR name LIKE '%_local' OR name LIKE '%_shards')`); got != "0\n" {
		t.Errorf("tables of cluster mode on one server: %q", got)
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
