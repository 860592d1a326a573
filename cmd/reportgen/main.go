// Command reportgen writes a reproducible corpus of realistic DMARC reports
// (aggregate reports in mail, zip, gzip and XML; failure reports) into a
// folder, for demonstrations, tests and benchmarks.
//
//	reportgen -out samples -seed 1 -days 7 -domains example.com,news.example.com
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dmarcd/dmarcd/internal/reportgen"
)

func main() {
	out := flag.String("out", "samples", "folder to write into (created)")
	seed := flag.Uint64("seed", 1, "random seed: the same seed writes the same files")
	days := flag.Int("days", 7, "days of reports")
	start := flag.String("start", "2026-11-01", "first day (YYYY-MM-DD, UTC)")
	domains := flag.String("domains", "example.com,news.example.com", "comma-separated policy domains")
	volume := flag.Int("messages", 1000, "mean messages per domain per day at the largest reporter")
	sources := flag.Int("sources", 12, "source IPs per domain")
	failures := flag.Int("failures", 3, "failure reports to write")
	sizes := flag.String("sizes", "sources", "records per aggregate report: sources (one per source that sent that day) or realistic (1 to 5,000, about 60 on average: reportgen.RealisticSizes)")
	legacy := flag.Bool("legacy", false, "write every report without the RFC 9990 namespace, for tools that predate it")
	tls := flag.Bool("tls", false, "also write the SMTP TLS reports (RFC 8460) of each day and domain from Google and Microsoft")
	failureKinds := flag.String("failure-kinds", "headers", "failure reports: headers (header only, SPF failed) or mix (headers, whole message, DKIM and SPF failures)")
	flag.Parse()

	day, err := time.Parse("2006-01-02", *start)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reportgen: -start:", err)
		os.Exit(2)
	}
	opt := reportgen.Options{
		Seed: *seed, Domains: strings.Split(*domains, ","), Start: day, Days: *days,
		MessagesPerDay: *volume, Sources: *sources, FailureReports: *failures, Legacy: *legacy, TLSReports: *tls,
	}
	switch *sizes {
	case "sources":
	case "realistic":
		opt.Sizes = reportgen.RealisticSizes
	default:
		fmt.Fprintf(os.Stderr, "reportgen: -sizes %q: want sources or realistic\n", *sizes)
		os.Exit(2)
	}
	switch *failureKinds {
	case "headers":
	case "mix":
		opt.FailureKinds = reportgen.FailureMix
	default:
		fmt.Fprintf(os.Stderr, "reportgen: -failure-kinds %q: want headers or mix\n", *failureKinds)
		os.Exit(2)
	}
	g := reportgen.New(opt)
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "reportgen:", err)
		os.Exit(1)
	}
	var records int
	files := g.Files()
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(*out, f.Name), f.Data, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "reportgen:", err)
			os.Exit(1)
		}
		records += f.Records
	}
	fmt.Printf("wrote %d files (%d records) into %s\n", len(files), records, *out)
}
