package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/dmarcd/dmarcd/internal/testserver"
)

// zoneRecord finds the records the commands print: NAME. IN TXT "..." ...
var zoneRecord = regexp.MustCompile(`(\S+)\. IN TXT ((?:"(?:[^"\\]|\\.)*"[ \t]*)+)`)

// checkZoneRecords loads every record printed in out into a zone of its
// domain and has BIND's named-checkzone check it: what dmarcd prints can
// be pasted into a zone file as it is. It returns how many it checked.
func checkZoneRecords(t *testing.T, out string) int {
	t.Helper()
	checker := testserver.Need(t, "/usr/bin/named-checkzone", "bind9-utils")
	matches := zoneRecord.FindAllStringSubmatch(out, -1)
	dir := t.TempDir()
	for i, m := range matches {
		name, value := m[1], strings.TrimSpace(m[2])
		labels := strings.Split(name, ".")
		zone := strings.Join(labels[len(labels)-2:], ".")
		text := fmt.Sprintf("$TTL 3600\n$ORIGIN %[1]s.\n@ IN SOA ns1.%[1]s. hostmaster.%[1]s. 1 7200 3600 1209600 3600\n@ IN NS ns1.%[1]s.\nns1 IN A 192.0.2.53\n%[2]s. IN TXT %[3]s\n",
			zone, name, value)
		path := filepath.Join(dir, fmt.Sprintf("%d.zone", i))
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		b, err := exec.Command(checker, "-k", "fail", "-i", "full", zone, path).CombinedOutput()
		if err != nil || strings.Contains(strings.ToLower(string(b)), "warning") {
			t.Errorf("named-checkzone refuses the printed record %s:\n%s\n%s", name, m[0], b)
		}
		for _, s := range regexp.MustCompile(`"((?:[^"\\]|\\.)*)"`).FindAllStringSubmatch(value, -1) {
			if len(s[1]) > 255 {
				t.Errorf("%s: a string of %d characters", name, len(s[1]))
			}
		}
	}
	return len(matches)
}

// TestKeysRecordsLoad: the records the keys commands print for 2048- and
// 4096-bit keys (over 255 characters, so several strings) load in
// named-checkzone: generate, rotate, list's dns, advance's advice.
func TestKeysRecordsLoad(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	cfg := filepath.Join(dir, "dmarcd.toml")
	resolver := testserver.DNS(t, nil) // no records: none is published yet
	if err := os.WriteFile(cfg, []byte("[dns]\nresolver = \""+resolver+"\"\ntimeout_seconds = 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := []string{"--config", cfg, "--store", filepath.Join(dir, "d.db"), "keys", "--dir", keys}
	var out strings.Builder
	run := func(args ...string) {
		t.Helper()
		code, stdout, stderr := runCLI(t, append(append([]string{}, base...), args...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, code, stdout, stderr)
		}
		out.WriteString(stdout)
	}
	run("generate", "--domain", "example.com", "--selector", "s1")
	run("generate", "--domain", "example.net", "--selector", "big", "--bits", "4096")
	run("advance") // advice: publish the records
	for range 3 {
		run("advance", "--domain", "example.com", "--selector", "s1", "--force")
	}
	run("rotate", "--domain", "example.com", "--algorithm", "rsa", "--selector", "s2")
	run("dns", "--domain", "example.com")
	n := checkZoneRecords(t, out.String())
	// Every record printed is in zone-file form: none escaped the check.
	if printed := strings.Count(out.String(), "\"v=DKIM1"); n < 5 || n != printed {
		t.Fatalf("found %d records in zone-file form, %d printed:\n%s", n, printed, out.String())
	}
}

// TestSignerWarnsStrictAlignment: with signer.subdomains = "parent", a
// domain whose DMARC record says adkim=s gets a warning at start: its
// subdomains' mail would carry d=DOMAIN, which fails strict alignment.
func TestSignerWarnsStrictAlignment(t *testing.T) {
	resolver := testserver.DNS(t, map[string][]dns.RR{
		"_dmarc.strict.example.":  {txtRR(t, "_dmarc.strict.example", "v=DMARC1; p=reject; adkim=s")},
		"_dmarc.relaxed.example.": {txtRR(t, "_dmarc.relaxed.example", "v=DMARC1; p=reject")},
	})
	var logs strings.Builder
	e := &env{ctx: context.Background(), cfg: Config{DNS: DNSConfig{Resolver: resolver, TimeoutSeconds: 2}},
		log: slog.New(slog.NewTextHandler(&logs, nil))}
	warnStrictDKIMAlignment(e, []string{"relaxed.example", "strict.example"})
	if got := logs.String(); !strings.Contains(got, "domain=strict.example") || strings.Contains(got, "relaxed.example") || !strings.Contains(got, "adkim=s") {
		t.Errorf("log:\n%s", got)
	}
}
