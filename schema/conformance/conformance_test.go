package conformance

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/analyze"
	"github.com/dmarcd/dmarcd/ingest"
	"github.com/dmarcd/dmarcd/internal/corpus"
	"github.com/dmarcd/dmarcd/internal/testserver"
	"github.com/dmarcd/dmarcd/schema"
	"github.com/dmarcd/dmarcd/schema/clickhouse"
)

// receivedAt is the time both stores record as received_at, so that the
// views can be compared whole.
var receivedAt = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

// A check is SQL that must give the same rows on every store. Rows are
// compared as a set (sorted), unless ordered, where the SQL's ORDER BY
// must be total and is part of the check.
type check struct {
	name    string
	sql     string
	ordered bool
}

// checks are the questions users and the advisor ask, over every view.
// The SQL is what both dialects accept.
var checks = []check{
	{name: "report totals", sql: `SELECT COUNT(*), SUM(record_count), SUM(message_count) FROM reports`},
	{name: "reports view", sql: `SELECT report_key, org_name, email, extra_contact_info, report_id, domain,
		date_begin, date_end, day, adkim, aspf, p, sp, np, pct, fo, testing, discovery_method,
		version, namespace, generator, errors, record_count, message_count, tolerations,
		source, part, message_id, received_at FROM reports`},
	{name: "reports per domain", sql: `SELECT domain, COUNT(*), COUNT(DISTINCT org_name), SUM(message_count) FROM reports GROUP BY domain`},
	{name: "reports since a day", sql: `SELECT COUNT(*) FROM reports WHERE day >= '2018-01-01' AND date_begin < '2025-01-01 00:00:00'`},
	{name: "record totals", sql: `SELECT COUNT(*), SUM(count), SUM(dmarc_pass), SUM(CASE WHEN dmarc_pass = 1 THEN count ELSE 0 END) FROM records`},
	{name: "records view", sql: `SELECT report_key, seq, org_name, report_id, domain, date_begin, date_end, day, p, pct,
		source_ip, count, disposition, dkim, spf, dmarc_pass, reasons, envelope_to, envelope_from, header_from,
		dkim_domains, dkim_selectors, dkim_results, spf_domains, spf_scopes, spf_results FROM records`},
	{name: "per-domain pass rates", sql: `SELECT domain, SUM(messages), SUM(dmarc_pass),
		ROUND(100.0 * SUM(dmarc_pass) / SUM(messages), 2), ROUND(100.0 * SUM(dkim_aligned) / SUM(messages), 2),
		ROUND(100.0 * SUM(spf_aligned) / SUM(messages), 2)
		FROM daily_domains GROUP BY domain HAVING SUM(messages) > 0`},
	{name: "per-source figures", sql: `SELECT source_ip, COUNT(*), SUM(count),
		SUM(CASE WHEN dmarc_pass = 1 THEN count ELSE 0 END), SUM(CASE WHEN disposition = 'reject' THEN count ELSE 0 END)
		FROM records GROUP BY source_ip`},
	{name: "top failing sources", ordered: true, sql: `SELECT domain, source_ip, SUM(messages) - SUM(dmarc_pass) AS failing
		FROM daily_sources GROUP BY domain, source_ip ORDER BY failing DESC, domain, source_ip LIMIT 25`},
	{name: "daily_domains", sql: `SELECT day, domain, messages, dmarc_pass, dkim_aligned, spf_aligned, quarantined, rejected FROM daily_domains`},
	{name: "daily_sources", sql: `SELECT day, domain, source_ip, messages, dmarc_pass, dkim_aligned, spf_aligned FROM daily_sources`},
	{name: "daily_reporters", sql: `SELECT day, domain, org_name, reports, messages FROM daily_reporters`},
	{name: "daily_selectors", sql: `SELECT day, domain, dkim_domain, selector, messages, passed FROM daily_selectors`},
	{name: "rollup totals", sql: `SELECT
		(SELECT SUM(messages) FROM daily_domains), (SELECT SUM(messages) FROM daily_sources),
		(SELECT SUM(reports) FROM daily_reporters), (SELECT SUM(messages) FROM daily_reporters),
		(SELECT SUM(messages) FROM daily_selectors), (SELECT SUM(passed) FROM daily_selectors)`},
	{name: "dkim_signatures view", sql: `SELECT org_name, report_id, domain, day, source_ip, count, header_from,
		dkim_domain, selector, result FROM dkim_signatures`},
	{name: "selectors per reporter", sql: `SELECT selector, org_name, SUM(count), SUM(CASE WHEN result = 'pass' THEN count ELSE 0 END)
		FROM dkim_signatures GROUP BY selector, org_name`},
	// Filters over every view, which ClickHouse pushes into them
	// (enable_optimize_predicate_expression).
	{name: "filtered reports", sql: `SELECT report_id, org_name, message_count FROM reports
		WHERE domain = 'example.com' AND day >= '2019-01-01' AND org_name != ''`},
	{name: "filtered records", sql: `SELECT source_ip, SUM(count) FROM records
		WHERE domain = 'example.com' AND dmarc_pass = 0 GROUP BY source_ip`},
	{name: "filtered daily_domains", sql: `SELECT day, messages, dmarc_pass FROM daily_domains
		WHERE domain = 'example.com' AND day >= '2019-01-01' AND messages > 1`},
	{name: "filtered daily_sources", sql: `SELECT source_ip, SUM(messages) - SUM(dmarc_pass) FROM daily_sources
		WHERE domain = 'example.com' AND day < '2024-06-01' AND messages > 1 GROUP BY source_ip`},
	{name: "filtered daily_reporters", sql: `SELECT day, org_name, reports, messages FROM daily_reporters
		WHERE domain = 'example.com' AND reports > 0`},
	{name: "filtered daily_selectors", sql: `SELECT day, selector, messages, passed FROM daily_selectors
		WHERE domain = 'example.com' AND passed > 0`},
	{name: "filtered dkim_signatures", sql: `SELECT selector, SUM(count) FROM dkim_signatures
		WHERE result = 'pass' AND domain = 'example.com' GROUP BY selector`},
	{name: "filtered failures", sql: `SELECT source_ip, feedback_type FROM failures WHERE domain != '' AND auth_failure != 'x'`},
	{name: "failures view", sql: `SELECT domain, report_from, report_subject, report_date, feedback_type, user_agent,
		reported_domain, source_ip, original_mail_from, original_rcpt_to, arrival_date, auth_failure,
		delivery_result, identity_alignment, dkim_domain, dkim_selector, authentication_results,
		original_from, original_to, original_subject, original_message_id, original_headers,
		tolerations, source, received_at FROM failures`},
	{name: "failures per domain", sql: `SELECT domain, COUNT(*) FROM failures GROUP BY domain`},
	{name: "tls reports", sql: `SELECT org_name, report_id, domain, date_begin, date_end, day, contact_info, policies, successful_sessions, failed_sessions, tolerations FROM tls_reports`},
	{name: "tls policies", sql: `SELECT org_name, report_id, domain, day, seq, policy_type, policy_domain, policy_string, mx_hosts, successful_sessions, failed_sessions FROM tls_policies`},
	{name: "tls failures", sql: `SELECT org_name, report_id, domain, day, policy_type, policy_domain, result_type, sending_mta_ip, receiving_mx_hostname, receiving_mx_helo, receiving_ip, failed_sessions, failure_reason_code, additional_information FROM tls_failures`},
	{name: "tls totals", sql: `SELECT COUNT(*), COALESCE(SUM(successful_sessions), 0), COALESCE(SUM(failed_sessions), 0) FROM tls_reports`},
	{name: "quarantined view", sql: `SELECT sha256, reason, source, part, message_id, received_at, size FROM quarantined`},
	{name: "quarantined totals", sql: `SELECT COUNT(*), SUM(size) FROM quarantined`},
}

