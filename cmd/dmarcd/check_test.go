package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/dmarcd/dmarcd/internal/testserver"
)

// adviceZone is a domain before `domain add`: an SPF record, no DMARC.
func adviceZone(t *testing.T, lines ...string) map[string][]dns.RR {
	t.Helper()
	z := map[string][]dns.RR{}
	for _, l := range lines {
		rr, err := dns.NewRR(l)
		if err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		z[rr.Header().Name] = append(z[rr.Header().Name], rr)
	}
	return z
}

// adviceConfig writes a config file asking the test DNS server.
func adviceConfig(t *testing.T, dnsAddr, extra string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "dmarcd.toml")
	text := "[dns]\nresolver = \"" + dnsAddr + "\"\ntimeout_seconds = 2\n[keys]\ndir = \"" + filepath.Join(dir, "no-keys") + "\"\n" + extra
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDomainAddAndCheck(t *testing.T) {
	srv := testserver.StartDNS(t, adviceZone(t,
		`example.com. 300 IN TXT "v=spf1 mx -all"`,
		`example.com. 300 IN MX 10 mx.example.com.`,
		`mx.example.com. 300 IN A 192.0.2.25`,
	))
	cfg := adviceConfig(t, srv.Addr, "")

	code, out, errOut := runCLI(t, "--config", cfg, "domain", "add", "example.com", "--mode", "own", "--ip", "192.0.2.10,198.51.100.0/28", "--rua", "dmarc@reports.example.net")
	if code != exitOK {
		t.Fatalf("domain add: exit %d\n%s", code, errOut)
	}
	for _, want := range []string{
		"; ---- in the zone of example.com\n$ORIGIN example.com.\n",
		"@\t3600\tIN\tTXT\t\"v=spf1 mx ip4:192.0.2.10 ip4:198.51.100.0/28 -all\"",
		"_dmarc\t3600\tIN\tTXT\t\"v=DMARC1; p=none; rua=mailto:dmarc@reports.example.net\"",
		"; ---- in the zone of reports.example.net\n$ORIGIN reports.example.net.\n",
		"\nexample.com._report._dmarc\t3600\tIN\tTXT\t\"v=DMARC1\"\n",
		"; SPF: merged into the live record",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("domain add output lacks %q:\n%s", want, out)
		}
	}

	code, out, _ = runCLI(t, "--config", cfg, "domain", "add", "example.com", "--ip", "192.0.2.10", "--rua", "dmarc@example.com", "--format", "json")
	var plan struct {
		Records []struct{ Name, Value string }
	}
	if code != exitOK || json.Unmarshal([]byte(out), &plan) != nil || len(plan.Records) != 2 {
		t.Errorf("domain add --format json: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "--config", cfg, "domain", "add", "example.com", "--ip", "192.0.2.10", "--rua", "dmarc@example.com", "--format", "table")
	if code != exitOK || !strings.Contains(out, "ZONE") {
		t.Errorf("domain add --format table: exit %d\n%s", code, out)
	}
	// Without a report address, a first DMARC record would teach nothing.
	code, _, errOut = runCLI(t, "--config", cfg, "domain", "add", "example.com", "--ip", "192.0.2.10", "--format", "table")
	if code != exitUsage || !strings.Contains(errOut, "no report address for example.com") {
		t.Errorf("domain add without a report address: exit %d\n%s", code, errOut)
	}

	// Before publishing: errors, exit 1.
	code, out, _ = runCLI(t, "--config", cfg, "check", "example.com")
	if code != exitFailure || !strings.Contains(out, "ERROR   _dmarc.example.com  [dmarc-missing]") {
		t.Errorf("check before publishing: exit %d\n%s", code, out)
	}
	// Published (the report authorization too): exit 0.
	for _, l := range []string{
		`example.com. 300 IN TXT "v=spf1 mx ip4:192.0.2.10 ip4:198.51.100.0/28 -all"`,
		`_dmarc.example.com. 300 IN TXT "v=DMARC1; p=none; rua=mailto:dmarc@reports.example.net"`,
		`example.com._report._dmarc.reports.example.net. 300 IN TXT "v=DMARC1"`,
	} {
		rr, _ := dns.NewRR(l)
		keep := srv.Records(rr.Header().Name)
		if rr.Header().Name == "example.com." {
			keep = keep[1:] // the old SPF record goes
		}
		srv.Set(rr.Header().Name, append(keep, rr)...)
	}
	code, out, errOut = runCLI(t, "--config", cfg, "--log-level", "error", "domain", "add", "example.com", "--ip", "192.0.2.10,198.51.100.0/28", "--rua", "dmarc@reports.example.net", "--write-config")
	if code != exitOK || !strings.Contains(out, "the live record already allows") {
		t.Fatalf("domain add --write-config: exit %d\n%s\n%s", code, out, errOut)
	}
	loaded, err := loadConfig(cfg)
	if err != nil || len(loaded.Domains) != 1 || loaded.Domains[0].Name != "example.com" || len(loaded.Domains[0].IPs) != 2 {
		t.Fatalf("config after --write-config: %+v, %v", loaded.Domains, err)
	}
	code, _, errOut = runCLI(t, "--config", cfg, "domain", "add", "example.com", "--ip", "192.0.2.11", "--write-config")
	if code != exitUsage || !strings.Contains(errOut, "already has a [[domain]] table") {
		t.Errorf("second --write-config: exit %d: %s", code, errOut)
	}

	code, out, _ = runCLI(t, "--config", cfg, "check", "example.com", "--format", "json")
	var res struct {
		Errors   int
		Findings []struct{ Severity, Code, Name string }
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != exitOK || res.Errors != 0 {
		t.Errorf("check after publishing: exit %d, %v\n%s", code, err, out)
	}

	// The domain is configured now, so its rollout heads for p=reject:
	// sp=none leaves its subdomains open, a warning (exit 0).
	rr, _ := dns.NewRR(`_dmarc.example.com. 300 IN TXT "v=DMARC1; p=none; sp=none; rua=mailto:dmarc@reports.example.net"`)
	srv.Set(rr.Header().Name, rr)
	code, out, _ = runCLI(t, "--config", cfg, "check", "example.com")
	if code != exitOK || !strings.Contains(out, "[dmarc-sp-below-rollout]") {
		t.Errorf("check with sp=none: exit %d\n%s", code, out)
	}
}

func TestDomainAddAsks(t *testing.T) {
	srv := testserver.StartDNS(t, adviceZone(t,
		`_dmarc.example.com. 300 IN TXT "v=DMARC1; p=none; rua=mailto:dmarc@example.com"`,
	))
	cfg := adviceConfig(t, srv.Addr, "[[mailbox]]\nhost = \"imap.example.com\"\nusername = \"dmarc@example.com\"\npassword = \"x\"\n")
	defer func(r func() bool) { stdinIsTerminal = r }(stdinIsTerminal)
	defer func(r io.Reader) { stdin = r }(stdin)
	stdinIsTerminal = func() bool { return true }
	stdin = strings.NewReader("bogus\nsubdomain\n192.0.2.7, 2001:db8::7\n-\n\n")
	code, out, errOut := runCLI(t, "--config", cfg, "domain", "add", "news.example.com")
	if code != exitOK {
		t.Fatalf("domain add on a terminal: exit %d\n%s", code, errOut)
	}
	for _, want := range []string{"Mode: own", "answer own or subdomain", "[dmarc@example.com]"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("questions lack %q:\n%s", want, errOut)
		}
	}
	for _, want := range []string{
		"$ORIGIN example.com.\n",
		"news\t3600\tIN\tTXT\t\"v=spf1 ip4:192.0.2.7 ip6:2001:db8::7 ~all\"",
		"_dmarc.news\t3600\tIN\tTXT\t\"v=DMARC1; p=none; rua=mailto:dmarc@example.com\"",
		"example.com and its records are left alone",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Flags: no questions.
	stdin = strings.NewReader("")
	code, out, errOut = runCLI(t, "--config", cfg, "domain", "add", "news.example.com", "--mode", "subdomain", "--ip", "192.0.2.7")
	if code != exitOK || strings.Contains(errOut, "Mode:") || !strings.Contains(out, "rua=mailto:dmarc@example.com") {
		t.Errorf("domain add with flags: exit %d\n%s\n%s", code, out, errOut)
	}
}
