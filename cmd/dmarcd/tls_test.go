package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTLS ingests an SMTP TLS report (RFC 8460) of yesterday and prints
// what it says, as a table and as JSON.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "d.db")
	day := testNow.AddDate(0, 0, -1).Format(time.DateOnly)
	report := fmt.Sprintf(`{"organization-name": "Google Inc.", "report-id": "%[1]sT00:00:00Z_example.com",
  "date-range": {"start-datetime": "%[1]sT00:00:00Z", "end-datetime": "%[1]sT23:59:59Z"},
  "contact-info": "smtp-tls-reporting@google.com",
  "policies": [{"policy": {"policy-type": "sts", "policy-string": ["version: STSv1", "mode: enforce", "mx: mx.example.com", "max_age: 604800"],
                           "policy-domain": "example.com", "mx-host": ["mx.example.com"]},
                "summary": {"total-successful-session-count": 970, "total-failure-session-count": 30},
                "failure-details": [{"result-type": "certificate-expired", "sending-mta-ip": "209.85.220.41",
                                     "receiving-mx-hostname": "mx.example.com", "failed-session-count": 30}]}]}`, day)
	path := filepath.Join(dir, "google.json")
	if err := os.WriteFile(path, []byte(report), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "--store", db, "ingest", path)
	if code != exitOK || !strings.Contains(out, "TLS reports stored        1") {
		t.Fatalf("ingest: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runCLI(t, "--store", db, "tls")
	for _, want := range []string{"example.com    sts", "970", "3.00%", "certificate-expired", "mx.example.com"} {
		if code != exitOK || !strings.Contains(out, want) {
			t.Errorf("tls: exit %d, lacks %q:\n%s", code, want, out)
		}
	}
	code, out, _ = runCLI(t, "--store", db, "tls", "other.example", "--format", "json")
	var res struct{ Policies, Failures []any }
	if code != exitOK || json.Unmarshal([]byte(out), &res) != nil || res.Policies == nil || len(res.Policies) != 0 {
		t.Errorf("tls other.example --format json: exit %d\n%s", code, out)
	}
}