// corpusInputs lists the corpus files that are reports or mail, as
// ingest/ingest_test.go's TestCorpusTwice does.
func corpusInputs(t testing.TB) []ingest.Input {
	t.Helper()
	inputs, err := ingest.Expand(corpus.Reports(t))
	if err != nil {
		t.Fatal(err)
	}
	return inputs
}

func openSQLite(t testing.TB) dmarcd.Store {
	t.Helper()
	s, err := schema.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "dmarcd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openClickHouse(t testing.TB, dsn string) dmarcd.Store {
	t.Helper()
	s, err := schema.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ingester(s dmarcd.Store) *ingest.Ingester {
	return ingest.New(s, ingest.Options{Now: func() time.Time { return receivedAt }})
}

// answers runs every check on s.
func answers(t testing.TB, s dmarcd.Store) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, c := range checks {
		rows, err := queryRows(s, c.sql)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !c.ordered {
			slices.Sort(rows)
		}
		out[c.name] = rows
	}
	return out
}

// compare reports every check whose answer on got differs from want.
func compare(t *testing.T, label string, want, got map[string][]string) {
	t.Helper()
	for _, c := range checks {
		w, g := want[c.name], got[c.name]
		if slices.Equal(w, g) {
			continue
		}
		var diff []string
		for i := 0; i < max(len(w), len(g)) && len(diff) < 6; i++ {
			var wi, gi string
			if i < len(w) {
				wi = w[i]
			}
			if i < len(g) {
				gi = g[i]
			}
			if wi != gi {
				diff = append(diff, fmt.Sprintf("  row %d\n    want %s\n    got  %s", i, wi, gi))
			}
		}
		t.Errorf("%s: %s: %d rows, want %d:\n%s", label, c.name, len(g), len(w), strings.Join(diff, "\n"))
	}
}

