// Command bench measures dmarcd end to end on this machine, beside other
// DMARC report parsers, in one run, and writes the results as JSON and as
// Markdown tables (BENCHMARKS.md explains them):
//
//   - parse: dmarcd's parser (ingest/unpack + ingest/aggregate, no store)
//     beside dmarc-cat (Go), Mail::DMARC and dmarcts-report-parser (Perl),
//     all from Debian, and the floor (only decompressing and tokenizing the
//     same bytes), on the same generated reports as .xml, .xml.gz, .zip
//     and .eml; each parser runs as a process over the files, in one
//     process for all files and one process per file, and over one large
//     report; at 1x, 2x and 4x the reports;
//   - imap: `dmarcd poll --once` from a throwaway Dovecot (messages
//     APPENDed first) into a fresh SQLite store, at 1x, 2x and 4x;
//   - backfill: `dmarcd ingest` of a folder of generated report mails
//     into a fresh SQLite store, time and peak memory, at 12,500, 25,000
//     and 50,000 messages;
//   - store: schema/conformance's insert and query benchmarks at each
//     $DMARCD_BENCH_RECORDS, both stores (go test -bench); small, failure
//     and TLS reports; and BenchmarkWrite, each store's writer beside its
//     engine's own insert of the same rows (ClickHouse batch inserts with
//     clickhouse-go, SQLite inserts with modernc.org/sqlite), taking turns
//     in one run, at the first size;
//   - signer: signer's benchmarks (go test -bench).
//
// Run it from the module root, as `make bench` and `make bench-quick` do:
//
//	go run ./internal/bench -out bench.out            # everything (about 45 minutes)
//	go run ./internal/bench -quick -out bench.out     # a small version (a few minutes)
//	go run ./internal/bench -only parse,signer        # some sections
//	go run ./internal/bench -merge a/results.json,b/results.json -out all
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// config is what the flags set.
type config struct {
	out          string
	only         map[string]bool
	quick        bool
	reports      int   // parse corpus at 1x
	reps         int   // repetitions of each parse measurement
	perFile      int   // files run one process each
	imapMessages int   // IMAP at 1x
	imapReps     int   // repetitions of each IMAP measurement
	backfill     []int // backfill sizes
	storeRecords []int // store benchmark sizes
	seed         uint64
}

// Results is what the run measured, written as results.json.
type Results struct {
	Started  time.Time `json:"started"`
	Elapsed  float64   `json:"elapsed_s"`
	Quick    bool      `json:"quick"`
	Machine  Machine   `json:"machine"`
	Sections []string  `json:"sections"`
	// Parse holds every parse measurement.
	Parse    []Measure   `json:"parse,omitempty"`
	IMAP     []Measure   `json:"imap,omitempty"`
	Backfill []Measure   `json:"backfill,omitempty"`
	Store    []StoreRun  `json:"store,omitempty"`
	Signer   []GoBench   `json:"signer,omitempty"`
	Notes    []string    `json:"notes,omitempty"`
	Skipped  []string    `json:"skipped,omitempty"`
	Quiet    []QuietNote `json:"quiet,omitempty"`
}

// Measure is one thing measured, with its repetitions.
type Measure struct {
	Group      string `json:"group"` // batch, per-file, start-up, big, imap, append, backfill
	Tool       string `json:"tool"`
	Form       string `json:"form,omitempty"`
	Scale      int    `json:"scale,omitempty"`
	Files      int    `json:"files,omitempty"`
	Reports    int    `json:"reports"`
	Records    int64  `json:"records"`
	Expected   int64  `json:"expected_records,omitempty"`
	InputBytes int64  `json:"input_bytes,omitempty"`
	XMLBytes   int64  `json:"xml_bytes,omitempty"`
	Runs       []Run  `json:"runs"`
	Note       string `json:"note,omitempty"`
}

// mergeResults writes the results of several runs as one: the machine of
// the first, the sections of each in turn.
func mergeResults(files []string, out string) error {
	var res Results
	for i, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var r Results
		if err := json.Unmarshal(data, &r); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if i == 0 {
			res.Started, res.Quick, res.Machine = r.Started, r.Quick, r.Machine
		}
		res.Elapsed += r.Elapsed
		res.Sections = append(res.Sections, r.Sections...)
		res.Parse = append(res.Parse, r.Parse...)
		res.IMAP = append(res.IMAP, r.IMAP...)
		res.Backfill = append(res.Backfill, r.Backfill...)
		res.Store = append(res.Store, r.Store...)
		res.Signer = append(res.Signer, r.Signer...)
		res.Notes = append(res.Notes, r.Notes...)
		res.Skipped = append(res.Skipped, r.Skipped...)
		res.Quiet = append(res.Quiet, r.Quiet...)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	data, _ := json.MarshalIndent(&res, "", "  ")
	if err := os.WriteFile(filepath.Join(out, "results.json"), data, 0o644); err != nil {
		return err
	}
	md := markdown(&res, &config{})
	return os.WriteFile(filepath.Join(out, "results.md"), []byte(md), 0o644)
}

