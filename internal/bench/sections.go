package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// backfillSection times `dmarcd ingest` of a folder of generated report
// mails into a fresh SQLite store, and its peak memory, at each size.
func backfillSection(c *config, res *Results, dmarcd string) error {
	work := filepath.Join(c.out, "backfill")
	os.RemoveAll(work)
	n := 0
	for _, s := range c.backfill {
		n = max(n, s)
	}
	logf("generating %d report mails", n)
	t0 := time.Now()
	box, err := mailbox(filepath.Join(work, "mails"), n, c.seed+20)
	if err != nil {
		return err
	}
	logf("mails written in %s", time.Since(t0).Round(time.Millisecond))
	reps := 2
	if c.quick {
		reps = 3
	}
	for _, size := range c.backfill {
		// A folder of the first size mails (hard links).
		dir := filepath.Join(work, fmt.Sprintf("folder-%d", size))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		for _, p := range box.paths(size) {
			if err := os.Link(p, filepath.Join(dir, filepath.Base(p))); err != nil {
				return err
			}
		}
		warm(box.paths(size)...)
		m := Measure{Group: "backfill", Tool: "dmarcd ingest", Files: size, InputBytes: sizes(box.paths(size)...)}
		_, m.Expected = box.counts(size)
		for range reps {
			store := filepath.Join(work, fmt.Sprintf("store-%d.db", size))
			for _, suffix := range []string{"", "-wal", "-shm"} {
				os.Remove(store + suffix)
			}
			p, err := runMem(dmarcd, []string{"--store", store, "--log-level", "warn", "ingest", "--quiet", dir}, nil, false, true)
			if err != nil {
				return err
			}
			m.Runs = append(m.Runs, p.Run)
			m.Reports = int(atoi(storedAgg, p.stdout, 1) + atoi(storedFail, p.stdout, 1))
			m.Records = atoi(storedAgg, p.stdout, 2)
			if got := atoi(inputsRead, p.stdout, 1); got != int64(size) {
				return fmt.Errorf("dmarcd ingest read %d inputs of %d:\n%s", got, size, p.stdout)
			}
			m.Note = fmt.Sprintf("store file %d MB", sizes(store, store+"-wal")>>20)
			for _, suffix := range []string{"", "-wal", "-shm"} {
				os.Remove(store + suffix)
			}
		}
		lo, med := minMedian(walls(m.Runs))
		logf("backfill %d messages: %d reports, %d records, min %.1fs median %.1fs (%.0f messages/s), max RSS %d MB",
			size, m.Reports, m.Records, lo, med, float64(size)/med, maxRSS(m.Runs)>>20)
		res.Backfill = append(res.Backfill, m)
		os.RemoveAll(dir)
	}
	os.RemoveAll(work)
	return nil
}

// GoBench is one line of `go test -bench` output.
type GoBench struct {
	Name    string             `json:"name"`
	N       int64              `json:"n"`
	Metrics map[string]float64 `json:"metrics"` // unit -> value (ns/op, records/s, msgs/s, ...)
}

// StoreRun is one run of schema/conformance's benchmarks at a size.
type StoreRun struct {
	// Writers: a run of BenchmarkWrite (the writers beside their engines'
	// own inserts of the same rows).
	Writers    bool      `json:"writers,omitempty"`
	Records    int       `json:"records"`
	Command    string    `json:"command"`
	Elapsed    float64   `json:"elapsed_s"`
	Loads      []Load    `json:"loads"`
	Benchmarks []GoBench `json:"benchmarks"`
}

// Load is a store's load logged by BenchmarkQueries.
type Load struct {
	Store   string  `json:"store"`
	Records int64   `json:"records"`
	Seconds float64 `json:"seconds"`
	Rate    float64 `json:"records_per_s"`
}