// queryRows runs q and renders each row in one line, each value the same
// whichever store gave it: integers in decimal whatever their width, days
// as YYYY-MM-DD, times as YYYY-MM-DD HH:MM:SS (UTC), lists as JSON arrays
// (SQLite's text, ClickHouse's Array(String)), absent values as NULL.
func queryRows(s dmarcd.Store, q string) ([]string, error) {
	rows, err := s.Query(context.Background(), q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	types, err := rows.ColumnTypes()
	if err != nil {
		return nil, err
	}
	var out []string
	for rows.Next() {
		vals := make([]any, len(types))
		ptrs := make([]any, len(types))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		cells := make([]string, len(vals))
		for i, v := range vals {
			cells[i] = render(v, types[i])
		}
		out = append(out, strings.Join(cells, " | "))
	}
	return out, rows.Err()
}

func render(v any, typ *sql.ColumnType) string {
	rv := reflect.ValueOf(v)
	if !rv.IsValid() {
		return "NULL"
	}
	if rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return "NULL"
		}
		return render(rv.Elem().Interface(), typ)
	}
	switch v := v.(type) {
	case []byte:
		return string(v)
	case string:
		return v
	case time.Time:
		if strings.HasPrefix(typ.DatabaseTypeName(), "Date") && !strings.HasPrefix(typ.DatabaseTypeName(), "DateTime") {
			return v.Format(time.DateOnly)
		}
		return v.UTC().Format(time.DateTime)
	case []string:
		b, _ := json.Marshal(v)
		return string(b)
	case float32:
		return strconv.FormatFloat(float64(v), 'g', -1, 64)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(rv.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(rv.Uint(), 10)
	}
	return fmt.Sprintf("%T(%v)", v, v)
}

