package reportgen

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd/ingest/aggregate"
	"github.com/dmarcd/dmarcd/ingest/failure"
	"github.com/dmarcd/dmarcd/ingest/unpack"
)

// TestSamplesReproducible checks that `make samples` (seed 1,
// cmd/reportgen's defaults and -tls) still writes exactly the files of
// samples/: the options added since leave existing corpora alone when
// unset (the TLS reports come after every other file).
func TestSamplesReproducible(t *testing.T) {
	g := New(Options{Seed: 1, Domains: []string{"example.com", "news.example.com"}, Days: 7,
		MessagesPerDay: 1000, Sources: 12, FailureReports: 3, TLSReports: true})
	files := g.Files()
	dir := filepath.Join("..", "..", "samples")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Skipf("no samples folder: %v", err)
	}
	if len(entries) != len(files) {
		t.Fatalf("%d files generated, samples/ holds %d", len(files), len(entries))
	}
	for _, f := range files {
		want, err := os.ReadFile(filepath.Join(dir, f.Name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(f.Data, want) {
			t.Errorf("%s differs from samples/: regenerate with make samples, or keep the default output unchanged", f.Name)
		}
	}
}

// TestStreamIsFiles checks that Stream yields what Files returns.
func TestStreamIsFiles(t *testing.T) {
	opt := Options{Seed: 5, Days: 3, FailureReports: 4, Sizes: RealisticSizes, FailureKinds: FailureMix}
	a := New(opt).Files()
	var b []File
	New(opt).Stream(func(f File) error { b = append(b, f); return nil })
	if len(a) != len(b) {
		t.Fatalf("Files %d, Stream %d", len(a), len(b))
	}
	for i := range a {
		if a[i].Name != b[i].Name || !bytes.Equal(a[i].Data, b[i].Data) {
			t.Fatalf("file %d differs: %s, %s", i, a[i].Name, b[i].Name)
		}
	}
}

// TestSizes checks that reports drawn from Sizes hold the drawn number of
// records, within the classes, and that dmarcd's decoder reads them all.
func TestSizes(t *testing.T) {
	sizes := []Size{{Min: 1, Max: 3, Weight: 1}, {Min: 200, Max: 200, Weight: 1}}
	g := New(Options{Seed: 2, Sizes: sizes, Legacy: true})
	seen := map[bool]bool{}
	for i := range 40 {
		data, records, _ := g.AggregateXML(Reporters[i%len(Reporters)], "example.com", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), 1000)
		if !(records >= 1 && records <= 3 || records == 200) {
			t.Fatalf("report %d: %d records, outside the classes", i, records)
		}
		seen[records == 200] = true
		if bytes.Contains(data, []byte("dmarc-2.0")) {
			t.Fatalf("Legacy report %d has the RFC 9990 namespace", i)
		}
		_, recs, err := aggregate.Parse(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != records {
			t.Fatalf("report %d: decoder read %d records, generator wrote %d", i, len(recs), records)
		}
	}
	if !seen[true] || !seen[false] {
		t.Errorf("40 reports drew from one class only: %v", seen)
	}
}

// TestForms checks that the four forms of a report hold the same XML.
func TestForms(t *testing.T) {
	g := New(Options{Seed: 3, Sizes: RealisticSizes})
	for _, rep := range Reporters {
		files := g.Forms(rep, "example.com", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), 500)
		if len(files) != 4 {
			t.Fatalf("%d forms", len(files))
		}
		want := files[0].Data
		zr, err := gzip.NewReader(bytes.NewReader(files[1].Data))
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := io.ReadAll(zr); !bytes.Equal(got, want) {
			t.Errorf("%s: gzip holds other XML", files[1].Name)
		}
		z, err := zip.NewReader(bytes.NewReader(files[2].Data), int64(len(files[2].Data)))
		if err != nil {
			t.Fatal(err)
		}
		rc, _ := z.File[0].Open()
		if got, _ := io.ReadAll(rc); !bytes.Equal(got, want) {
			t.Errorf("%s: zip holds other XML", files[2].Name)
		}
		found := 0
		err = unpack.Walk(files[3].Data, func(p *unpack.Payload) error {
			got, _ := io.ReadAll(p.Body)
			if p.Kind != unpack.Aggregate || !bytes.Equal(got, want) {
				t.Errorf("%s: the mail holds other XML (%s)", files[3].Name, p.Kind)
			}
			found++
			return nil
		})
		if err != nil || found != 1 {
			t.Errorf("%s: %d reports, %v", files[3].Name, found, err)
		}
	}
}

// TestFailureKinds checks that every kind of failure report parses, with
// what its kind says.
func TestFailureKinds(t *testing.T) {
	for _, kind := range FailureMix {
		g := New(Options{Seed: 4, FailureKinds: []FailureKind{kind}})
		f := g.Failure("example.com", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		r, err := failure.Parse(f.Data, failure.Options{KeepBody: true})
		if err != nil {
			t.Fatalf("kind %d: %v", kind, err)
		}
		want := map[FailureKind]string{FailureHeaders: "dmarc", FailureMessage: "dmarc", FailureDKIM: "dkim", FailureSPF: "spf"}[kind]
		if !strings.Contains(strings.ToLower(r.AuthFailure), want) {
			t.Errorf("kind %d: Auth-Failure %v, want %s", kind, r.AuthFailure, want)
		}
	}
}
