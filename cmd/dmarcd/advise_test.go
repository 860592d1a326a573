package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dmarcd/dmarcd/internal/synth"
	"github.com/dmarcd/dmarcd/internal/testserver"
	"github.com/dmarcd/dmarcd/schema/sqlite"
)

// TestAdviseAndAlerts runs `dmarcd advise` and `dmarcd alerts --check` as a
// user would: a config with a sender domain, its DMARC record on a loopback
// DNS server, a store with two weeks of reports, and a Slack webhook.
func TestAdviseAndAlerts(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "d.db")
	st, err := sqlite.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	yesterday := testNow.AddDate(0, 0, -1).Format(time.DateOnly)
	from := testNow.AddDate(0, 0, -20).Format(time.DateOnly)
	synth.Dataset{Domain: "example.com", From: from, To: yesterday, Published: synth.Constant("quarantine", 5, "y"),
		Sources: []synth.Traffic{{IP: "192.0.2.1", PerDay: 2000, Pass: true}, {IP: "100.64.0.9", PerDay: 30},
			{IP: "203.0.113.66", PerDay: 400, From: yesterday}}}.Write(t, st)
	st.Close()

	rr, err := dns.NewRR(`_dmarc.example.com. 300 IN TXT "v=DMARC1; p=quarantine; pct=5; t=y; rua=mailto:dmarc@example.com"`)
	if err != nil {
		t.Fatal(err)
	}
	spf, err := dns.NewRR(`example.com. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 ~all"`)
	if err != nil {
		t.Fatal(err)
	}
	resolver := testserver.DNS(t, map[string][]dns.RR{"_dmarc.example.com.": {rr}, "example.com.": {spf}})

	var mu sync.Mutex
	var posts []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		posts = append(posts, string(b))
		mu.Unlock()
	}))
	defer hook.Close()

	config := filepath.Join(dir, "dmarcd.toml")
	os.WriteFile(config, []byte(`store = "`+db+`"
[dns]
resolver = "`+resolver+`"
[sending]
ips = ["192.0.2.0/24"]
[slack]
webhook_url = "`+hook.URL+`"
[[domain]]
name = "example.com"
rua = ["dmarc@example.com"]
# It sends every day, unauthenticated: the owner says it is not theirs.
not_ours = ["100.64.0.9"]
`), 0o644)

	code, out, errOut := runCLI(t, "--config", config, "advise")
	if code != exitOK {
		t.Fatalf("advise: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"example.com: ADVANCE (quarantine 5% (t=y) -> quarantine 10% (t=y))",
		`publish: _dmarc.example.com. IN TXT "v=DMARC1; p=quarantine; pct=10; t=y; rua=mailto:dmarc@example.com"`,
		"RFC 9989 receivers ignore pct", "google.com (7,305)"} {
		if !strings.Contains(out, want) {
			t.Errorf("advise output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCLI(t, "--config", config, "advise", "--format", "json")
	var w struct {
		Recommendations []struct{ Action, Record string }
	}
	if code != exitOK || json.Unmarshal([]byte(out), &w) != nil || len(w.Recommendations) != 1 || w.Recommendations[0].Action != "advance" {
		t.Errorf("advise json: exit %d\n%s", code, out)
	}

	// As of the day after the first report: one day of data, too few
	// days at the step.
	code, out, _ = runCLI(t, "--config", config, "advise", "--at", testNow.AddDate(0, 0, -19).Format(time.DateOnly))
	if code != exitOK || !strings.Contains(out, "example.com: HOLD (quarantine 5%") || !strings.Contains(out, "has held 1 days") {
		t.Errorf("advise --at: exit %d\n%s", code, out)
	}
	if code, _, errOut := runCLI(t, "--config", config, "advise", "--at", "tomorrow"); code != exitUsage || !strings.Contains(errOut, "is not a day") {
		t.Errorf("advise --at tomorrow: exit %d: %s", code, errOut)
	}

	code, out, errOut = runCLI(t, "--config", config, "alerts", "--check")
	if code != exitOK || !strings.Contains(out, "FIRING example.com failing-source 203.0.113.66") {
		t.Fatalf("alerts --check: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, _ = runCLI(t, "--config", config, "alerts", "--check")
	if code != exitOK || !strings.Contains(out, "nothing new") {
		t.Errorf("second check: exit %d\n%s", code, out)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(posts) != 1 || !strings.Contains(posts[0], "203.0.113.66") {
		t.Errorf("slack got %d posts: %v", len(posts), posts)
	}
	code, out, _ = runCLI(t, "--config", config, "alerts")
	if code != exitOK || !strings.Contains(out, "firing since") {
		t.Errorf("alerts: exit %d\n%s", code, out)
	}
}

// TestAdviseIsolatesDomains: one domain whose DNS fails leaves the advice
// of the others whole; it is named, and the exit is 1.
func TestAdviseIsolatesDomains(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "d.db")
	st, err := sqlite.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"good.example", "broken.example"} {
		synth.Dataset{Domain: d, From: testNow.AddDate(0, 0, -7).Format(time.DateOnly), To: testNow.AddDate(0, 0, -1).Format(time.DateOnly),
			Sources: []synth.Traffic{{IP: "192.0.2.1", PerDay: 200, Pass: true}}}.Write(t, st)
	}
	st.Close()
	rr, _ := dns.NewRR(`_dmarc.good.example. 300 IN TXT "v=DMARC1; p=none; rua=mailto:d@good.example"`)
	resolver := testserver.DNS(t, map[string][]dns.RR{"_dmarc.good.example.": {rr}, "_dmarc.broken.example.": {testserver.DNSServFail("_dmarc.broken.example.")}})
	config := filepath.Join(dir, "dmarcd.toml")
	os.WriteFile(config, []byte("store = \""+db+"\"\n[dns]\nresolver = \""+resolver+"\"\ntimeout_seconds = 2\n"), 0o644)
	code, out, errOut := runCLI(t, "--config", config, "advise")
	if code != exitFailure || !strings.Contains(out, "good.example: ") || !strings.Contains(errOut, "no recommendation for broken.example") {
		t.Errorf("advise: exit %d\n%s\n%s", code, out, errOut)
	}
}