func ingestAll(t testing.TB, s dmarcd.Store, inputs []ingest.Input) ingest.Summary {
	t.Helper()
	sum, err := ingester(s).Files(context.Background(), inputs, nil)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

func domains(t testing.TB, s dmarcd.Store) []analyze.DomainCompliance {
	t.Helper()
	d, err := analyze.Domains(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// analysisWindows are the windows the reads are asked for: all time, and
// one that cuts through the corpus's days.
var analysisWindows = []analyze.Window{{From: "1970-01-01", To: "2100-12-31"}, {From: "2018-10-01", To: "2024-06-30"}}

// waitForInserts waits until the server runs no insert: an insert whose
// connection was cut may still be running.
func waitForInserts(t testing.TB, s dmarcd.Store) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		rows, err := queryRows(s, `SELECT count() FROM system.processes WHERE query LIKE 'INSERT%'`)
		if err != nil {
			t.Fatal(err)
		}
		if rows[0] == "0" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server still runs %s inserts", rows[0])
		}
	}
}

// TestCorpusSameAnswers ingests the corpus into each store, once and then
// again, and checks that every query of checks, and every read of package
// analyze (reads), gives the same answer on both.
func TestCorpusSameAnswers(t *testing.T) {
	inputs := corpusInputs(t)
	lite := openSQLite(t)
	first := ingestAll(t, lite, inputs)
	addAlertHistory(t, lite)
	want := answers(t, lite)
	if len(want["records view"]) == 0 || len(want["failures view"]) == 0 || len(want["quarantined view"]) == 0 ||
		len(want["tls policies"]) == 0 || len(want["tls failures"]) == 0 ||
		len(want["dkim_signatures view"]) == 0 {
		t.Fatalf("the corpus gave empty views in SQLite: %+v", first)
	}
	wantReads := readAll(t, lite)
	if empty := emptyReads(wantReads); len(empty) > 0 {
		t.Errorf("every answer of %s is empty in SQLite: the corpus does not exercise them", strings.Join(empty, ", "))
	}
	t.Logf("corpus: %d inputs, %+v; %d records", len(inputs), first, len(want["records view"]))

	house := openClickHouse(t, testserver.ClickHouse(t))
	sum := ingestAll(t, house, inputs)
	if sum.Aggregate != first.Aggregate || sum.Failure != first.Failure || sum.TLS != first.TLS || sum.Duplicates != first.Duplicates ||
		sum.Quarantined != first.Quarantined || sum.Records != first.Records {
		t.Errorf("ingest into ClickHouse: %+v, into SQLite: %+v", sum, first)
	}
	addAlertHistory(t, house)
	compare(t, "ClickHouse", want, answers(t, house))
	compareReads(t, "ClickHouse", wantReads, readAll(t, house))

	// Twice: every report is a duplicate, every figure unchanged.
	for name, s := range map[string]dmarcd.Store{"SQLite": lite, "ClickHouse": house} {
		again := ingestAll(t, s, inputs)
		if again.Aggregate != 0 || again.Failure != 0 || again.TLS != 0 || again.Duplicates != first.Aggregate+first.Failure+first.TLS+first.Duplicates {
			t.Errorf("%s, second pass: %+v", name, again)
		}
		compare(t, name+" twice", want, answers(t, s))
		compareReads(t, name+" twice", wantReads, readAll(t, s))
	}
}