func main() {
	if len(os.Args) > 2 && os.Args[1] == "-child" {
		if err := child(os.Args[2], os.Args[3:]); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	var c config
	var only, backfill, storeRecords string
	flag.StringVar(&c.out, "out", "bench.out", "folder for the corpora, stores and results (results.json, results.md)")
	flag.StringVar(&only, "only", "parse,imap,backfill,store,signer", "sections to run, comma-separated")
	flag.BoolVar(&c.quick, "quick", false, "a small version: fewer reports, messages and repetitions; store at 100,000 records")
	flag.IntVar(&c.reports, "reports", 0, "reports of the parse corpus at 1x (default 1000, quick 100)")
	flag.IntVar(&c.reps, "reps", 0, "repetitions of each parse measurement (default 3, quick 2; at 2x and 4x: 2)")
	flag.IntVar(&c.perFile, "per-file", 0, "files run with one process each (default 100, quick 30)")
	flag.IntVar(&c.imapMessages, "imap", 0, "messages read over IMAP at 1x (default 1000, quick 100)")
	flag.IntVar(&c.imapReps, "imap-reps", 0, "repetitions of each IMAP measurement (default 3, quick 1)")
	flag.StringVar(&backfill, "backfill", "", "backfill sizes in messages (default 12500,25000,50000, quick 1000,2000,4000)")
	flag.StringVar(&storeRecords, "store-records", "", "store benchmark sizes in records (default 1000000,10000000, quick 100000)")
	flag.Uint64Var(&c.seed, "seed", 1, "seed of the generated corpora")
	var merge string
	flag.StringVar(&merge, "merge", "", "instead of measuring, merge the results.json files given (comma-separated; runs of different sections, e.g. -only parse and -only store) into -out")
	flag.Parse()
	if merge != "" {
		if err := mergeResults(strings.Split(merge, ","), c.out); err != nil {
			fatal(err)
		}
		logf("merged into %s and %s", filepath.Join(c.out, "results.json"), filepath.Join(c.out, "results.md"))
		return
	}

	def := func(v *int, full, quick int) {
		if *v == 0 {
			*v = full
			if c.quick {
				*v = quick
			}
		}
	}
	def(&c.reports, 1000, 100)
	def(&c.reps, 3, 2)
	def(&c.perFile, 100, 30)
	def(&c.imapMessages, 1000, 100)
	def(&c.imapReps, 3, 1)
	var err error
	if c.backfill, err = ints(backfill, "12500,25000,50000", "1000,2000,4000", c.quick); err != nil {
		fatal(fmt.Errorf("-backfill: %w", err))
	}
	if c.storeRecords, err = ints(storeRecords, "1000000,10000000", "100000", c.quick); err != nil {
		fatal(fmt.Errorf("-store-records: %w", err))
	}
	c.only = map[string]bool{}
	for _, s := range strings.Split(only, ",") {
		switch s = strings.TrimSpace(s); s {
		case "parse", "imap", "backfill", "store", "signer":
			c.only[s] = true
		case "":
		default:
			fatal(fmt.Errorf("-only: unknown section %q (parse, imap, backfill, store, signer)", s))
		}
	}
	if _, err := os.Stat("go.mod"); err != nil {
		fatal(fmt.Errorf("run from the module root (go.mod not found): %w", err))
	}
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		fatal(err)
	}
	if c.out, err = filepath.Abs(c.out); err != nil {
		fatal(err)
	}

	res := &Results{Started: time.Now(), Quick: c.quick}
	res.Machine = machine(c.out)
	stopWatch := make(chan struct{})
	watched := watch(10*time.Second, stopWatch)
	start := time.Now()
	save := func() {
		res.Elapsed = time.Since(start).Seconds()
		data, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(filepath.Join(c.out, "results.json"), data, 0o644); err != nil {
			fatal(err)
		}
		if err := os.WriteFile(filepath.Join(c.out, "results.md"), []byte(markdown(res, &c)), 0o644); err != nil {
			fatal(err)
		}
	}
	section := func(name string, f func() error) {
		if !c.only[name] {
			return
		}
		logf("== %s", name)
		res.Quiet = append(res.Quiet, quietCheck("before "+name))
		t := time.Now()
		if err := f(); err != nil {
			res.Skipped = append(res.Skipped, fmt.Sprintf("%s: %v", name, err))
			logf("%s: %v", name, err)
		}
		res.Sections = append(res.Sections, name)
		res.Notes = append(res.Notes, fmt.Sprintf("section %s took %s", name, time.Since(t).Round(time.Second)))
		save()
	}
	dmarcdBin := filepath.Join(c.out, "bin", "dmarcd")
	if c.only["imap"] || c.only["backfill"] {
		logf("building %s", dmarcdBin)
		if _, err := run("go", []string{"build", "-o", dmarcdBin, "./cmd/dmarcd"}, []string{"CGO_ENABLED=0"}, false); err != nil {
			fatal(err)
		}
	}
	section("parse", func() error { return parseSection(&c, res) })
	section("imap", func() error { return imapSection(&c, res, dmarcdBin) })
	section("backfill", func() error { return backfillSection(&c, res, dmarcdBin) })
	section("store", func() error { return storeSection(&c, res) })
	section("signer", func() error { return signerSection(&c, res) })
	res.Quiet = append(res.Quiet, quietCheck("end"))
	close(stopWatch)
	res.Quiet = append(res.Quiet, <-watched)
	save()
	md, _ := os.ReadFile(filepath.Join(c.out, "results.md"))
	os.Stdout.Write(md)
	logf("results in %s and %s (%s)", filepath.Join(c.out, "results.json"), filepath.Join(c.out, "results.md"), time.Since(start).Round(time.Second))
}

func ints(s, full, quick string, isQuick bool) ([]int, error) {
	if s == "" {
		s = full
		if isQuick {
			s = quick
		}
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q: want positive numbers", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}
