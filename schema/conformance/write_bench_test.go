package conformance

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	_ "modernc.org/sqlite" // the engine the SQLite store runs on

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/internal/reportgen"
	"github.com/dmarcd/dmarcd/internal/testserver"
	"github.com/dmarcd/dmarcd/schema"
	"github.com/dmarcd/dmarcd/schema/clickhouse"
	"github.com/dmarcd/dmarcd/schema/sqlite"
)

// BenchmarkWrite measures each store's writer beside its engine's own
// insert of the same rows, in the same run, so that their ratio does not
// depend on the load of the machine at another time (BENCHMARKS.md, "The
// writers against their engines"). Each iteration stores the same reports
// into a fresh store through dmarcd.Store (BeginAggregate, Write, Commit,
// then Flush), and inserts the rows the writer stores for them into
// another fresh store of the same schema, straight through the engine's
// driver, with the values prepared beforehand: what no writer can do
// faster with that driver. It reports records/s of both and their ratio
// (writer/engine).
//
//   - "large": $DMARCD_BENCH_RECORDS records (100,000 by default) in
//     reports of 2,000 records, as BenchmarkInsert stores them.
//   - "small": $DMARCD_BENCH_REPORTS reports (5,000 by default) of 1 to 10
//     records, as BenchmarkInsertSmallReports.
//
// The engine's insert, per store:
//
//   - SQLite (modernc.org/sqlite): prepared INSERTs of each report's row,
//     its records and their DKIM results, up to sqlite.RowsPerInsert rows a
//     statement, in transactions of as many reports as the writer's groups
//     hold (sqlite.DefaultGroupReports, DefaultGroupRecords), with the
//     store's pragmas (WAL, synchronous=NORMAL, foreign keys, temporary
//     files in memory): "engine". The writer also keeps the four daily
//     rollups in those transactions, which SQLite does not do for it as
//     ClickHouse's views do, so a second run, "engine-rollups", also
//     upserts each transaction's rollup rows (their sums made beforehand,
//     as the other values): the same rows as the writer's.
//
//   - ClickHouse (clickhouse-go, native protocol): batch inserts
//     (PrepareBatch, Append, Send) of the records, DefaultGroupRecords rows
//     a batch, then of the report rows, DefaultGroupReports a batch, into
//     the same tables, whose materialized views (the rollups and the
//     ledger) the server runs on every insert, for the writer alike.
//
//     go test -run '^$' -bench Write -benchtime 1x -count 3 ./schema/conformance
func BenchmarkWrite(b *testing.B) {
	sets := []struct {
		name     string
		generate func(b *testing.B) []benchReport
	}{
		{"large", func(b *testing.B) []benchReport { return largeReports(benchRecords(b)) }},
		{"small", func(b *testing.B) []benchReport { return smallReports(benchSmallReports(b)) }},
	}
	for _, set := range sets {
		var reports []benchReport
		records := func(b *testing.B) int {
			if reports == nil {
				reports = set.generate(b)
			}
			n := 0
			for _, r := range reports {
				n += len(r.records)
			}
			return n
		}
		b.Run("sqlite/"+set.name, func(b *testing.B) {
			n := records(b)
			var writer, raw, rawRollups timing
			for i := range b.N {
				// Each goes first in turn: the first finds the disk's
				// cache and the machine as the last run left them.
				runs := []func(){
					func() { writer.add(timeWriter(b, openSQLite(b), reports)) },
					func() { raw.add(timeSQLiteRaw(b, filepath.Join(b.TempDir(), "raw.db"), reports, false)) },
					func() { rawRollups.add(timeSQLiteRaw(b, filepath.Join(b.TempDir(), "raw.db"), reports, true)) },
				}
				for j := range runs {
					runs[(i+j)%len(runs)]()
				}
			}
			reportRates(b, n, writer, raw, true)
			// The engine's own upserts of the rollup rows too: the same
			// rows as the writer's.
			rate := func(d time.Duration) float64 { return float64(n) * float64(b.N) / d.Seconds() }
			b.ReportMetric(rate(rawRollups.wall), "engine-rollups-records/s")
			b.ReportMetric(rate(writer.wall)/rate(rawRollups.wall), "writer/engine-rollups")
			b.ReportMetric(rate(rawRollups.cpu), "engine-rollups-cpu-records/s")
			b.ReportMetric(rate(writer.cpu)/rate(rawRollups.cpu), "writer/engine-rollups-cpu")
		})
		b.Run("clickhouse/"+set.name, func(b *testing.B) {
			n := records(b)
			dsn := testserver.ClickHouse(b)
			var writer, raw timing
			// A first insert warms the server (its first parts, the
			// views' first blocks), unmeasured.
			timeClickHouseRaw(b, testserver.ClickHouseDatabase(dsn), reports[:min(len(reports), 10)])
			for i := range b.N {
				if i%2 == 0 {
					raw.add(timeClickHouseRaw(b, testserver.ClickHouseDatabase(dsn), reports))
				}
				writer.add(timeWriter(b, openClickHouse(b, testserver.ClickHouseDatabase(dsn)), reports))
				if i%2 == 1 {
					raw.add(timeClickHouseRaw(b, testserver.ClickHouseDatabase(dsn), reports))
				}
			}
			reportRates(b, n, writer, raw, false)
		})
	}
}

