package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd/internal/synth"
	"github.com/dmarcd/dmarcd/schema/sqlite"
)

// TestPrune drops the months past the retention from the embedded store,
// as a cron user runs it.
func TestPrune(t *testing.T) {
	db := filepath.Join(t.TempDir(), "d.db")
	st, err := sqlite.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	now := testNow
	synth.Dataset{Domain: "example.com", From: now.AddDate(0, -3, -5).Format(time.DateOnly), To: now.AddDate(0, 0, -1).Format(time.DateOnly),
		Sources: []synth.Traffic{{IP: "192.0.2.1", PerDay: 100, Pass: true}}}.Write(t, st)
	st.Close()

	if code, _, errOut := runCLI(t, "--store", db, "prune"); code != exitUsage || !strings.Contains(errOut, "no retention") {
		t.Errorf("prune without a retention: exit %d: %s", code, errOut)
	}
	code, out, errOut := runCLI(t, "--store", db, "prune", "--months", "1")
	if code != exitOK || !strings.Contains(out, "Dropped what was filed before") {
		t.Fatalf("prune: exit %d: %s%s", code, out, errOut)
	}
	cutoff := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -1, 0).Format(time.DateOnly)
	code, out, _ = runCLI(t, "--store", db, "query", "--format", "csv", "SELECT MIN(day) >= '"+cutoff+"', COUNT(*) > 0 FROM reports")
	if code != exitOK || !strings.Contains(out, "1,1") {
		t.Errorf("after prune: %s", out)
	}
	code, out, _ = runCLI(t, "--store", db, "query", "--format", "csv", "SELECT COUNT(*) FROM daily_domains WHERE day < '"+cutoff+"'")
	if code != exitOK || !strings.Contains(out, "\n0") {
		t.Errorf("rollups after prune: %q", out)
	}
}
