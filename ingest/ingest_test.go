package ingest

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/internal/corpus"
	"github.com/dmarcd/dmarcd/internal/testserver"
	"github.com/dmarcd/dmarcd/schema/sqlite"
)

func scalar(t testing.TB, s *sqlite.Store, q string) int64 {
	t.Helper()
	var n int64
	rows, err := s.Query(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	rows.Next()
	if err := rows.Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// TestCorpusTwice ingests the whole corpus twice: every report is stored
// once, the second pass stores nothing, and what cannot be parsed is
// quarantined, never dropped.
func TestCorpusTwice(t *testing.T) {
	reports, err := Expand(corpus.Reports(t))
	if err != nil {
		t.Fatal(err)
	}
	s := testserver.SQLite(t)
	in := New(s, Options{})
	first, err := in.Files(context.Background(), reports, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first pass: %+v", first)

	// What the corpus says: the distinct reports of its EXPECTED rows that
	// parse (the same report in .xml, .gz and .zip is one report).
	keys := map[string]bool{}
	var wantMessages int64
	for _, r := range corpus.Table(t, "EXPECTED.tsv") {
		if r["status"] == "malformed" {
			continue
		}
		k := r["org_name"] + "|" + r["email"] + "|" + r["report_id"] + "|" + r["domain"] + "|" + r["begin"] + "|" + r["end"]
		if !keys[k] {
			keys[k] = true
			n, _ := strconv.ParseInt(r["sum_count"], 10, 64)
			wantMessages += n
		}
	}
	if got := scalar(t, s, "SELECT COUNT(*) FROM reports"); got != int64(len(keys)) {
		t.Errorf("reports stored: %d, want %d distinct reports", got, len(keys))
	}
	if got := scalar(t, s, "SELECT SUM(count) FROM records"); got != wantMessages {
		t.Errorf("messages: %d, want %d", got, wantMessages)
	}
	// The two LinkedIn files are one report, with LF and with CRLF.
	forensic := len(corpus.Files(t, "forensic")) - 1
	if got := scalar(t, s, "SELECT COUNT(*) FROM failures"); got != int64(forensic) {
		t.Errorf("failure reports stored: %d, want %d", got, forensic)
	}
	// TLS reports: the distinct reports of EXPECTED_TLSRPT.tsv (the RFC
	// example is there four times), with their session counts.
	tlsKeys := map[string]bool{}
	var wantSessions int64
	for _, r := range corpus.Table(t, "EXPECTED_TLSRPT.tsv") {
		k := r["organization_name"] + "|" + r["report_id"]
		if !tlsKeys[k] {
			tlsKeys[k] = true
			ok, _ := strconv.ParseInt(r["total_success"], 10, 64)
			failed, _ := strconv.ParseInt(r["total_failure"], 10, 64)
			wantSessions += ok + failed
		}
	}
	if first.TLS != len(tlsKeys) || scalar(t, s, "SELECT COUNT(*) FROM tls_reports") != int64(len(tlsKeys)) {
		t.Errorf("TLS reports stored: %d, want %d", first.TLS, len(tlsKeys))
	}
	if got := scalar(t, s, "SELECT SUM(successful_sessions + failed_sessions) FROM tls_policies"); got != wantSessions {
		t.Errorf("TLS sessions: %d, want %d", got, wantSessions)
	}
	if first.Quarantined == 0 {
		t.Error("nothing quarantined: the corpus's malformed files must be")
	}
	if got := scalar(t, s, "SELECT COUNT(*) FROM quarantined"); got != int64(first.Quarantined) {
		t.Errorf("quarantine holds %d, the run quarantined %d", got, first.Quarantined)
	}

	second, err := in.Files(context.Background(), reports, nil)
	if err != nil {
		t.Fatal(err)
	}
	if second.Aggregate != 0 || second.Failure != 0 || second.TLS != 0 {
		t.Errorf("second pass stored %d aggregate, %d failure and %d TLS reports, want none", second.Aggregate, second.Failure, second.TLS)
	}
	if want := first.Aggregate + first.Failure + first.TLS + first.Duplicates; second.Duplicates != want {
		t.Errorf("second pass: %d duplicates, want %d", second.Duplicates, want)
	}
	if got := scalar(t, s, "SELECT COUNT(*) FROM reports"); got != int64(len(keys)) {
		t.Errorf("after the second pass: %d reports", got)
	}
}

// TestSamples ingests the repository's own samples: every file stores.
func TestSamples(t *testing.T) {
	inputs, err := Expand([]string{"../samples"})
	if err != nil {
		t.Fatal(err)
	}
	s := testserver.SQLite(t)
	sum, err := New(s, Options{}).Files(context.Background(), inputs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Quarantined != 0 || sum.Duplicates != 0 || sum.Aggregate+sum.Failure+sum.TLS != len(inputs) || sum.TLS == 0 {
		t.Fatalf("samples: %+v", sum)
	}
}

func TestMaildirAndStdin(t *testing.T) {
	dir := t.TempDir()
	md := filepath.Join(dir, "Maildir")
	for _, sub := range []string{"cur", "new", "tmp"} {
		os.MkdirAll(filepath.Join(md, sub), 0o755)
	}
	os.WriteFile(filepath.Join(md, "new", "1.eml"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(md, "cur", "2.eml:2,S"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(md, "tmp", "3.eml"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(md, ".hidden"), []byte("x"), 0o644)
	inputs, err := Expand([]string{md, "-"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, in := range inputs {
		rel, _ := filepath.Rel(md, in.Name)
		if in.Name == "-" {
			rel = "-"
		}
		names = append(names, rel)
	}
	want := []string{"cur/2.eml:2,S", "new/1.eml", "-"}
	if len(names) != len(want) {
		t.Fatalf("inputs %q, want %q", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("inputs %q, want %q", names, want)
		}
	}
}

// TestNonReportKept: mail without any report is quarantined as its header
// and the first bytes of its body; a report that fails to parse is kept
// whole.
func TestNonReportKept(t *testing.T) {
	s := testserver.SQLite(t)
	in := New(s, Options{NonReportKeepBytes: 4096})
	big := []byte("From: scanner@example.com\r\nSubject: scan 42\r\nContent-Type: application/pdf\r\n\r\n" + strings.Repeat("%PDF-1.7 data ", 200000))
	out, err := in.Ingest(context.Background(), big, dmarcdOrigin("scan"))
	if err != nil || !out.Quarantined || !out.NotReport || !strings.Contains(out.Reason, "kept: the first 4096 of its") {
		t.Fatalf("non-report mail: %+v, %v", out, err)
	}
	broken := []byte("<feedback><report_metadata><org_name>x</org_name>" + strings.Repeat("<x/>", 2000))
	out, err = in.Ingest(context.Background(), broken, dmarcdOrigin("broken"))
	if err != nil || !out.Quarantined || out.NotReport {
		t.Fatalf("broken report: %+v, %v", out, err)
	}
	rows, err := s.Query(context.Background(), `SELECT size FROM quarantined ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var sizes []int
	for rows.Next() {
		var n int
		rows.Scan(&n)
		sizes = append(sizes, n)
	}
	if len(sizes) != 2 || sizes[0] != 4096 || sizes[1] != len(broken) {
		t.Errorf("quarantined sizes %v, want 4096 and %d", sizes, len(broken))
	}
}

func dmarcdOrigin(name string) dmarcd.Origin { return dmarcd.Origin{Source: "test:" + name} }