// timing is the wall time and this process's CPU time (user and system,
// the collector's included) of a measurement.
type timing struct{ wall, cpu time.Duration }

func (t *timing) add(u timing) { t.wall += u.wall; t.cpu += u.cpu }

// start begins a measurement; its result gives the time since.
func start() func() timing {
	t0, c0 := time.Now(), cpuTime()
	return func() timing { return timing{time.Since(t0), cpuTime() - c0} }
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportRates reports the writer's and the engine's rates and their ratio
// (writer/engine). With cpu, also the rates per second of this process's
// CPU time and their ratio (writer/engine-cpu): for an engine in the
// process (SQLite), that ratio does not change with what else runs on the
// machine, as the ratio of wall times does.
func reportRates(b *testing.B, records int, writer, raw timing, cpu bool) {
	rate := func(d time.Duration) float64 { return float64(records) * float64(b.N) / d.Seconds() }
	b.ReportMetric(rate(writer.wall), "records/s")
	b.ReportMetric(rate(raw.wall), "engine-records/s")
	b.ReportMetric(rate(writer.wall)/rate(raw.wall), "writer/engine")
	if cpu {
		b.ReportMetric(rate(writer.cpu), "cpu-records/s")
		b.ReportMetric(rate(raw.cpu), "engine-cpu-records/s")
		b.ReportMetric(rate(writer.cpu)/rate(raw.cpu), "writer/engine-cpu")
	}
	b.ReportMetric(0, "ns/op") // the rates say it; ns/op would mix the two
}

// benchReport is one generated report and its records.
type benchReport struct {
	report  dmarcd.AggregateReport
	records []dmarcd.Record
}

// largeReports generates n records as generate stores them.
func largeReports(n int) []benchReport {
	rng := rand.New(rand.NewPCG(1, 2))
	var out []benchReport
	for i := 0; n > 0; i++ {
		domain := i % benchDomains
		r := benchHeader(i, domain, "bench-", "quarantine")
		k := min(n, benchRecordsPerReport)
		recs := make([]dmarcd.Record, k)
		for j := range recs {
			recs[j] = benchRecord(rng, domain)
			r.RecordCount++
			r.MessageCount += recs[j].Count
		}
		out = append(out, benchReport{r, recs})
		n -= k
	}
	return out
}

// smallReports generates n reports of 1 to benchSmallMaxRecords records,
// as generateSmall stores them.
func smallReports(n int) []benchReport {
	rng := rand.New(rand.NewPCG(3, 4))
	out := make([]benchReport, n)
	for i := range out {
		domain := i % benchDomains
		r := benchHeader(i, domain, "small-", "none")
		recs := make([]dmarcd.Record, 1+rng.IntN(benchSmallMaxRecords))
		for j := range recs {
			recs[j] = benchRecord(rng, domain)
			r.RecordCount++
			r.MessageCount += recs[j].Count
		}
		out[i] = benchReport{r, recs}
	}
	return out
}

// benchHeader is the header of the ith generated report.
func benchHeader(i, domain int, id, p string) dmarcd.AggregateReport {
	rep := reportgen.Reporters[(i/benchDomains)%len(reportgen.Reporters)]
	day := benchStart.AddDate(0, 0, i/(benchDomains*len(reportgen.Reporters)))
	return dmarcd.AggregateReport{
		Metadata: dmarcd.ReportMetadata{OrgName: rep.OrgName, Email: rep.Email, ReportID: fmt.Sprint(id, i),
			DateBegin: day, DateEnd: day.Add(24*time.Hour - time.Second)},
		Policy: dmarcd.PolicyPublished{Domain: benchDomain(domain), ADKIM: "r", ASPF: "r", P: p, SP: "none", Pct: 100},
	}
}

func benchOrigin(r *dmarcd.AggregateReport) dmarcd.Origin {
	return dmarcd.Origin{Source: "bench", ReceivedAt: r.Metadata.DateBegin.AddDate(0, 0, 1)}
}

// timeWriter stores the reports into s through dmarcd.Store, flushes, and
// closes s; it returns the time from the first BeginAggregate to the end
// of the Flush.
func timeWriter(b testing.TB, s dmarcd.Store, reports []benchReport) timing {
	ctx := context.Background()
	done := start()
	for i := range reports {
		r := &reports[i]
		hdr := r.report
		hdr.RecordCount, hdr.MessageCount = 0, 0
		w, err := s.BeginAggregate(ctx, &hdr, benchOrigin(&r.report))
		if err != nil {
			b.Fatal(err)
		}
		for j := range r.records {
			if err := w.Write(ctx, &r.records[j]); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Commit(ctx, &r.report); err != nil {
			b.Fatal(err)
		}
	}
	if f, ok := s.(dmarcd.Flusher); ok {
		if err := f.Flush(ctx); err != nil {
			b.Fatal(err)
		}
	}
	elapsed := done()
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	return elapsed
}

// The rows of the SQLite store's tables, as its writer stores them.
const (
	sqliteRawReport = `INSERT INTO aggregate_reports (
	report_key, reporter, report_id, domain, date_begin, date_end,
	org_name, email, extra_contact_info, errors, generator, version, namespace,
	adkim, aspf, p, sp, np, pct, fo, testing, discovery_method,
	extensions, record_count, message_count, tolerations,
	source, part, message_id, received_at
) VALUES (?,?,?,?,?,?, ?,?,?,?,?,?,?, ?,?,?,?,?,?,?,?,?, ?,?,?,?, ?,?,?,?)`
	sqliteRawRecord = `INSERT INTO aggregate_records (
	report, seq, source_ip, count, disposition, dkim, spf, reasons,
	envelope_to, envelope_from, header_from,
	dkim_domains, dkim_selectors, dkim_results, dkim_human,
	spf_domains, spf_scopes, spf_results, spf_human, extensions)`
	sqliteRawDKIM = `INSERT INTO aggregate_dkim (report, seq, idx, domain, selector, result)`
)

// rawRows are one report's rows, their values ready for the driver.
type rawRows struct {
	report  []any
	records [][]any // without the report's id (SQLite) or with its columns (ClickHouse)
	dkim    [][]any // SQLite: without the report's id
}

func jsonStrings(s []string) string {
	if len(s) == 0 {
		return "[]"
	}
	j, _ := json.Marshal(s)
	return string(j)
}

// sqliteRows prepares the rows of the reports for the SQLite store.
func sqliteRows(reports []benchReport) []rawRows {
	out := make([]rawRows, len(reports))
	for i := range reports {
		r := &reports[i].report
		k, o := r.Key(), benchOrigin(r)
		out[i].report = []any{k.Digest(), k.Reporter, r.Metadata.ReportID, k.Domain, k.DateBegin, k.DateEnd,
			r.Metadata.OrgName, r.Metadata.Email, r.Metadata.ExtraContactInfo, "[]",
			r.Metadata.Generator, r.Version, r.Namespace,
			r.Policy.ADKIM, r.Policy.ASPF, r.Policy.P, r.Policy.SP, r.Policy.NP, r.Policy.Pct, r.Policy.FO,
			r.Policy.Testing, r.Policy.DiscoveryMethod,
			"[]", r.RecordCount, r.MessageCount, "[]", o.Source, o.Part, o.MessageID, o.ReceivedAt.Unix()}
		for j, rec := range reports[i].records {
			var dd, ds, dr, dh, sd, ss, sr, sh []string
			for x, d := range rec.DKIMResults {
				dd, ds, dr, dh = append(dd, d.Domain), append(ds, d.Selector), append(dr, d.Result), append(dh, d.HumanResult)
				out[i].dkim = append(out[i].dkim, []any{j + 1, x + 1, d.Domain, d.Selector, d.Result})
			}
			for _, p := range rec.SPFResults {
				sd, ss, sr, sh = append(sd, p.Domain), append(ss, p.Scope), append(sr, p.Result), append(sh, p.HumanResult)
			}
			out[i].records = append(out[i].records, []any{j + 1, rec.SourceIP, rec.Count, rec.Disposition, rec.DKIM, rec.SPF, "[]",
				rec.EnvelopeTo, rec.EnvelopeFrom, rec.HeaderFrom,
				jsonStrings(dd), jsonStrings(ds), jsonStrings(dr), jsonStrings(dh),
				jsonStrings(sd), jsonStrings(ss), jsonStrings(sr), jsonStrings(sh), "[]"})
		}
	}
	return out
}

// The rollups' upserts of the SQLite store, as its writer makes them.
var sqliteRawRollups = []struct {
	head, tail string
	columns    int
}{
	{`INSERT INTO rollup_domains (day, domain, messages, dmarc_pass, dkim_aligned, spf_aligned, quarantined, rejected)`,
		`ON CONFLICT (domain, day) DO UPDATE SET messages = messages + excluded.messages, dmarc_pass = dmarc_pass + excluded.dmarc_pass,
dkim_aligned = dkim_aligned + excluded.dkim_aligned, spf_aligned = spf_aligned + excluded.spf_aligned,
quarantined = quarantined + excluded.quarantined, rejected = rejected + excluded.rejected`, 8},
	{`INSERT INTO rollup_sources (day, domain, source_ip, messages, dmarc_pass, dkim_aligned, spf_aligned)`,
		`ON CONFLICT (domain, day, source_ip) DO UPDATE SET messages = messages + excluded.messages, dmarc_pass = dmarc_pass + excluded.dmarc_pass,
dkim_aligned = dkim_aligned + excluded.dkim_aligned, spf_aligned = spf_aligned + excluded.spf_aligned`, 7},
	{`INSERT INTO rollup_reporters (day, domain, org_name, reports, messages)`,
		`ON CONFLICT (domain, day, org_name) DO UPDATE SET reports = reports + excluded.reports, messages = messages + excluded.messages`, 5},
	{`INSERT INTO rollup_selectors (day, domain, dkim_domain, selector, messages, passed)`,
		`ON CONFLICT (domain, day, dkim_domain, selector) DO UPDATE SET messages = messages + excluded.messages, passed = passed + excluded.passed`, 6},
}

// sqliteRollupRows are the rows of the four rollups (in the order of
// sqliteRawRollups) that the reports add, summed as the writer sums them.
func sqliteRollupRows(reports []benchReport) [4][][]any {
	type sums [6]int64
	var tables [4]map[[4]string]*sums
	for i := range tables {
		tables[i] = map[[4]string]*sums{}
	}
	get := func(t int, k [4]string) *sums {
		v := tables[t][k]
		if v == nil {
			v = &sums{}
			tables[t][k] = v
		}
		return v
	}
	for _, r := range reports {
		k := r.report.Key()
		day := time.Unix(k.DateBegin, 0).UTC().Format(time.DateOnly)
		rep := get(2, [4]string{day, k.Domain, r.report.Metadata.OrgName})
		rep[0]++
		rep[1] += r.report.MessageCount
		for _, rec := range r.records {
			n, dkim, spf := rec.Count, rec.DKIM == "pass", rec.SPF == "pass"
			for _, s := range []*sums{get(0, [4]string{day, k.Domain}), get(1, [4]string{day, k.Domain, rec.SourceIP})} {
				s[0] += n
				if dkim || spf {
					s[1] += n
				}
				if dkim {
					s[2] += n
				}
				if spf {
					s[3] += n
				}
			}
			switch rec.Disposition {
			case "quarantine":
				get(0, [4]string{day, k.Domain})[4] += n
			case "reject":
				get(0, [4]string{day, k.Domain})[5] += n
			}
			for _, d := range rec.DKIMResults {
				sel := get(3, [4]string{day, k.Domain, d.Domain, d.Selector})
				sel[0] += n
				if d.Result == "pass" {
					sel[1] += n
				}
			}
		}
	}
	var out [4][][]any
	for t, m := range tables {
		for k, v := range m {
			var row []any
			switch t {
			case 0:
				row = []any{k[0], k[1], v[0], v[1], v[2], v[3], v[4], v[5]}
			case 1:
				row = []any{k[0], k[1], k[2], v[0], v[1], v[2], v[3]}
			case 2:
				row = []any{k[0], k[1], k[2], v[0], v[1]}
			case 3:
				row = []any{k[0], k[1], k[2], k[3], v[0], v[1]}
			}
			out[t] = append(out[t], row)
		}
	}
	return out
}

// TestSQLiteEngineRows: BenchmarkWrite's engine insert with the rollups
// stores the same rows as the writer, in every table: its ratio compares
// the same work.
func TestSQLiteEngineRows(t *testing.T) {
	reports := append(smallReports(300), largeReports(4500)...)
	dir := t.TempDir()
	writer, engine := filepath.Join(dir, "writer.db"), filepath.Join(dir, "engine.db")
	s, err := schema.Open(context.Background(), "sqlite:"+writer)
	if err != nil {
		t.Fatal(err)
	}
	timeWriter(t, s, reports)
	timeSQLiteRaw(t, engine, reports, true)
	db, err := sql.Open("sqlite", "file:"+engine)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`ATTACH ? AS w`, writer); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"aggregate_reports", "aggregate_records", "aggregate_dkim",
		"rollup_domains", "rollup_sources", "rollup_reporters", "rollup_selectors"} {
		var rows, differ int
		err := db.QueryRow(`SELECT (SELECT COUNT(*) FROM `+table+`),
  (SELECT COUNT(*) FROM (SELECT * FROM `+table+` EXCEPT SELECT * FROM w.`+table+`)) +
  (SELECT COUNT(*) FROM (SELECT * FROM w.`+table+` EXCEPT SELECT * FROM `+table+`))`).Scan(&rows, &differ)
		if err != nil {
			t.Fatal(err)
		}
		if rows == 0 || differ != 0 {
			t.Errorf("%s: %d rows, %d differ between the writer and the engine", table, rows, differ)
		}
	}
}

