package conformance

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/analyze"
	"github.com/dmarcd/dmarcd/internal/reportgen"
	"github.com/dmarcd/dmarcd/internal/testserver"
)

// The benchmarks store generated records straight into each store (no
// parsing) and run the advisor's and the dashboards' queries over them.
// The number of records is $DMARCD_BENCH_RECORDS, 100,000 by default so
// that `go test -bench` stays quick. The numbers in BENCHMARKS.md were
// measured with:
//
//	DMARCD_BENCH_RECORDS=10000000 go test -run '^$' -bench . -benchtime 1x -timeout 2h ./schema/conformance
const (
	defaultBenchRecords = 100_000
	benchRecordsEnv     = "DMARCD_BENCH_RECORDS"
)

// The generated data: reports of benchRecordsPerReport records, for
// benchDomains domains, from the reporters of reportgen, one report per
// domain, reporter and day, days following each other from benchStart.
// Each domain has benchSources sending addresses, of which the first
// tenth are our servers (aligned DKIM and SPF pass), the next quarter
// third parties signing with our selector, the next fifth forwarders (DKIM
// survives or not) and the rest spoofers.
const (
	benchRecordsPerReport = 2_000
	benchDomains          = 10
	benchSources          = 4_000
)

var benchStart = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func benchRecords(b *testing.B) int {
	n := defaultBenchRecords
	if v := os.Getenv(benchRecordsEnv); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			b.Fatalf("%s=%q: want a positive number of records", benchRecordsEnv, v)
		}
	}
	return n
}

func benchDomain(i int) string { return fmt.Sprintf("domain%d.example", i) }

