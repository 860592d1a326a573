// Package corpus finds the shared corpus of real DMARC reports that the tests
// read in place (../shared/corpus beside the checkout, or $DMARC_CORPUS) and
// reads its EXPECTED*.tsv tables. It is for tests only.
package corpus

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// Dir returns the corpus folder. Where it is absent the test is skipped with
// a clear message, or fails when CI=true, so that CI never passes by skipping.
func Dir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("DMARC_CORPUS")
	if dir == "" {
		_, file, _, _ := runtime.Caller(0)
		// internal/corpus/corpus.go -> checkout root -> ../shared/corpus
		root := filepath.Dir(filepath.Dir(filepath.Dir(file)))
		dir = filepath.Join(root, "..", "shared", "corpus")
	}
	if _, err := os.Stat(filepath.Join(dir, "EXPECTED.tsv")); err != nil {
		Missing(t, "report corpus not found at %s (set DMARC_CORPUS): %v", dir, err)
	}
	return dir
}

// Missing skips the test with the reason, or fails it when CI=true.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and a required test input is missing: "+format, args...)
	}
	t.Skipf(format, args...)
}

// Row is one row of an EXPECTED*.tsv table, by column name.
type Row map[string]string

// Table reads one of the corpus's unquoted TSV tables (EXPECTED.tsv,
// EXPECTED_FORENSIC.tsv, MANIFEST.tsv). The escapes \t, \r, \n and \\ in
// values are decoded.
func Table(t testing.TB, name string) []Row {
	t.Helper()
	f, err := os.Open(filepath.Join(Dir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	var header []string
	var rows []Row
	for sc.Scan() {
		cells := strings.Split(sc.Text(), "\t")
		if header == nil {
			header = cells
			continue
		}
		if len(cells) != len(header) {
			t.Fatalf("%s: row has %d cells, header %d: %q", name, len(cells), len(header), sc.Text())
		}
		row := make(Row, len(cells))
		for i, c := range cells {
			row[header[i]] = unescape(c)
		}
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

var unescaper = strings.NewReplacer(`\t`, "\t", `\r`, "\r", `\n`, "\n", `\\`, `\`)

func unescape(s string) string { return unescaper.Replace(s) }

// Files lists the corpus files of the given MANIFEST kinds (aggregate,
// aggregate-dmarcbis, forensic, malformed, non-report, tls-rpt, ...), as
// paths relative to the corpus folder. No kind lists every file.
func Files(t testing.TB, kinds ...string) []string {
	t.Helper()
	var out []string
	for _, r := range Table(t, "MANIFEST.tsv") {
		if len(kinds) == 0 || slices.Contains(kinds, r["kind"]) {
			out = append(out, r["file"])
		}
	}
	return out
}

// Reports lists, as absolute paths, the corpus files that are reports or
// mail of any kind, malformed ones included: every file of MANIFEST.tsv
// but the corpus's own schemas and expected JSON.
func Reports(t testing.TB) []string {
	t.Helper()
	dir := Dir(t)
	var out []string
	for _, r := range Table(t, "MANIFEST.tsv") {
		switch r["kind"] {
		case "schema", "expected-json":
			continue
		}
		out = append(out, filepath.Join(dir, filepath.FromSlash(r["file"])))
	}
	return out
}

// Path returns the absolute path of a corpus file.
func Path(t testing.TB, rel string) string {
	return filepath.Join(Dir(t), filepath.FromSlash(rel))
}

// Read returns a corpus file's bytes.
func Read(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(Path(t, rel))
	if err != nil {
		t.Fatal(fmt.Errorf("reading corpus file: %w", err))
	}
	return b
}
