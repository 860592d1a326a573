package main

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dmarcd/dmarcd/internal/testserver"
)

// TestQueryClickHouseValues prints ClickHouse's types as dmarcd query
// promises: days as YYYY-MM-DD, times as YYYY-MM-DD HH:MM:SS, arrays as
// JSON arrays, NULL as empty (null in JSON), in every format.
func TestQueryClickHouseValues(t *testing.T) {
	dsn := testserver.ClickHouse(t)
	// query reads an existing store only: a database without one is an
	// error, not a new store.
	if code, _, errOut := runCLI(t, "query", "--store", dsn, "SELECT 1"); code != exitFailure || !strings.Contains(errOut, "does not exist, so it holds no dmarcd store") {
		t.Errorf("query on an empty database: exit %d: %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "migrate", "--store", dsn); code != exitOK {
		t.Fatalf("migrate: exit %d: %s", code, errOut)
	}
	const q = `SELECT toDate('2026-11-02') AS d, toDateTime('2026-11-02 08:09:10', 'UTC') AS t,
		['a', 'b,c'] AS arr, emptyArrayString() AS none, [1, 2] AS nums, [300, 2] AS wide,
		CAST(NULL AS Nullable(Int16)) AS n, toNullable(toDate('2026-11-03')) AS nd,
		[toDate('2026-01-01')] AS ad, toUInt64(18446744073709551615) AS big, 'x' AS s`
	code, out, errOut := runCLI(t, "query", "--store", dsn, "-f", "csv", q)
	if code != exitOK {
		t.Fatalf("csv: exit %d: %s", code, errOut)
	}
	want := "d,t,arr,none,nums,wide,n,nd,ad,big,s\n" +
		`2026-11-02,2026-11-02 08:09:10,"[""a"",""b,c""]",[],"[1,2]","[300,2]",,2026-11-03,"[""2026-01-01""]",18446744073709551615,x` + "\n"
	if out != want {
		t.Errorf("csv\n got: %q\nwant: %q", out, want)
	}

	code, out, errOut = runCLI(t, "query", "--store", dsn, "-f", "json", q)
	if code != exitOK {
		t.Fatalf("json: exit %d: %s", code, errOut)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	wantJSON := map[string]any{"d": "2026-11-02", "t": "2026-11-02 08:09:10", "arr": []any{"a", "b,c"}, "none": []any{},
		"nums": []any{1.0, 2.0}, "wide": []any{300.0, 2.0}, "n": nil, "nd": "2026-11-03", "ad": []any{"2026-01-01"},
		"big": 18446744073709551615.0, "s": "x"}
	if len(rows) != 1 || !reflect.DeepEqual(rows[0], wantJSON) {
		t.Errorf("json\n got: %v\nwant: %v\n%s", rows, wantJSON, out)
	}
	if !strings.Contains(out, `"big":18446744073709551615`) {
		t.Errorf("json: a UInt64 lost digits:\n%s", out)
	}

	code, out, errOut = runCLI(t, "query", "--store", dsn, q)
	if code != exitOK {
		t.Fatalf("table: exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[1]), " ") !=
		`2026-11-02 2026-11-02 08:09:10 ["a","b,c"] [] [1,2] [300,2] 2026-11-03 ["2026-01-01"] 18446744073709551615 x` {
		t.Errorf("table:\n%s", out)
	}
}

// TestQuerySameOnBothStores ingests the samples into SQLite and ClickHouse:
// the same SQL prints the same table and CSV from both.
func TestQuerySameOnBothStores(t *testing.T) {
	stores := map[string]string{
		"sqlite":     filepath.Join(t.TempDir(), "d.db"),
		"clickhouse": testserver.ClickHouse(t),
	}
	for name, dsn := range stores {
		if code, out, errOut := runCLI(t, "ingest", "--quiet", "--store", dsn, "../../samples"); code != exitOK {
			t.Fatalf("ingest into %s: exit %d\n%s\n%s", name, code, out, errOut)
		}
	}
	for _, q := range []string{
		`SELECT report_id, domain, day, date_begin, date_end, pct, seq, source_ip, count, dmarc_pass,
			dkim_domains, dkim_selectors, dkim_results, spf_results, reasons FROM records ORDER BY report_key, seq`,
		`SELECT day, domain, messages, dmarc_pass, quarantined FROM daily_domains ORDER BY day, domain`,
		`SELECT org_name, report_id, day, record_count, errors, tolerations FROM reports ORDER BY report_key`,
	} {
		for _, format := range []string{"table", "csv"} {
			got := map[string]string{}
			for name, dsn := range stores {
				code, out, errOut := runCLI(t, "query", "--store", dsn, "-f", format, q)
				if code != exitOK {
					t.Fatalf("%s, %s: exit %d: %s", name, format, code, errOut)
				}
				got[name] = out
			}
			if got["sqlite"] != got["clickhouse"] {
				t.Errorf("%s as %s\n--- sqlite\n%s--- clickhouse\n%s", q, format, got["sqlite"], got["clickhouse"])
			}
			if strings.Count(got["sqlite"], "\n") < 3 {
				t.Errorf("%s as %s: too few rows:\n%s", q, format, got["sqlite"])
			}
		}
	}
}

func TestStatements(t *testing.T) {
	for text, want := range map[string]int{
		"SELECT 1":                        1,
		"SELECT 1;":                       1,
		"SELECT 1; SELECT 2":              2,
		"SELECT ';' AS x":                 1,
		"SELECT 'it''s; fine'; ":          1,
		"SELECT 1 -- ; SELECT 2\n":        1,
		"SELECT 1 /* ; */ ; /* done */":   1,
		`SELECT "a;b" FROM t; DELETE x`:   2,
		"SELECT 'a\\';b' ; ; SELECT 3;":   2,
		"  ;  ":                           0,
		"SELECT 1;\nSELECT 2;\nSELECT 3;": 3,
	} {
		if got := statements(text); got != want {
			t.Errorf("statements(%q) = %d, want %d", text, got, want)
		}
	}
}