// timeSQLiteRaw inserts the reports' rows into a fresh SQLite store with
// modernc.org/sqlite alone, and returns the time it took; with rollups
// also the rows of the four rollups. Its statements are prepared
// beforehand, and insert up to sqlite.RowsPerInsert rows each, as the
// writer's do: one statement per row is slower (BENCHMARKS.md).
func timeSQLiteRaw(b testing.TB, path string, reports []benchReport, rollups bool) timing {
	ctx := context.Background()
	s, err := schema.Open(ctx, "sqlite:"+path)
	if err != nil {
		b.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(30000)&_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=temp_store(MEMORY)&_txlock=immediate")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	// multi[table][n] inserts n rows.
	prepare := func(head string, columns int, tail string) []*sql.Stmt {
		row := "(" + strings.TrimSuffix(strings.Repeat("?,", columns), ",") + ")"
		out := make([]*sql.Stmt, sqlite.RowsPerInsert+1)
		for n := 1; n <= sqlite.RowsPerInsert; n++ {
			out[n], err = db.PrepareContext(ctx, head+" VALUES "+strings.TrimSuffix(strings.Repeat(row+",", n), ",")+" "+tail)
			must(err)
		}
		return out
	}
	reportStmt, err := db.PrepareContext(ctx, sqliteRawReport)
	must(err)
	recordStmts, dkimStmts := prepare(sqliteRawRecord, 20, ""), prepare(sqliteRawDKIM, 6, "")
	var rollupStmts [4][]*sql.Stmt
	for i, r := range sqliteRawRollups {
		rollupStmts[i] = prepare(r.head, r.columns, r.tail)
	}
	// insert inserts rows, each with first if it is not nil.
	args := make([]any, 0, sqlite.RowsPerInsert*20)
	insert := func(tx *sql.Tx, stmts []*sql.Stmt, first any, rows [][]any) {
		for len(rows) > 0 {
			n := min(len(rows), sqlite.RowsPerInsert)
			args = args[:0]
			for _, row := range rows[:n] {
				if first != nil {
					args = append(args, first)
				}
				args = append(args, row...)
			}
			_, err := tx.StmtContext(ctx, stmts[n]).ExecContext(ctx, args...)
			must(err)
			rows = rows[n:]
		}
	}
	// The reports are committed in groups of the writer's bounds, as the
	// writer commits them. Each report's rows, and a group's rollup rows,
	// are made just before they are inserted, and only the inserts are
	// timed: made all at once, they would be a large heap for the
	// collector to go through, which the writer does not have.
	var total timing
	for len(reports) > 0 {
		n, records := 0, 0
		for n < len(reports) && n < sqlite.DefaultGroupReports && records < sqlite.DefaultGroupRecords {
			records += len(reports[n].records)
			n++
		}
		group := reports[:n]
		reports = reports[n:]
		var sums [4][][]any
		if rollups {
			sums = sqliteRollupRows(group)
		}
		done := start()
		tx, err := db.BeginTx(ctx, nil)
		must(err)
		total.add(done())
		for i := range group {
			r := sqliteRows(group[i : i+1])[0]
			done := start()
			res, err := tx.StmtContext(ctx, reportStmt).ExecContext(ctx, r.report...)
			must(err)
			id, err := res.LastInsertId()
			must(err)
			insert(tx, recordStmts, id, r.records)
			insert(tx, dkimStmts, id, r.dkim)
			total.add(done())
		}
		done = start()
		for i, rows := range sums {
			insert(tx, rollupStmts[i], nil, rows)
		}
		must(tx.Commit())
		total.add(done())
	}
	return total
}

// The rows of the ClickHouse store's tables, as its writer stores them.
const (
	clickhouseRawReport = `INSERT INTO aggregate_reports (
	report_key, reporter, report_id, domain, day, date_begin, date_end,
	org_name, email, extra_contact_info, errors, generator, version, namespace,
	adkim, aspf, p, sp, np, pct, fo, testing, discovery_method,
	extensions, record_count, message_count, stored_records, tolerations,
	source, part, message_id, received_at)`
	clickhouseRawRecords = `INSERT INTO aggregate_records (
	report_key, domain, day, org_name, report_id, date_begin, date_end, p, pct,
	seq, source_ip, count, disposition, dkim, spf, reasons,
	envelope_to, envelope_from, header_from,
	dkim_domains, dkim_selectors, dkim_results, dkim_human,
	spf_domains, spf_scopes, spf_results, spf_human, extensions)`
)

// chRecord is a row of aggregate_records, typed: rows of []any would be
// many more objects for the collector to go through than the writer's rows
// are.
type chRecord struct {
	key, domain            string
	day, begin, end        time.Time
	org, id, p             string
	pct                    *int16
	seq                    uint32
	ip                     string
	count                  uint64
	disposition, dkim, spf string
	reasons, to, from, hdr string
	arrays                 [8][]string // dkim_domains ... spf_human
	extensions             []string
}

func (r *chRecord) values() []any {
	return []any{r.key, r.domain, r.day, r.org, r.id, r.begin, r.end, r.p, r.pct,
		r.seq, r.ip, r.count, r.disposition, r.dkim, r.spf, r.reasons, r.to, r.from, r.hdr,
		r.arrays[0], r.arrays[1], r.arrays[2], r.arrays[3], r.arrays[4], r.arrays[5], r.arrays[6], r.arrays[7], r.extensions}
}

// clickhouseRows prepares the rows of a report for the ClickHouse store:
// its row, and its records.
func clickhouseRows(report *benchReport) ([]any, []chRecord) {
	empty := []string{}
	r := &report.report
	k, o := r.Key(), benchOrigin(r)
	begin, end := r.Metadata.DateBegin.UTC(), r.Metadata.DateEnd.UTC()
	day := time.Date(begin.Year(), begin.Month(), begin.Day(), 0, 0, 0, 0, time.UTC)
	pct := int16(r.Policy.Pct)
	digest := k.Digest()
	row := []any{digest, k.Reporter, r.Metadata.ReportID, k.Domain, day, begin, end,
		r.Metadata.OrgName, r.Metadata.Email, r.Metadata.ExtraContactInfo, empty,
		r.Metadata.Generator, r.Version, r.Namespace,
		r.Policy.ADKIM, r.Policy.ASPF, r.Policy.P, r.Policy.SP, r.Policy.NP, &pct, r.Policy.FO,
		r.Policy.Testing, r.Policy.DiscoveryMethod,
		empty, uint64(r.RecordCount), uint64(r.MessageCount), uint64(r.RecordCount), empty,
		o.Source, o.Part, o.MessageID, o.ReceivedAt.UTC()}
	records := make([]chRecord, len(report.records))
	for j, rec := range report.records {
		c := &records[j]
		*c = chRecord{key: digest, domain: k.Domain, day: day, begin: begin, end: end,
			org: r.Metadata.OrgName, id: r.Metadata.ReportID, p: r.Policy.P, pct: &pct,
			seq: uint32(j + 1), ip: rec.SourceIP, count: uint64(rec.Count), disposition: rec.Disposition, dkim: rec.DKIM, spf: rec.SPF,
			reasons: "[]", to: rec.EnvelopeTo, from: rec.EnvelopeFrom, hdr: rec.HeaderFrom, extensions: empty}
		for i := range c.arrays {
			c.arrays[i] = []string{}
		}
		for _, d := range rec.DKIMResults {
			c.arrays[0], c.arrays[1] = append(c.arrays[0], d.Domain), append(c.arrays[1], d.Selector)
			c.arrays[2], c.arrays[3] = append(c.arrays[2], d.Result), append(c.arrays[3], d.HumanResult)
		}
		for _, p := range rec.SPFResults {
			c.arrays[4], c.arrays[5] = append(c.arrays[4], p.Domain), append(c.arrays[5], p.Scope)
			c.arrays[6], c.arrays[7] = append(c.arrays[6], p.Result), append(c.arrays[7], p.HumanResult)
		}
	}
	return row, records
}

// timeClickHouseRaw inserts the reports' rows into a fresh ClickHouse
// store (the database of dsn) with clickhouse-go alone, and returns the
// time it took.
func timeClickHouseRaw(b *testing.B, dsn string, reports []benchReport) timing {
	ctx := context.Background()
	s, err := schema.Open(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	s.Close()
	opts, err := ch.ParseDSN(dsn)
	if err != nil {
		b.Fatal(err)
	}
	conn, err := ch.Open(opts)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	send := func(query string, rows int, row func(i int) []any) {
		bt, err := conn.PrepareBatch(ctx, query)
		if err != nil {
			b.Fatal(err)
		}
		for i := range rows {
			if err := bt.Append(row(i)...); err != nil {
				b.Fatal(err)
			}
		}
		if err := bt.Send(); err != nil {
			b.Fatal(err)
		}
	}
	// The records first, then the rows that make the reports visible, as
	// the store writes a group. A group's rows are made just before they
	// are inserted, and only the inserts are timed (as for SQLite).
	var total timing
	var records []chRecord
	var reportRows [][]any
	flush := func() {
		done := start()
		if len(records) > 0 {
			send(clickhouseRawRecords, len(records), func(i int) []any { return records[i].values() })
		}
		if len(reportRows) > 0 {
			send(clickhouseRawReport, len(reportRows), func(i int) []any { return reportRows[i] })
		}
		total.add(done())
		records, reportRows = records[:0], reportRows[:0]
	}
	for i := range reports {
		row, recs := clickhouseRows(&reports[i])
		records = append(records, recs...)
		reportRows = append(reportRows, row)
		if len(records) >= clickhouse.DefaultGroupRecords || len(reportRows) >= clickhouse.DefaultGroupReports {
			flush()
		}
	}
	flush()
	return total
}
