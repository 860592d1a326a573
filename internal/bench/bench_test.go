package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// storeOutput is go test -bench output of BenchmarkQueries, as the store
// section reads it.
const storeOutput = `goos: linux
BenchmarkQueries/sqlite
    bench_test.go:203: sqlite: loaded 1000000 records in 17.844s (56042 records/s)
BenchmarkQueries/sqlite/domain_per_day-2         	       1	    733277 ns/op
BenchmarkQueries/clickhouse
    bench_test.go:203: clickhouse: loaded 1000000 records in 19.009s (52605 records/s)
BenchmarkQueries/clickhouse/domain_per_day-2              	       1	  37995574 ns/op
PASS
`

const signerOutput = `BenchmarkSign/rsa2048/1sig-2   	    3000	   1103000 ns/op	   906.0 msgs/s	   4.10 MB/s
BenchmarkBareSign/ed25519/Sign-2	  100000	     22755 ns/op	 43946 sigs/s
`

const writersOutput = `BenchmarkWrite/sqlite/large-2         	       3	     47197 cpu-records/s	     62993 engine-cpu-records/s	     27777 engine-records/s	     50000 engine-rollups-cpu-records/s	     25000 engine-rollups-records/s	     22100 records/s	         0.7956 writer/engine	         0.7492 writer/engine-cpu	         0.884 writer/engine-rollups	         0.9439 writer/engine-rollups-cpu
BenchmarkWrite/clickhouse/small-2     	       3	     30395 engine-records/s	     29243 records/s	         0.9621 writer/engine
`

// TestWritersTable: BenchmarkWrite's lines make the table of the writers
// against their engines.
func TestWritersTable(t *testing.T) {
	bs, _ := parseGoBench([]byte(writersOutput))
	var b strings.Builder
	writersTable(&b, StoreRun{Writers: true, Records: 100000, Command: "go test", Benchmarks: bs})
	for _, want := range []string{
		"| sqlite | large | the same rows, the rollups' upserts included | 22100 | 25000 | 0.88 | 47197 | 50000 | 0.94 |",
		"| sqlite | large | the reports, records and DKIM results, not the rollups | 22100 | 27777 | 0.80 | 47197 | 62993 | 0.75 |",
		"| clickhouse | small | the same rows (the server's views keep the rollups) | 29243 | 30395 | 0.96 |  |  |  |"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %q in\n%s", want, b.String())
		}
	}
}

func TestParseGoBench(t *testing.T) {
	bs, loads := parseGoBench([]byte(storeOutput))
	if len(bs) != 2 || bs[0].Name != "BenchmarkQueries/sqlite/domain_per_day" || bs[0].Metrics["ns/op"] != 733277 {
		t.Errorf("benchmarks: %+v", bs)
	}
	if len(loads) != 2 || loads[1].Store != "clickhouse" || loads[1].Records != 1000000 || loads[1].Rate != 52605 || loads[0].Seconds != 17.844 {
		t.Errorf("loads: %+v", loads)
	}
	bs, _ = parseGoBench([]byte(signerOutput))
	if len(bs) != 2 || bs[0].Metrics["msgs/s"] != 906 || bs[0].Metrics["MB/s"] != 4.1 || bs[1].Metrics["sigs/s"] != 43946 {
		t.Errorf("signer: %+v", bs)
	}
}

// TestMerge: two runs of different sections make one report with the
// tables of both.
func TestMerge(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, r Results) string {
		data, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bs, loads := parseGoBench([]byte(storeOutput))
	signer, _ := parseGoBench([]byte(signerOutput))
	a := write("a.json", Results{Sections: []string{"backfill"}, Machine: Machine{CPU: "test CPU", Cores: 2},
		Backfill: []Measure{
			{Group: "backfill", Tool: "dmarcd ingest", Files: 100, Reports: 100, Records: 5000, Expected: 5000, Runs: []Run{{Wall: 1, MaxRSS: 40 << 20}}},
			{Group: "backfill", Tool: "dmarcd ingest", Files: 200, Reports: 200, Records: 10000, Expected: 10000, Runs: []Run{{Wall: 2, MaxRSS: 44 << 20}}},
		}})
	b := write("b.json", Results{Sections: []string{"store", "signer"},
		Store:  []StoreRun{{Records: 1000000, Command: "go test", Loads: loads, Benchmarks: bs}},
		Signer: signer})
	out := filepath.Join(dir, "all")
	if err := mergeResults([]string{a, b}, out); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(out, "results.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Machine: test CPU, 2 cores",
		"| 200 | 0.0 MiB | 200 | 10000 (10000) | 2.0 / 2.0 s | 100 | 5000 | 44.0 MiB |",
		"Growth (backfill): 2x the messages (2.00x the records) -> 2.00x the time, 1.10x the peak memory.",
		"| insert (one writer) | 56042 records/s (17.8s) | 52605 records/s (19.0s) |",
		"| `domain_per_day` | 0.0007 s | 0.038 s |",
		"| Sign/rsa2048/1sig | 1 | 906 / 906 msgs/s | 4.1 |",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("results.md lacks %q:\n%s", want, md)
		}
	}
	var merged Results
	data, _ := os.ReadFile(filepath.Join(out, "results.json"))
	if err := json.Unmarshal(data, &merged); err != nil || len(merged.Sections) != 3 || len(merged.Backfill) != 2 || len(merged.Store) != 1 {
		t.Errorf("results.json: %v %+v", err, merged.Sections)
	}
}
