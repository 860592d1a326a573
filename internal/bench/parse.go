package main

import (
	"embed"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
)

//go:embed perl/*.pl
var perlScripts embed.FS

// tool is a parser the harness runs as a process.
type tool struct {
	name string
	// forms it reads; nil for all.
	forms map[string]bool
	// batch says whether one process reads many files; dmarc-cat reads
	// one file per process.
	batch bool
	// argv returns the command line over files.
	argv func(files []string) []string
	// counts reads what a run parsed.
	counts func(p proc, files []string) (counts, error)
}

func (t *tool) reads(form string) bool { return t.forms == nil || t.forms[form] }

// jsonCounts reads the line of JSON the harness's children and Perl
// scripts print on standard error.
func jsonCounts(p proc, _ []string) (counts, error) {
	var c counts
	err := lastJSON(p.stderr, &c)
	return c, err
}

var dmarcCatReports = regexp.MustCompile(`(?m)^Reports\((\d+)\):`)

// tools returns the parsers found on this machine, and what is missing.
func tools(work string) (ts []*tool, missing []string, err error) {
	self, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	for _, mode := range []string{"parse", "floor"} {
		name := "dmarcd"
		if mode == "floor" {
			name = "floor"
		}
		ts = append(ts, &tool{name: name, batch: true, counts: jsonCounts,
			argv: func(files []string) []string { return append([]string{self, "-child", mode}, files...) }})
	}
	if path, err := exec.LookPath("dmarc-cat"); err != nil {
		missing = append(missing, "dmarc-cat (apt-get install dmarc-cat)")
	} else {
		ts = append(ts, &tool{name: "dmarc-cat", forms: map[string]bool{"xml": true, "xml.gz": true, "zip": true},
			// -N: no reverse DNS of each source; -j 1: one worker, as
			// every other parser here.
			argv: func(files []string) []string { return append([]string{path, "-N", "-j", "1"}, files...) },
			counts: func(p proc, files []string) (counts, error) {
				var c counts
				for _, m := range dmarcCatReports.FindAllSubmatch(p.stdout, -1) {
					n, _ := strconv.Atoi(string(m[1]))
					c.Reports++
					c.Records += int64(n)
				}
				for _, f := range files {
					if fi, err := os.Stat(f); err == nil {
						c.InputBytes += fi.Size()
					}
				}
				return c, nil
			}})
	}
	scripts := filepath.Join(work, "perl")
	if err := os.MkdirAll(scripts, 0o755); err != nil {
		return nil, nil, err
	}
	for _, p := range []struct{ name, script, check, pkg string }{
		{"Mail::DMARC", "mail-dmarc.pl", "use Mail::DMARC::Report::Receive", "libmail-dmarc-perl"},
		{"dmarcts-report-parser", "dmarcts.pl", "use XML::Simple; use MIME::Parser; use File::MimeInfo; -e '/usr/sbin/dmarcts-report-parser' or die", "dmarcts-report-parser"},
	} {
		if err := exec.Command("perl", "-e", p.check).Run(); err != nil {
			missing = append(missing, fmt.Sprintf("%s (apt-get install %s)", p.name, p.pkg))
			continue
		}
		data, err := perlScripts.ReadFile("perl/" + p.script)
		if err != nil {
			return nil, nil, err
		}
		path := filepath.Join(scripts, p.script)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return nil, nil, err
		}
		ts = append(ts, &tool{name: p.name, batch: true, counts: jsonCounts,
			argv: func(files []string) []string { return append([]string{"perl", path}, files...) }})
	}
	return ts, missing, nil
}

// measure runs t over files reps times: in one process, or, for a tool
// that reads one file per process (or when perFile), one process per file,
// the run's wall time being their sum. With mem, it also measures peak
// memory (through GNU time): of the one process, or, with a process per
// file, of one more run over the largest file, kept out of the timing.
func measure(t *tool, files []string, reps int, perFile, mem bool) ([]Run, counts, error) {
	var runs []Run
	var last counts
	for range reps {
		if t.batch && !perFile {
			argv := t.argv(files)
			p, err := runMem(argv[0], argv[1:], nil, t.name != "dmarc-cat", mem)
			if err != nil {
				return runs, last, err
			}
			c, err := t.counts(p, files)
			if err != nil {
				return runs, last, fmt.Errorf("%s: %w", t.name, err)
			}
			p.Inner = c.Seconds
			runs = append(runs, p.Run)
			last = c
			continue
		}
		var sum Run
		var total counts
		for _, f := range files {
			argv := t.argv([]string{f})
			p, err := run(argv[0], argv[1:], nil, t.name != "dmarc-cat")
			if err != nil {
				return runs, last, err
			}
			c, err := t.counts(p, []string{f})
			if err != nil {
				return runs, last, fmt.Errorf("%s: %w", t.name, err)
			}
			sum.Wall += p.Wall
			sum.Inner += c.Seconds
			total.Reports += c.Reports
			total.Records += c.Records
			total.XMLBytes += c.XMLBytes
			total.InputBytes += c.InputBytes
		}
		runs = append(runs, sum)
		last = total
	}
	if mem && len(runs) > 0 && len(files) > 0 && (!t.batch || perFile) {
		largest, size := "", int64(-1)
		for _, f := range files {
			if n := sizes(f); n > size {
				largest, size = f, n
			}
		}
		argv := t.argv([]string{largest})
		p, err := runMem(argv[0], argv[1:], nil, true, true)
		if err != nil {
			return runs, last, err
		}
		for i := range runs {
			runs[i].MaxRSS = p.MaxRSS
		}
	}
	return runs, last, nil
}

