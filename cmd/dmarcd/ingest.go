package main

import (
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/dmarcd/dmarcd/analyze"
	"github.com/dmarcd/dmarcd/ingest"
	"github.com/dmarcd/dmarcd/schema"
)

// progressInterval is how often a long ingest prints where it is.
const progressInterval = 2 * time.Second

type ingestCmd struct {
	Paths []string `arg:"" help:"Files, folders (read recursively; Maildir folders too), mbox files (each message read as an input) or - for standard input." placeholder:"PATH"`
	Quiet bool     `help:"Print no progress and no compliance table, only the summary."`
}

func (c *ingestCmd) Run(e *env) error {
	inputs, skipped, err := ingest.ExpandWith(c.Paths, ingest.ExpandOptions{Exclude: storeFiles(e.cfg.Store)})
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	unreadable := 0
	for _, s := range skipped {
		if s.Unreadable {
			unreadable++
			e.log.Error("cannot read: left out", "path", s.Path, "err", s.Reason)
		} else {
			e.log.Info("left out", "path", s.Path, "why", s.Reason)
		}
	}
	st, err := e.openStore()
	if err != nil {
		return err
	}
	defer st.Close()
	in := ingest.New(st, withLogger(e.cfg.Ingest.options(), e.log))

	last := time.Now() // the first line comes after progressInterval
	progress := func(s ingest.Summary) {
		if c.Quiet || s.Total < 2 || time.Since(last) < progressInterval {
			return
		}
		last = time.Now()
		printProgress(e.stderr, s)
	}
	sum, runErr := in.Files(e.ctx, inputs, progress)
	printSummary(e.stdout, e.cfg.Store, sum)
	if runErr != nil {
		return runErr
	}
	if !c.Quiet && sum.Aggregate > 0 {
		domains, err := analyze.Domains(e.ctx, st)
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stdout)
		printCompliance(e.stdout, domains)
	}
	if unreadable > 0 {
		return fmt.Errorf("%d files or folders could not be read (see the log above); the rest was ingested", unreadable)
	}
	if sum.Quarantined > 0 {
		return &exitError{code: exitQuarantined}
	}
	return nil
}

// storeFiles are the files of a SQLite store, which an ingest of the
// folder holding it must not read as reports.
func storeFiles(dsn string) []string {
	if dsn == "" {
		dsn = schema.DefaultDSN
	}
	if strings.Contains(dsn, "://") && !strings.HasPrefix(dsn, "sqlite:") {
		return nil
	}
	path := strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite:"), "//")
	return []string{path, path + "-wal", path + "-shm", path + "-journal"}
}

func printProgress(w io.Writer, s ingest.Summary) {
	rate := float64(s.Inputs) / s.Elapsed.Seconds()
	eta := ""
	if rate > 0 && s.Total > s.Inputs {
		eta = ", about " + (time.Duration(float64(s.Total-s.Inputs)/rate) * time.Second).Round(time.Second).String() + " left"
	}
	fmt.Fprintf(w, "ingest: %d/%d inputs (%.0f%%), %d reports stored, %d duplicates, %d quarantined, %.0f inputs/s%s\n",
		s.Inputs, s.Total, 100*float64(s.Inputs)/float64(s.Total), s.Aggregate+s.Failure+s.TLS, s.Duplicates, s.Quarantined, rate, eta)
}

func printSummary(w io.Writer, store string, s ingest.Summary) {
	fmt.Fprintf(w, "%d inputs read in %s into %s\n", s.Inputs, s.Elapsed.Round(time.Millisecond), store)
	fmt.Fprintf(w, "  aggregate reports stored  %d (%d records)\n", s.Aggregate, s.Records)
	fmt.Fprintf(w, "  failure reports stored    %d\n", s.Failure)
	fmt.Fprintf(w, "  TLS reports stored        %d\n", s.TLS)
	fmt.Fprintf(w, "  duplicates (not stored)   %d\n", s.Duplicates)
	if s.Skipped > 0 {
		fmt.Fprintf(w, "  skipped (not kept)        %d\n", s.Skipped)
	}
	fmt.Fprintf(w, "  quarantined               %d\n", s.Quarantined)
	reasons := make([]string, 0, len(s.Reasons))
	for r := range s.Reasons {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	for _, r := range reasons {
		fmt.Fprintf(w, "    %dx %s\n", s.Reasons[r], r)
	}
	if s.Quarantined > 0 {
		fmt.Fprintln(w, "  quarantined input is kept with its reason: dmarcd query 'SELECT * FROM quarantined'")
	}
}

func withLogger(o ingest.Options, log *slog.Logger) ingest.Options {
	o.Logger = log
	return o
}
