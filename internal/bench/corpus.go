package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/dmarcd/dmarcd/internal/reportgen"
)

// forms are the containers the parse corpus holds each report in, with
// their folder and file name ending.
var forms = []struct{ name, ext string }{
	{"xml", ".xml"},
	{"xml.gz", ".xml.gz"},
	{"zip", ".zip"},
	{"eml", ".eml"},
}

// corpusStart is the first day of the generated reports.
var corpusStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// corpusDomains is the number of policy domains of the corpora.
const corpusDomains = 20

func domains() []string {
	out := make([]string, corpusDomains)
	for i := range out {
		out[i] = fmt.Sprintf("domain%02d.example", i)
	}
	return out
}

// parseCorpus is the parse corpus: n reports, each in every form, in
// dir/FORM/, in generation order. Reports are those of reportgen with
// RealisticSizes, in the dialect of before RFC 9990 (Legacy), which every
// peer reads: Mail::DMARC finds no record in a report in the dmarc-2.0
// namespace.
type parseCorpus struct {
	dir     string
	files   map[string][]string // form -> paths in order
	records []int64             // records of report i
	xml     []int64             // XML bytes of report i
}

func makeParseCorpus(dir string, n int, seed uint64) (*parseCorpus, error) {
	pc := &parseCorpus{dir: dir, files: map[string][]string{}}
	for _, f := range forms {
		if err := os.MkdirAll(filepath.Join(dir, f.name), 0o755); err != nil {
			return nil, err
		}
	}
	g := reportgen.New(reportgen.Options{Seed: seed, Domains: domains(), Sizes: reportgen.RealisticSizes, Legacy: true})
	doms := domains()
	reps := reportgen.Reporters
	for i := range n {
		rep := reps[i%len(reps)]
		domain := doms[(i/len(reps))%len(doms)]
		day := corpusStart.AddDate(0, 0, i/(len(reps)*len(doms)))
		files := g.Forms(rep, domain, day, 2000)
		for j, f := range files {
			path := filepath.Join(dir, forms[j].name, f.Name)
			if err := os.WriteFile(path, f.Data, 0o644); err != nil {
				return nil, err
			}
			pc.files[forms[j].name] = append(pc.files[forms[j].name], path)
		}
		pc.records = append(pc.records, int64(files[0].Records))
		pc.xml = append(pc.xml, int64(len(files[0].Data)))
	}
	return pc, nil
}

// first returns the first n files of a form and the records they hold.
func (pc *parseCorpus) first(form string, n int) ([]string, int64) {
	var recs int64
	for _, r := range pc.records[:n] {
		recs += r
	}
	return pc.files[form][:n], recs
}

// makeBigReport writes one report of records records in every form into
// dir/big/, for the parsers' speed without any per-file cost.
func makeBigReport(dir string, records int, seed uint64) (map[string]string, error) {
	d := filepath.Join(dir, "big")
	if err := os.MkdirAll(d, 0o755); err != nil {
		return nil, err
	}
	g := reportgen.New(reportgen.Options{Seed: seed + 1, Domains: []string{"big.example"},
		Sizes: []reportgen.Size{{Min: records, Max: records, Weight: 1}}, Legacy: true})
	out := map[string]string{}
	for j, f := range g.Forms(reportgen.Reporters[0], "big.example", corpusStart, 100*records) {
		if f.Records != records {
			return nil, fmt.Errorf("big report: %d records, want %d", f.Records, records)
		}
		path := filepath.Join(d, f.Name)
		if err := os.WriteFile(path, f.Data, 0o644); err != nil {
			return nil, err
		}
		out[forms[j].name] = path
	}
	return out, nil
}

// genMail is one generated report mail.
type genMail struct {
	path    string
	records int64 // of its aggregate report; 0 for a failure report
	failure bool
}

// mails is a mailbox of generated report mails.
type mails []genMail

// counts returns the reports and records of the first n mails.
func (ms mails) counts(n int) (reports int, records int64) {
	for _, m := range ms[:n] {
		reports++
		records += m.records
	}
	return reports, records
}

func (ms mails) paths(n int) []string {
	out := make([]string, n)
	for i, m := range ms[:n] {
		out[i] = m.path
	}
	return out
}

// mailbox writes n report mails into dir, as a mailbox of reports holds
// them: aggregate reports (RealisticSizes, every reporter's dialect and
// container, RFC 9990 namespaces included), and every 20th a failure
// report of reportgen.FailureMix.
func mailbox(dir string, n int, seed uint64) (mails, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	g := reportgen.New(reportgen.Options{Seed: seed, Domains: domains(), Sizes: reportgen.RealisticSizes, FailureKinds: reportgen.FailureMix})
	doms := domains()
	reps := reportgen.Reporters
	a := 0
	var out mails
	for i := range n {
		var f reportgen.File
		if i%20 == 19 {
			f = g.Failure(doms[i%len(doms)], corpusStart.Add(time.Duration(i)*time.Minute))
		} else {
			rep := reps[a%len(reps)]
			domain := doms[(a/len(reps))%len(doms)]
			day := corpusStart.AddDate(0, 0, a/(len(reps)*len(doms)))
			f = g.AggregateMail(rep, domain, day, 2000)
			a++
		}
		// A sequence number keeps the order of generation and names unique.
		path := filepath.Join(dir, fmt.Sprintf("%06d-%s", i, f.Name))
		if err := os.WriteFile(path, f.Data, 0o644); err != nil {
			return nil, err
		}
		out = append(out, genMail{path: path, records: int64(f.Records), failure: i%20 == 19})
	}
	return out, nil
}