// warm reads every file once, so that every parser finds them in the page
// cache.
func warm(paths ...string) {
	for _, p := range paths {
		if f, err := os.Open(p); err == nil {
			io.Copy(io.Discard, f)
			f.Close()
		}
	}
}

func parseSection(c *config, res *Results) error {
	work := filepath.Join(c.out, "parse")
	os.RemoveAll(work)
	ts, missing, err := tools(work)
	if err != nil {
		return err
	}
	for _, m := range missing {
		res.Skipped = append(res.Skipped, "parse: not installed, not measured: "+m)
	}
	scales := []int{1, 2, 4}
	logf("generating the parse corpus: %d reports in %d forms", scales[len(scales)-1]*c.reports, len(forms))
	t0 := time.Now()
	pc, err := makeParseCorpus(filepath.Join(work, "corpus"), scales[len(scales)-1]*c.reports, c.seed)
	if err != nil {
		return err
	}
	_, recs1x := pc.first("xml", c.reports)
	big, err := makeBigReport(work, int(recs1x), c.seed)
	if err != nil {
		return err
	}
	logf("corpus written in %s", time.Since(t0).Round(time.Millisecond))
	for _, f := range pc.files {
		warm(f...)
	}
	for _, f := range big {
		warm(f)
	}
	add := func(m Measure, runs []Run, got counts, err error) {
		m.Runs = runs
		m.Reports, m.Records, m.XMLBytes, m.InputBytes = got.Reports, got.Records, got.XMLBytes, got.InputBytes
		if err != nil {
			m.Note = "failed: " + first(err.Error())
			logf("%s %s %s: %v", m.Group, m.Tool, m.Form, err)
		}
		// Bytes are those of the corpus, the same for every parser.
		m.InputBytes = sizes(pathsOf(m, pc, big)...)
		switch m.Group {
		case "batch", "per-file":
			m.XMLBytes = pc.xmlBytes(m.Files)
		case "big":
			m.XMLBytes = sizes(big["xml"])
		}
		lo, med := minMedian(walls(runs))
		logf("%-8s %-22s %-6s x%d: %d reports, %d/%d records, min %.3fs median %.3fs, max RSS %d MB",
			m.Group, m.Tool, m.Form, m.Scale, m.Reports, m.Records, m.Expected, lo, med, maxRSS(runs)>>20)
		res.Parse = append(res.Parse, m)
	}

	// All reports at 1x in every form: one process each, reps times,
	// the parsers taking turns in each repetition so that a change of load
	// touches all of them alike.
	type key struct{ tool, form string }
	runs := map[key][]Run{}
	got := map[key]counts{}
	errs := map[key]error{}
	for rep := range c.reps {
		for _, f := range forms {
			files, _ := pc.first(f.name, c.reports)
			for _, t := range ts {
				k := key{t.name, f.name}
				if !t.reads(f.name) || errs[k] != nil {
					continue
				}
				r, cn, err := measure(t, files, 1, false, true)
				runs[k] = append(runs[k], r...)
				got[k], errs[k] = cn, err
			}
		}
		logf("parse at 1x: repetition %d of %d done", rep+1, c.reps)
	}
	for _, f := range forms {
		files, exp := pc.first(f.name, c.reports)
		for _, t := range ts {
			k := key{t.name, f.name}
			if !t.reads(f.name) {
				continue
			}
			add(Measure{Group: "batch", Tool: t.name, Form: f.name, Scale: 1, Files: len(files), Expected: exp}, runs[k], got[k], errs[k])
		}
	}

	// How time and memory grow with the reports: 2x and 4x, as .xml.gz
	// (read by every parser) and .eml.
	for _, scale := range scales[1:] {
		for _, form := range []string{"xml.gz", "eml"} {
			files, exp := pc.first(form, scale*c.reports)
			for _, t := range ts {
				if !t.reads(form) {
					continue
				}
				r, cn, err := measure(t, files, min(2, c.reps), false, true)
				add(Measure{Group: "batch", Tool: t.name, Form: form, Scale: scale, Files: len(files), Expected: exp}, r, cn, err)
			}
		}
	}

	// What a process per file costs: the first perFile reports as
	// .xml.gz, one process each; and each parser started over no file.
	n := min(c.perFile, c.reports)
	files, exp := pc.first("xml.gz", n)
	for _, t := range ts {
		r, cn, err := measure(t, files, 1, true, false)
		add(Measure{Group: "per-file", Tool: t.name, Form: "xml.gz", Files: len(files), Expected: exp}, r, cn, err)
		if t.batch {
			r, cn, err := measure(t, nil, c.reps, false, false)
			add(Measure{Group: "start-up", Tool: t.name}, r, cn, err)
		}
	}

	// One report holding as many records as the 1x corpus: the parsers'
	// speed without any cost per file or per report.
	for _, form := range []string{"xml", "xml.gz"} {
		for _, t := range ts {
			if !t.reads(form) {
				continue
			}
			r, cn, err := measure(t, []string{big[form]}, c.reps, false, true)
			add(Measure{Group: "big", Tool: t.name, Form: form, Files: 1, Expected: recs1x}, r, cn, err)
		}
	}
	return os.RemoveAll(work)
}

// pathsOf returns the files a measure read, for its input size.
func pathsOf(m Measure, pc *parseCorpus, big map[string]string) []string {
	switch m.Group {
	case "batch", "per-file":
		files, _ := pc.first(m.Form, m.Files)
		return files
	case "big":
		return []string{big[m.Form]}
	}
	return nil
}

func sizes(paths ...string) int64 {
	var n int64
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// xmlBytes is the decompressed XML of the first n reports of the corpus.
func (pc *parseCorpus) xmlBytes(n int) int64 {
	var s int64
	for _, x := range pc.xml[:n] {
		s += x
	}
	return s
}