var (
	benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+(\d+)\s+(.*)$`)
	loadLine  = regexp.MustCompile(`(\w+): loaded (\d+) records in (\S+) \((\d+) records/s\)`)
)

// goBench runs go test -bench and parses its output; the output is also
// kept in the log file.
func goBench(log string, env []string, args ...string) ([]GoBench, []Load, error) {
	p, err := run("go", args, env, false)
	os.WriteFile(log, append(p.stdout, p.stderr...), 0o644)
	if err != nil {
		return nil, nil, err
	}
	out, loads := parseGoBench(p.stdout)
	return out, loads, nil
}

// parseGoBench reads the benchmark lines of go test -bench's output, and
// the loads BenchmarkQueries logs.
func parseGoBench(stdout []byte) ([]GoBench, []Load) {
	var out []GoBench
	var loads []Load
	sc := bufio.NewScanner(bytes.NewReader(stdout))
	for sc.Scan() {
		line := sc.Text()
		if m := loadLine.FindStringSubmatch(line); m != nil {
			recs, _ := strconv.ParseInt(m[2], 10, 64)
			d, _ := time.ParseDuration(m[3])
			rate, _ := strconv.ParseFloat(m[4], 64)
			loads = append(loads, Load{Store: m[1], Records: recs, Seconds: d.Seconds(), Rate: rate})
			continue
		}
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		b := GoBench{Name: m[1], Metrics: map[string]float64{}}
		b.N, _ = strconv.ParseInt(m[2], 10, 64)
		f := strings.Fields(m[3])
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err == nil {
				b.Metrics[f[i+1]] = v
			}
		}
		out = append(out, b)
	}
	return out, loads
}

// storeSection runs schema/conformance's BenchmarkQueries (its load is the
// insert measurement) at each size, and BenchmarkInsertSmallReports once.
func storeSection(c *config, res *Results) error {
	work := filepath.Join(c.out, "store")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	for _, n := range c.storeRecords {
		args := []string{"test", "-v", "-run", "^$", "-bench", "Queries", "-benchtime", "1x", "-timeout", "4h", "./schema/conformance"}
		logf("store at %d records: DMARCD_BENCH_RECORDS=%d go %s", n, n, strings.Join(args, " "))
		t0 := time.Now()
		bs, loads, err := goBench(filepath.Join(work, fmt.Sprintf("queries-%d.txt", n)), []string{fmt.Sprintf("DMARCD_BENCH_RECORDS=%d", n)}, args...)
		if err != nil {
			return err
		}
		res.Store = append(res.Store, StoreRun{Records: n, Command: fmt.Sprintf("DMARCD_BENCH_RECORDS=%d go %s", n, strings.Join(args, " ")),
			Elapsed: time.Since(t0).Seconds(), Loads: loads, Benchmarks: bs})
		for _, l := range loads {
			logf("  %s: %d records loaded in %.1fs (%.0f records/s)", l.Store, l.Records, l.Seconds, l.Rate)
		}
	}
	args := []string{"test", "-run", "^$", "-bench", "InsertSmallReports|InsertFailureReports|InsertTLSReports", "-benchtime", "1x", "-timeout", "1h", "./schema/conformance"}
	logf("small reports, failure reports and TLS reports: go %s", strings.Join(args, " "))
	t0 := time.Now()
	bs, _, err := goBench(filepath.Join(work, "small-reports.txt"), nil, args...)
	if err != nil {
		return err
	}
	res.Store = append(res.Store, StoreRun{Command: "go " + strings.Join(args, " "), Elapsed: time.Since(t0).Seconds(), Benchmarks: bs})
	return writersRun(c, res, work)
}

// writersRun runs BenchmarkWrite: each store's writer and its engine's own
// insert of the same rows, taking turns three times, in one run, so that
// every ratio comes from one run.
func writersRun(c *config, res *Results, work string) error {
	n := c.storeRecords[0]
	args := []string{"test", "-run", "^$", "-bench", "Write", "-benchtime", "3x", "-timeout", "2h", "./schema/conformance"}
	cmd := fmt.Sprintf("DMARCD_BENCH_RECORDS=%d go %s", n, strings.Join(args, " "))
	logf("the writers against their engines: %s", cmd)
	t0 := time.Now()
	bs, _, err := goBench(filepath.Join(work, "writers.txt"), []string{fmt.Sprintf("DMARCD_BENCH_RECORDS=%d", n)}, args...)
	if err != nil {
		return err
	}
	for _, b := range bs {
		logf("  %s: writer %.0f records/s, engine %.0f records/s, %.2f", b.Name, b.Metrics["records/s"], b.Metrics["engine-records/s"], b.Metrics["writer/engine"])
		if v, ok := b.Metrics["engine-rollups-records/s"]; ok {
			logf("  %s: engine with the rollups %.0f records/s, %.2f", b.Name, v, b.Metrics["writer/engine-rollups"])
		}
	}
	res.Store = append(res.Store, StoreRun{Writers: true, Records: n, Command: cmd, Elapsed: time.Since(t0).Seconds(), Benchmarks: bs})
	return nil
}

// signerSection runs signer's benchmarks.
func signerSection(c *config, res *Results) error {
	bt := "3s"
	if c.quick {
		bt = "1s"
	}
	args := []string{"test", "-run", "^$", "-bench", ".", "-benchtime", bt, "-count", "3", "./signer"}
	logf("go %s", strings.Join(args, " "))
	bs, _, err := goBench(filepath.Join(c.out, "signer.txt"), nil, args...)
	res.Signer = bs
	return err
}