// TestCutConnection ingests the corpus into ClickHouse through a proxy that
// cuts the connection at a chosen point of an insert, then retries the
// ingest, as the daemon does with input it could not store: every figure
// must be as if each report was stored once. The store groups reports and
// writes a group in two inserts (its records, then its rows); small groups
// make the corpus several groups, so that a cut falls between groups, and
// small batches make reports that insert their records while they are
// read, so that a cut can fall after some of a report's records were
// stored.
func TestCutConnection(t *testing.T) {
	inputs := corpusInputs(t)
	lite := openSQLite(t)
	ingestAll(t, lite, inputs)
	want := answers(t, lite)
	wantDomains := domains(t, lite)

	server := testserver.ClickHouse(t)
	const (
		recordsInsert = "INSERT INTO aggregate_records"
		rowsInsert    = "INSERT INTO aggregate_reports"
		failureInsert = "INSERT INTO failure_reports"
	)
	var (
		large   = clickhouse.Options{BatchRecords: 100} // one group: the corpus
		grouped = clickhouse.Options{GroupReports: 8}   // 7 groups
	)
	cases := []struct {
		name string
		opts clickhouse.Options
		cut  cut
		// settled: the retry, asking the server what the cut insert
		// stored, feeds no record twice; the views read the rollups.
		settled bool
	}{
		{"large report, records insert 12, mid-data", large, cut{marker: recordsInsert, nth: 12, mode: cutMidData}, false},
		{"large report, records insert 20, mid-data", large, cut{marker: recordsInsert, nth: 20, mode: cutMidData}, false},
		{"group 3, records, mid-data", grouped, cut{marker: recordsInsert, nth: 3, mode: cutMidData}, true},
		{"group 4, records, stored but unanswered", grouped, cut{marker: recordsInsert, nth: 4, mode: cutUnanswered}, true},
		{"group 3, report rows, before they are sent", grouped, cut{marker: rowsInsert, nth: 3, mode: cutBefore}, true},
		{"group 5, report rows, mid-data", grouped, cut{marker: rowsInsert, nth: 5, mode: cutMidData}, true},
		{"group 6, report rows, stored but unanswered", grouped, cut{marker: rowsInsert, nth: 6, mode: cutUnanswered}, true},
		{"last flush, report rows, stored but unanswered", clickhouse.Options{}, cut{marker: rowsInsert, nth: 1, mode: cutUnanswered}, true},
		{"failure report 2, stored but unanswered", grouped, cut{marker: failureInsert, nth: 2, mode: cutUnanswered}, true},
	}
	unsettled := 0
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newProxy(t, server)
			p.arm(c.cut)
			s, err := clickhouse.OpenOptions(context.Background(), p.dsn(testserver.ClickHouseDatabase(server)), c.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			in := ingester(s)
			ctx := context.Background()
			start := time.Now()
			_, err = in.Files(ctx, inputs, nil)
			t.Logf("ingest with the cut: %v", time.Since(start).Round(time.Millisecond))
			if !p.fired() {
				t.Fatalf("the proxy never cut (ingest: %v)", err)
			}
			if err == nil {
				t.Fatalf("the ingest did not see the cut")
			}
			t.Logf("cut: %v", err)
			stored, err := queryRows(s, "SELECT (SELECT count() FROM aggregate_records) - (SELECT count() FROM records)")
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("records stored without their report row: %s", stored[0])
			// The retry comes once the server finished what it
			// received, as the daemon's next pass does; then it
			// finds what the cut insert stored.
			waitForInserts(t, s)
			// Retry until a pass stores everything; the pool may hold
			// another connection the cut broke.
			for attempt := 0; ; attempt++ {
				start := time.Now()
				if _, err = in.Files(ctx, inputs, nil); err == nil {
					t.Logf("retry %d: done in %v", attempt+1, time.Since(start).Round(time.Millisecond))
					break
				}
				t.Logf("retry %d: %v", attempt+1, err)
				if attempt == 2 {
					t.Fatalf("retry: %v", err)
				}
			}
			compare(t, "after the cut and a retry", want, answers(t, s))
			if got := domains(t, s); !reflect.DeepEqual(got, wantDomains) {
				t.Errorf("analyze.Domains\n got: %+v\nwant: %+v", got, wantDomains)
			}
			// Show which path the views took.
			rows, err := queryRows(s, "SELECT count() FROM rollup_unsettled")
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("unsettled report days (read from the base tables): %s", rows[0])
			if rows[0] != "0" {
				unsettled++
				if c.settled {
					t.Errorf("the retry fed records or rows twice: %s unsettled days", rows[0])
				}
			}
		})
	}
	if unsettled == 0 {
		t.Error("no cut left a report with records stored twice: the views' fallback to the base tables was not exercised")
	}
}
