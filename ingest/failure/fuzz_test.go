package failure

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/dmarcd/dmarcd/internal/corpus"
)

// FuzzParse checks that no input makes Parse or IsFailureReport panic, and
// that what Parse returns keeps its promises.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.eml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		f.Add(readTestdata(f, filepath.Base(file)))
	}
	// The shared corpus seeds too, where it is (corpus.Dir would skip the
	// whole target without it).
	dir := os.Getenv("DMARC_CORPUS")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "corpus")
	}
	if _, err := os.Stat(filepath.Join(dir, "MANIFEST.tsv")); err == nil {
		for _, file := range corpus.Files(f, "forensic") {
			f.Add(corpus.Read(f, file))
		}
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		isReport := IsFailureReport(msg)
		r, err := Parse(msg, Options{KeepBody: true})
		if err != nil {
			if r != nil {
				t.Fatalf("report and error %v", err)
			}
			return
		}
		if !isReport {
			// Parse accepts only what IsFailureReport routes to it.
			t.Errorf("Parse accepted a message IsFailureReport rejects")
		}
		seen := map[string]bool{}
		for _, c := range r.Tolerations {
			if seen[c] {
				t.Errorf("toleration %q twice in %q", c, r.Tolerations)
			}
			seen[c] = true
		}
		if len(r.OriginalHeaders) > MaxOriginalHeaderBytes {
			t.Errorf("OriginalHeaders of %d bytes", len(r.OriginalHeaders))
		}
		if len(r.Fields) > MaxFeedbackFields {
			t.Errorf("%d fields", len(r.Fields))
		}
		// Every string but the header block as received is UTF-8.
		v := reflect.ValueOf(r).Elem()
		for i := range v.NumField() {
			name := v.Type().Field(i).Name
			if fv := v.Field(i); fv.Kind() == reflect.String && name != "OriginalHeaders" && !utf8.ValidString(fv.String()) {
				t.Errorf("%s is not UTF-8: %q", name, fv.String())
			}
		}
		for _, fl := range r.Fields {
			if !utf8.ValidString(fl.Name) || !utf8.ValidString(fl.Value) {
				t.Errorf("field %q is not UTF-8", fl)
			}
		}
	})
}
