package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testNow is the clock of every command a test runs: the day after the
// samples' last report (2026-11-07), so that no test depends on the day
// it runs.
var testNow = time.Date(2026, 11, 8, 9, 30, 0, 0, time.UTC)

func testClock() time.Time { return testNow }

// runCLI runs the command line in-process and returns its exit code and
// output.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr, testClock)
	return code, stdout.String(), stderr.String()
}

func TestIngestSamplesAndQuery(t *testing.T) {
	db := filepath.Join(t.TempDir(), "d.db")
	code, out, errOut := runCLI(t, "ingest", "--store", db, "../../samples")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"aggregate reports stored", "example.com", "news.example.com", "DMARC pass"} {
		if !strings.Contains(out, want) {
			t.Errorf("ingest output lacks %q:\n%s", want, out)
		}
	}
	// Again: everything is a duplicate.
	code, out, _ = runCLI(t, "ingest", "--quiet", "--store", db, "../../samples")
	if code != exitOK || !strings.Contains(out, "aggregate reports stored  0") {
		t.Errorf("second ingest: exit %d\n%s", code, out)
	}

	code, out, errOut = runCLI(t, "query", "--store", db, "--format", "json", "SELECT domain, COUNT(*) AS n FROM reports GROUP BY domain ORDER BY domain")
	if code != exitOK {
		t.Fatalf("query: exit %d: %s", code, errOut)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("query json: %v\n%s", err, out)
	}
	if len(rows) != 2 || rows[0]["domain"] != "example.com" {
		t.Errorf("query rows: %v", rows)
	}
	code, out, _ = runCLI(t, "query", "--store", db, "-f", "csv", "SELECT 1 AS a, 'x,y' AS b")
	if code != exitOK || out != "a,b\n1,\"x,y\"\n" {
		t.Errorf("csv: exit %d %q", code, out)
	}
	code, _, errOut = runCLI(t, "query", "--store", db, "DELETE FROM aggregate_reports")
	if code != exitUsage {
		t.Errorf("a write through query: exit %d (%s), want %d", code, errOut, exitUsage)
	}
	// The samples cover 2026-11-01..07; the test clock is the day after.
	code, out, _ = runCLI(t, "sources", "--store", db, "example.com")
	if code != exitOK || !strings.Contains(out, "authorized") || !strings.Contains(out, "spoofing") {
		t.Errorf("sources: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "daily", "--store", db, "example.com")
	if code != exitOK || !strings.Contains(out, "2026-11-01") || strings.Count(out, "\n") != 8 {
		t.Errorf("daily: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "senders", "--store", db, "example.com")
	if code != exitOK || !strings.Contains(out, "Senders of example.com") || !strings.Contains(out, "spoofing: 42 senders, 343 messages") ||
		!strings.Contains(out, "spf=bounces.mailer.example.net") {
		t.Errorf("senders: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "senders", "--store", db, "--format", "json", "example.com")
	var inv struct {
		Messages int64
		Senders  []struct{ ID, Class string }
	}
	if code != exitOK || json.Unmarshal([]byte(out), &inv) != nil || inv.Messages != 16246 || len(inv.Senders) != 48 {
		t.Errorf("senders --format json: exit %d, %d messages, %d senders\n%.500s", code, inv.Messages, len(inv.Senders), out)
	}
	// As of a later day, the windows are empty and say where the reports
	// are; as of the day after them, the same as today.
	for _, cmd := range []string{"daily", "sources", "senders"} {
		code, out, _ = runCLI(t, cmd, "--store", db, "--at", "2027-03-01", "example.com")
		if want := "no reports for example.com from "; code != exitOK || !strings.Contains(out, want) ||
			!strings.Contains(out, "the last report covers 2026-11-07 (try --at 2026-11-08)") {
			t.Errorf("%s --at 2027-03-01: exit %d\n%s", cmd, code, out)
		}
	}
	code, out, _ = runCLI(t, "daily", "--store", db, "--at", "2026-11-08", "--days", "3", "example.com")
	if code != exitOK || !strings.Contains(out, "2026-11-05") || strings.Contains(out, "2026-11-04") {
		t.Errorf("daily --at 2026-11-08 --days 3: exit %d\n%s", code, out)
	}
	if code, _, errOut := runCLI(t, "tls", "--store", db, "--at", "yesterday"); code != exitUsage || !strings.Contains(errOut, "is not a day") {
		t.Errorf("tls --at yesterday: exit %d: %s", code, errOut)
	}
	code, out, _ = runCLI(t, "domains", "--store", db, "news.example.com")
	if code != exitOK || strings.Contains(out, "\nexample.com") || !strings.Contains(out, "news.example.com") {
		t.Errorf("domains: exit %d\n%s", code, out)
	}
}

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "d.db")
	bad := filepath.Join(dir, "bad.xml")
	os.WriteFile(bad, []byte("<feedback><report_metadata><org_name>x"), 0o644)
	if code, out, _ := runCLI(t, "ingest", "--store", db, bad); code != exitQuarantined || !strings.Contains(out, "quarantined               1") {
		t.Errorf("ingest of a broken report: exit %d, want %d\n%s", code, exitQuarantined, out)
	}
	if code, _, _ := runCLI(t, "ingest", "--store", db, filepath.Join(dir, "missing")); code != exitUsage {
		t.Errorf("missing path: exit %d, want %d", code, exitUsage)
	}
	// A read-only command on a store that is not there: an error, and no
	// new empty store.
	typo := filepath.Join(dir, "typo.db")
	for _, args := range [][]string{{"query", "SELECT 1"}, {"domains"}, {"advise"}, {"senders", "example.com"}, {"alerts"}} {
		code, _, errOut := runCLI(t, append([]string{"--store", typo}, args...)...)
		if code != exitFailure || !strings.Contains(errOut, "no store there") {
			t.Errorf("%v on a missing store: exit %d: %s", args, code, errOut)
		}
	}
	if _, err := os.Stat(typo); err == nil {
		t.Error("a read-only command created the store")
	}
	if code, out, _ := runCLI(t, "version"); code != exitOK || !strings.HasPrefix(out, "dmarcd ") || !strings.Contains(out, " go1.") {
		t.Errorf("version: exit %d: %q", code, out)
	}
	if code, _, _ := runCLI(t, "no-such-command"); code != exitUsage {
		t.Errorf("unknown command: exit %d, want %d", code, exitUsage)
	}
	code, out, _ := runCLI(t, "--help")
	if code != exitOK || !strings.Contains(out, "ingest") || !strings.Contains(out, "Exit codes") {
		t.Errorf("--help: exit %d\n%s", code, out)
	}
}

func TestConfig(t *testing.T) {
	dir := t.TempDir()
	example, err := os.ReadFile("../../dmarcd.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := loadConfigBytes(t, dir, string(example)); err != nil {
		t.Errorf("the example config does not load: %v", err)
	}
	_, err = loadConfigBytes(t, dir, "store = \"x.db\"\n[ingest]\nkeep_failure_bodies = true\n")
	if err == nil || !strings.Contains(err.Error(), "ingest.keep_failure_bodies") {
		t.Errorf("unknown key: got %v", err)
	}
	_, err = loadConfigBytes(t, dir, "[log]\nlevel = \"loud\"\n")
	if err == nil {
		t.Error("a bad log level was accepted")
	}
	path := filepath.Join(dir, "bad.toml")
	os.WriteFile(path, []byte("stores = 1\n"), 0o644)
	if code, _, errOut := runCLI(t, "--config", path, "version"); code != exitUsage || !strings.Contains(errOut, "unknown keys: stores") {
		t.Errorf("unknown key through the command line: exit %d: %s", code, errOut)
	}
}

func loadConfigBytes(t *testing.T, dir, text string) (Config, error) {
	path := filepath.Join(dir, "c.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return loadConfig(path)
}

// TestIngestOwnFolder: `dmarcd ingest .` in the folder of the store reads
// the reports and never the store's own files (dmarcd.db, -wal, -shm); a
// symbolic link inside the folder is left out, and said so.
func TestIngestOwnFolder(t *testing.T) {
	dir := t.TempDir()
	var samples []string
	all, _ := filepath.Glob("../../samples/google.com!example.com!*.eml")
	for _, s := range all {
		if !strings.HasSuffix(s, ".tls.eml") {
			samples = append(samples, s)
		}
	}
	for _, s := range samples[:2] {
		b, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, filepath.Base(s)), b, 0o644)
	}
	os.Symlink(samples[2], filepath.Join(dir, "link.eml"))
	db := filepath.Join(dir, "dmarcd.db")
	for i, want := range []string{"aggregate reports stored  2", "duplicates (not stored)   2"} {
		code, out, errOut := runCLI(t, "ingest", "--quiet", "--store", db, dir)
		if code != exitOK || !strings.Contains(out, want) || !strings.Contains(out, "quarantined               0") {
			t.Errorf("run %d: exit %d\n%s\n%s", i+1, code, out, errOut)
		}
		if !strings.Contains(errOut, "link.eml") || !strings.Contains(errOut, "symbolic link") {
			t.Errorf("run %d: the symbolic link is not reported:\n%s", i+1, errOut)
		}
	}
}
