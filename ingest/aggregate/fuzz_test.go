package aggregate

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/internal/corpus"
)

// corpusPresent says whether the shared corpus is there, without skipping
// the caller as corpus.Dir does: the fuzz target runs without it.
func corpusPresent() bool {
	dir := os.Getenv("DMARC_CORPUS")
	if dir == "" {
		_, file, _, _ := runtime.Caller(0)
		// ingest/aggregate -> checkout root -> ../shared/corpus
		dir = filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "corpus")
	}
	_, err := os.Stat(filepath.Join(dir, "EXPECTED.tsv"))
	return err == nil
}

// maxSeedBytes is the most of a corpus file used as a seed.
const maxSeedBytes = 32 << 10

// FuzzDecode checks that no input makes the decoder panic, that what it
// accepts is a report with the required parts, and that the result does not
// depend on how the input is cut into reads. Memory is bounded by the
// limits: a fuzz input that would need more gives an error.
func FuzzDecode(f *testing.F) {
	if corpusPresent() {
		for _, file := range corpus.Files(f, "aggregate", "aggregate-dmarcbis", "malformed", "non-report") {
			if ext := filepath.Ext(file); ext == ".xml" || ext == ".txt" {
				data := corpus.Read(f, file)
				// The large report is cut (a truncated report is a
				// seed worth having): mutating and minimizing a
				// megabyte input makes the fuzzer crawl.
				f.Add(data[:min(len(data), maxSeedBytes)])
			}
		}
	}
	testdata, err := filepath.Glob(filepath.Join("testdata", "*.xml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range testdata {
		f.Add(readTestdata(f, filepath.Base(file)))
	}
	f.Add([]byte(report(record("192.0.2.1", 1))))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, records, err := Parse(bytes.NewReader(data))
		r1, records1, err1 := Parse(&oneByteReader{bytes.NewReader(data)})
		if (err == nil) != (err1 == nil) || err != nil && err.Error() != err1.Error() {
			t.Fatalf("errors differ with one-byte reads: %v, %v", err, err1)
		}
		if err != nil {
			if !strings.HasPrefix(err.Error(), "parsing aggregate report: ") {
				t.Errorf("error without context: %v", err)
			}
			return
		}
		if !reflect.DeepEqual(r, r1) || !reflect.DeepEqual(records, records1) {
			t.Fatalf("results differ with one-byte reads:\n%+v\n%+v", r, r1)
		}
		checkInvariants(t, r, records)
	})
}

func checkInvariants(t *testing.T, r *dmarcd.AggregateReport, records []dmarcd.Record) {
	t.Helper()
	if r.Metadata.ReportID == "" || r.Reporter() == "" || r.Policy.Domain == "" {
		t.Errorf("report without id, reporter or domain: %+v", r)
	}
	if r.RecordCount != int64(len(records)) {
		t.Errorf("RecordCount %d, %d records", r.RecordCount, len(records))
	}
	var sum int64
	for _, rec := range records {
		if rec.Count < 0 {
			t.Errorf("negative count %d", rec.Count)
		}
		sum += rec.Count
	}
	if sum != r.MessageCount {
		t.Errorf("MessageCount %d, counts sum to %d", r.MessageCount, sum)
	}
	if len(r.Tolerations) > MaxTolerations+1 {
		t.Errorf("%d tolerations", len(r.Tolerations))
	}
	for _, v := range []string{r.Policy.P, r.Policy.SP, r.Policy.NP, r.Policy.ADKIM, r.Policy.ASPF, r.Policy.Testing} {
		if v != strings.ToLower(v) {
			t.Errorf("value %q not in lower case", v)
		}
	}
	if r.Policy.Pct < dmarcd.PctAbsent || r.Policy.Pct > 100 {
		t.Errorf("pct %d", r.Policy.Pct)
	}
}