// generate stores n records into s, in reports of benchRecordsPerReport,
// and flushes what s holds back (dmarcd.Flusher). The same n gives the
// same data.
func generate(b *testing.B, s dmarcd.Store, n int) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	recs := make([]dmarcd.Record, benchRecordsPerReport)
	reporters := reportgen.Reporters
	for i := 0; n > 0; i++ {
		domain := i % benchDomains
		rep := reporters[(i/benchDomains)%len(reporters)]
		day := benchStart.AddDate(0, 0, i/(benchDomains*len(reporters)))
		r := &dmarcd.AggregateReport{
			Metadata: dmarcd.ReportMetadata{OrgName: rep.OrgName, Email: rep.Email, ReportID: fmt.Sprint("bench-", i),
				DateBegin: day, DateEnd: day.Add(24*time.Hour - time.Second)},
			Policy: dmarcd.PolicyPublished{Domain: benchDomain(domain), ADKIM: "r", ASPF: "r", P: "quarantine", SP: "none", Pct: 100},
		}
		w, err := s.BeginAggregate(ctx, r, dmarcd.Origin{Source: "bench", ReceivedAt: day.AddDate(0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		k := min(n, benchRecordsPerReport)
		for j := range k {
			recs[j] = benchRecord(rng, domain)
			if err := w.Write(ctx, &recs[j]); err != nil {
				b.Fatal(err)
			}
			r.RecordCount++
			r.MessageCount += recs[j].Count
		}
		if err := w.Commit(ctx, r); err != nil {
			b.Fatal(err)
		}
		n -= k
	}
	if f, ok := s.(dmarcd.Flusher); ok {
		if err := f.Flush(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func benchRecord(rng *rand.Rand, domain int) dmarcd.Record {
	src := rng.IntN(benchSources)
	// A few sources send most of the mail.
	count := int64(1 + rng.IntN(10))
	if src < benchSources/100 {
		count *= 100
	}
	ours := benchDomain(domain)
	rec := dmarcd.Record{
		SourceIP:    fmt.Sprintf("10.%d.%d.%d", domain, src/256, src%256),
		Count:       count,
		Disposition: "none",
		HeaderFrom:  ours,
		SPFResults:  []dmarcd.SPFResult{{Domain: ours, Scope: "mfrom", Result: "pass"}},
	}
	sign := func(domain, selector, result string) {
		rec.DKIMResults = append(rec.DKIMResults, dmarcd.DKIMResult{Domain: domain, Selector: selector, Result: result})
	}
	switch {
	case src < benchSources/10: // ours
		rec.DKIM, rec.SPF = "pass", "pass"
		sign(ours, "s2025", "pass")
	case src < benchSources*35/100: // third party with our selector
		rec.DKIM, rec.SPF = "pass", "fail"
		rec.SPFResults[0].Domain = "esp.example"
		sign(ours, "esp1", "pass")
		sign("esp.example", "k1", "pass")
	case src < benchSources*55/100: // forwarder
		rec.DKIM, rec.SPF = "pass", "fail"
		rec.SPFResults[0].Result = "fail"
		if rng.IntN(3) == 0 {
			rec.DKIM = "fail"
			sign(ours, "s2025", "fail")
		} else {
			sign(ours, "s2025", "pass")
		}
	default: // spoofer
		rec.DKIM, rec.SPF = "fail", "fail"
		rec.Disposition = "quarantine"
		rec.SPFResults[0].Result = "fail"
	}
	return rec
}

// benchStores are the stores the benchmarks compare; each opens an empty
// store.
var benchStores = []struct {
	name string
	open func(b *testing.B) dmarcd.Store
}{
	{"sqlite", func(b *testing.B) dmarcd.Store { return openSQLite(b) }},
	{"clickhouse", func(b *testing.B) dmarcd.Store { return openClickHouse(b, testserver.ClickHouse(b)) }},
	// Two shards of two replicas on this one machine: the cost of
	// replication and of the Distributed tables, not the gain of more
	// machines.
	{"clickhouse-cluster", func(b *testing.B) dmarcd.Store {
		return openClickHouse(b, testserver.StartClickHouseCluster(b, clusterShards, clusterReplicas).NewDSN())
	}},
}

// BenchmarkInsert stores $DMARCD_BENCH_RECORDS records per iteration into
// an empty store, and reports records/s.
func BenchmarkInsert(b *testing.B) {
	n := benchRecords(b)
	for _, st := range benchStores {
		b.Run(st.name, func(b *testing.B) {
			var elapsed time.Duration
			for range b.N {
				b.StopTimer()
				s := st.open(b)
				b.StartTimer()
				start := time.Now()
				generate(b, s, n)
				elapsed += time.Since(start)
				b.StopTimer()
				s.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(n)*float64(b.N)/elapsed.Seconds(), "records/s")
		})
	}
}

// benchQueries are the dashboards' and the advisor's questions, in SQL
// both stores accept.
var benchQueries = []struct{ name, sql string }{
	{"domain_per_day", `SELECT day, messages, dmarc_pass, quarantined, rejected FROM daily_domains
		WHERE domain = 'domain3.example' ORDER BY day`},
	{"top_failing_sources", `SELECT source_ip, SUM(messages) - SUM(dmarc_pass) AS failing FROM daily_sources
		WHERE domain = 'domain3.example' AND day >= '2025-01-01' GROUP BY source_ip ORDER BY failing DESC, source_ip LIMIT 20`},
	{"selectors", `SELECT dkim_domain, selector, SUM(messages), SUM(passed) FROM daily_selectors
		WHERE domain = 'domain3.example' GROUP BY dkim_domain, selector`},
	{"reporters", `SELECT org_name, SUM(reports), SUM(messages) FROM daily_reporters GROUP BY org_name`},
	// The same question as top_failing_sources, over the records view:
	// what a user's ad-hoc SQL costs.
	{"records_failing_sources", `SELECT source_ip, SUM(count) AS messages FROM records
		WHERE domain = 'domain3.example' AND dmarc_pass = 0 GROUP BY source_ip ORDER BY messages DESC, source_ip LIMIT 20`},
}

// BenchmarkQueries loads $DMARCD_BENCH_RECORDS records into each store
// once, then times each query.
func BenchmarkQueries(b *testing.B) {
	n := benchRecords(b)
	for _, st := range benchStores {
		b.Run(st.name, func(b *testing.B) {
			s := st.open(b)
			start := time.Now()
			generate(b, s, n)
			load := time.Since(start)
			b.Logf("%s: loaded %d records in %v (%.0f records/s)", st.name, n, load.Round(time.Millisecond), float64(n)/load.Seconds())
			for _, q := range benchQueries {
				b.Run(q.name, func(b *testing.B) {
					for range b.N {
						rows, err := queryRows(s, q.sql)
						if err != nil {
							b.Fatal(err)
						}
						if len(rows) == 0 {
							b.Fatal("no rows")
						}
					}
				})
			}
			b.Run("analyze_domains", func(b *testing.B) {
				for range b.N {
					d, err := analyze.Domains(context.Background(), s)
					if err != nil {
						b.Fatal(err)
					}
					if len(d) != benchDomains {
						b.Fatalf("%d domains, want %d", len(d), benchDomains)
					}
				}
			})
		})
	}
}

// Small reports, the common case of a backfill: a mailbox of years of
// reports of 1 to benchSmallMaxRecords records each. The number of reports
// is $DMARCD_BENCH_REPORTS, 5,000 by default.
const (
	defaultBenchSmallReports = 5_000
	benchSmallReportsEnv     = "DMARCD_BENCH_REPORTS"
	benchSmallMaxRecords     = 10
)

// benchSmallReports is $DMARCD_BENCH_REPORTS, or its default.
func benchSmallReports(b *testing.B) int {
	n := defaultBenchSmallReports
	if v := os.Getenv(benchSmallReportsEnv); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			b.Fatalf("%s=%q: want a positive number of reports", benchSmallReportsEnv, v)
		}
	}
	return n
}

// generateSmall stores n reports of 1 to benchSmallMaxRecords records into
// s, then flushes what s holds back (dmarcd.Flusher), as ingest.Files does
// at its end. It returns the number of records.
func generateSmall(b *testing.B, s dmarcd.Store, n int) int {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	reporters := reportgen.Reporters
	records := 0
	for i := range n {
		domain := i % benchDomains
		rep := reporters[(i/benchDomains)%len(reporters)]
		day := benchStart.AddDate(0, 0, i/(benchDomains*len(reporters)))
		r := &dmarcd.AggregateReport{
			Metadata: dmarcd.ReportMetadata{OrgName: rep.OrgName, Email: rep.Email, ReportID: fmt.Sprint("small-", i),
				DateBegin: day, DateEnd: day.Add(24*time.Hour - time.Second)},
			Policy: dmarcd.PolicyPublished{Domain: benchDomain(domain), ADKIM: "r", ASPF: "r", P: "none", Pct: 100},
		}
		w, err := s.BeginAggregate(ctx, r, dmarcd.Origin{Source: "bench", ReceivedAt: day.AddDate(0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		for range 1 + rng.IntN(benchSmallMaxRecords) {
			rec := benchRecord(rng, domain)
			if err := w.Write(ctx, &rec); err != nil {
				b.Fatal(err)
			}
			r.RecordCount++
			r.MessageCount += rec.Count
		}
		if err := w.Commit(ctx, r); err != nil {
			b.Fatal(err)
		}
		records += int(r.RecordCount)
	}
	// The interface of dmarcd.Flusher, spelled out so that this file also
	// measures a tree without it.
	if f, ok := s.(interface{ Flush(context.Context) error }); ok {
		if err := f.Flush(ctx); err != nil {
			b.Fatal(err)
		}
	}
	return records
}

// benchFailureReports is how many failure reports
// BenchmarkInsertFailureReports stores per iteration: a busy domain's
// failure mailbox of a few weeks.
const benchFailureReports = 2_000

// BenchmarkInsertFailureReports stores failure reports, each with the
// original headers of a few hundred bytes, into an empty store, then
// flushes, and reports reports/s.
//
//	go test -run '^$' -bench InsertFailureReports -benchtime 1x ./schema/conformance
func BenchmarkInsertFailureReports(b *testing.B) {
	ctx := context.Background()
	for _, st := range benchStores {
		b.Run(st.name, func(b *testing.B) {
			var elapsed time.Duration
			for range b.N {
				b.StopTimer()
				s := st.open(b)
				b.StartTimer()
				start := time.Now()
				for i := range benchFailureReports {
					day := benchStart.Add(time.Duration(i) * time.Minute)
					f := &dmarcd.FailureReport{ReportFrom: "dmarc-noreply@receiver.example", FeedbackType: "auth-failure",
						ReportedDomain: benchDomain(i % benchDomains), SourceIP: fmt.Sprintf("198.51.100.%d", i%250),
						ArrivalDate: day, ArrivalDateText: day.Format(time.RFC1123Z), AuthFailure: "dmarc",
						OriginalMessageID: fmt.Sprintf("<%d@sender.example>", i),
						OriginalHeaders: fmt.Sprintf("From: news@%s\r\nTo: someone@receiver.example\r\nSubject: Offer %d\r\n"+
							"Date: %s\r\nMessage-ID: <%d@sender.example>\r\nReceived: from mta.sender.example (198.51.100.%d) by mx.receiver.example\r\n",
							benchDomain(i%benchDomains), i, day.Format(time.RFC1123Z), i, i%250),
						Fields: []dmarcd.Field{{Name: "Feedback-Type", Value: "auth-failure"}, {Name: "Auth-Failure", Value: "dmarc"}}}
					if err := s.AddFailure(ctx, f, dmarcd.Origin{Source: "bench", ReceivedAt: day}); err != nil {
						b.Fatal(err)
					}
				}
				if f, ok := s.(interface{ Flush(context.Context) error }); ok {
					if err := f.Flush(ctx); err != nil {
						b.Fatal(err)
					}
				}
				elapsed += time.Since(start)
				b.StopTimer()
				s.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(benchFailureReports)*float64(b.N)/elapsed.Seconds(), "reports/s")
		})
	}
}

// benchTLSReports is how many TLS reports BenchmarkInsertTLSReports
// stores per iteration: a year of daily reports from a few reporters for a
// few domains.
const benchTLSReports = 2_000

// BenchmarkInsertTLSReports stores SMTP TLS reports, each with two
// policies and a failure detail, into an empty store, then flushes, and
// reports reports/s.
//
//	go test -run '^$' -bench InsertTLSReports -benchtime 1x ./schema/conformance
func BenchmarkInsertTLSReports(b *testing.B) {
	ctx := context.Background()
	for _, st := range benchStores {
		b.Run(st.name, func(b *testing.B) {
			var elapsed time.Duration
			for range b.N {
				b.StopTimer()
				s := st.open(b)
				ts := s.(dmarcd.TLSStore)
				b.StartTimer()
				start := time.Now()
				for i := range benchTLSReports {
					day := benchStart.AddDate(0, 0, i/(benchDomains*2))
					domain := benchDomain(i % benchDomains)
					r := &dmarcd.TLSReport{OrganizationName: []string{"Google Inc.", "Microsoft Corporation"}[i/benchDomains%2],
						ReportID: fmt.Sprint("tls-", i), DateBegin: day, DateEnd: day.Add(24*time.Hour - time.Second),
						ContactInfo: "smtp-tls-reporting@reporter.example",
						Policies: []dmarcd.TLSPolicy{
							{Type: "sts", Domain: domain, String: []string{"version: STSv1", "mode: enforce", "mx: mx." + domain, "max_age: 86400"},
								MXHosts: []string{"mx." + domain}, SuccessfulSessions: int64(100 + i%50), FailedSessions: int64(i % 3),
								FailureDetails: []dmarcd.TLSFailureDetail{{ResultType: "certificate-expired", SendingMTAIP: "203.0.113.7",
									ReceivingMXHostname: "mx." + domain, ReceivingIP: "198.51.100.25", FailedSessions: int64(i % 3)}}},
							{Type: "no-policy-found", Domain: "mail." + domain, SuccessfulSessions: int64(i % 20)},
						}}
					if err := ts.AddTLSReport(ctx, r, dmarcd.Origin{Source: "bench", ReceivedAt: day.AddDate(0, 0, 1)}); err != nil {
						b.Fatal(err)
					}
				}
				if f, ok := s.(interface{ Flush(context.Context) error }); ok {
					if err := f.Flush(ctx); err != nil {
						b.Fatal(err)
					}
				}
				elapsed += time.Since(start)
				b.StopTimer()
				s.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(benchTLSReports)*float64(b.N)/elapsed.Seconds(), "reports/s")
		})
	}
}

// BenchmarkInsertSmallReports stores $DMARCD_BENCH_REPORTS small reports
// per iteration into an empty store, and reports reports/s and records/s.
//
//	go test -run '^$' -bench InsertSmallReports -benchtime 1x -timeout 1h ./schema/conformance
func BenchmarkInsertSmallReports(b *testing.B) {
	n := benchSmallReports(b)
	for _, st := range benchStores {
		b.Run(st.name, func(b *testing.B) {
			var elapsed time.Duration
			records := 0
			for range b.N {
				b.StopTimer()
				s := st.open(b)
				b.StartTimer()
				start := time.Now()
				records += generateSmall(b, s, n)
				elapsed += time.Since(start)
				b.StopTimer()
				s.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(n)*float64(b.N)/elapsed.Seconds(), "reports/s")
			b.ReportMetric(float64(records)/elapsed.Seconds(), "records/s")
		})
	}
}
