package advisor

import (
	"context"
	"strings"
	"testing"

	"github.com/dmarcd/dmarcd/internal/testserver"
)

func findingCodes(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, string(f.Severity)+":"+f.Code)
	}
	return out
}

func findFinding(fs []Finding, code string) *Finding {
	for i := range fs {
		if fs[i].Code == code {
			return &fs[i]
		}
	}
	return nil
}

// overLimitZone: example.com needs 12 lookups; the 11th is reached through
// include:_spf.crm.example.
func overLimitZone() testZone {
	z := testZone{}
	z.txt("example.com", "v=spf1 mx include:_spf.mail.example include:_spf.crm.example ~all")
	z.mx("example.com", "mx.example.com")
	z.txt("_spf.mail.example", "v=spf1 include:a._spf.mail.example include:b._spf.mail.example include:c._spf.mail.example -all")
	z.txt("a._spf.mail.example", "v=spf1 ip4:192.0.2.0/26 -all")
	z.txt("b._spf.mail.example", "v=spf1 ip4:192.0.2.64/26 -all")
	z.txt("c._spf.mail.example", "v=spf1 ip4:192.0.2.128/26 -all")
	z.txt("_spf.crm.example", "v=spf1 a:one.crm.example a:two.crm.example include:eu._spf.crm.example -all")
	z.a("one.crm.example", "198.51.100.1")
	z.a("two.crm.example", "198.51.100.2")
	z.txt("eu._spf.crm.example", "v=spf1 include:x._spf.crm.example include:y._spf.crm.example -all")
	z.txt("x._spf.crm.example", "v=spf1 ip4:203.0.113.0/25 -all")
	z.txt("y._spf.crm.example", "v=spf1 ip4:203.0.113.128/25 -all")
	return z
}

func TestSPFOverLookupLimit(t *testing.T) {
	_, r := serve(t, overLimitZone())
	a, fs, err := AnalyzeSPF(context.Background(), r, "example.com")
	if err != nil {
		t.Fatal(err)
	}
	// mx 1; _spf.mail.example 1+3; _spf.crm.example 1 + a 2 + eu (1+2) = 6.
	if a.Lookups != 11 {
		t.Errorf("lookups = %d; want 11", a.Lookups)
	}
	f := findFinding(fs, "spf-lookups")
	if f == nil || f.Severity != SeverityError {
		t.Fatalf("findings %v; want an spf-lookups error", findingCodes(fs))
	}
	// The lookup over the limit and its include chain are named.
	for _, want := range []string{
		"include:y._spf.crm.example in the record of eu._spf.crm.example, reached from example.com -> _spf.crm.example",
		"include:_spf.crm.example 6", "include:_spf.mail.example 4", "mx 1",
	} {
		if !strings.Contains(f.Message, want) {
			t.Errorf("spf-lookups message %q does not name %q", f.Message, want)
		}
	}
	costs := map[string]int{}
	for _, c := range a.Costs {
		costs[c.Term] = c.Lookups
	}
	if costs["include:_spf.crm.example"] != 6 || costs["include:_spf.mail.example"] != 4 || costs["mx"] != 1 {
		t.Errorf("costs %v", costs)
	}
	crm := a.Costs[2]
	if len(crm.Includes) != 3 || crm.Includes[2].Term != "include:eu._spf.crm.example" || crm.Includes[2].Lookups != 3 {
		t.Errorf("the costs of _spf.crm.example are not broken down: %+v", crm.Includes)
	}
}

func TestSPFVoidLookups(t *testing.T) {
	z := testZone{}
	z.txt("example.com", "v=spf1 a:gone.example.com mx:nomx.example.com exists:nothing.example.com ip4:192.0.2.1 ~all")
	z.a("nomx.example.com", "192.0.2.5") // exists, no MX: NODATA
	_, r := serve(t, z)
	a, fs, err := AnalyzeSPF(context.Background(), r, "example.com")
	if err != nil {
		t.Fatal(err)
	}
	if a.VoidLookups != 3 {
		t.Errorf("void lookups = %d; want 3", a.VoidLookups)
	}
	f := findFinding(fs, "spf-void-lookups")
	if f == nil || f.Severity != SeverityError || !strings.Contains(f.Message, "exists:nothing.example.com in the record of example.com") {
		t.Errorf("findings %v; want an spf-void-lookups error naming exists:nothing.example.com", fs)
	}
	if findFinding(fs, "spf-lookups") != nil {
		t.Error("3 lookups reported over the limit")
	}

	// Two void lookups are allowed; a temporary failure is not void.
	z = testZone{}
	z.txt("example.com", "v=spf1 a:gone.example.com include:broken.example.net mx:nomx.example.com ~all")
	z.a("nomx.example.com", "192.0.2.5")
	z.add("broken.example.net", testserver.DNSServFail("broken.example.net"))
	_, r = serve(t, z)
	a, fs, _ = AnalyzeSPF(context.Background(), r, "example.com")
	if a.VoidLookups != 2 || findFinding(fs, "spf-void-lookups") != nil || findFinding(fs, "spf-dns") == nil {
		t.Errorf("void %d, findings %v; want 2 void lookups, no limit error, a DNS warning for broken.example.net", a.VoidLookups, findingCodes(fs))
	}
}

func TestSPFMultipleRecords(t *testing.T) {
	z := testZone{}
	z.txt("example.com", "v=spf1 mx -all", "v=spf1 include:_spf.google.com ~all", "google-site-verification=abc")
	z.txt("inc.example.com", "v=spf1 include:example.com -all")
	_, r := serve(t, z)
	a, fs, err := AnalyzeSPF(context.Background(), r, "example.com")
	if err != nil || a != nil {
		t.Fatalf("AnalyzeSPF = %v, %v; want no analysis", a, err)
	}
	if f := findFinding(fs, "spf-multiple"); f == nil || f.Severity != SeverityError || !strings.Contains(f.Message, "2 SPF records") {
		t.Errorf("findings %v; want spf-multiple", fs)
	}
	// Through an include, too.
	_, fs, _ = AnalyzeSPF(context.Background(), r, "inc.example.com")
	if f := findFinding(fs, "spf-multiple"); f == nil || !strings.Contains(f.Message, "include:example.com") {
		t.Errorf("findings %v; want spf-multiple naming include:example.com", fs)
	}
	// No record at all is a warning.
	_, fs, _ = AnalyzeSPF(context.Background(), r, "none.example.com")
	if f := findFinding(fs, "spf-missing"); f == nil || f.Severity != SeverityWarning {
		t.Errorf("findings %v; want spf-missing", fs)
	}
}

func TestSPFIncludeWithoutRecordAndLoop(t *testing.T) {
	z := testZone{}
	z.txt("example.com", "v=spf1 include:norecord.example.net include:loop.example.org -all")
	z.txt("norecord.example.net", "some other text")
	z.txt("loop.example.org", "v=spf1 include:example.com -all")
	_, r := serve(t, z)
	_, fs, _ := AnalyzeSPF(context.Background(), r, "example.com")
	if f := findFinding(fs, "spf-include-none"); f == nil || f.Name != "norecord.example.net" {
		t.Errorf("findings %v; want spf-include-none for norecord.example.net", fs)
	}
	if f := findFinding(fs, "spf-loop"); f == nil || !strings.Contains(f.Message, "example.com -> loop.example.org -> example.com") {
		t.Errorf("findings %v; want spf-loop naming the loop", fs)
	}
}

// TestSPFMacros: the macros whose values are known before mail arrives
// (%{d}, %{o} and their transformers, dnsrecord.ExpandMacros) are expanded
// and followed, so that their lookups count; a macro of the message counts
// one lookup.
func TestSPFMacros(t *testing.T) {
	z := testZone{}
	z.txt("example.com", "v=spf1 include:%{d}._spf.example.net include:%{o1}.spf.example.org exists:%{i}._ip.example.com ~all")
	z.txt("example.com._spf.example.net", "v=spf1 include:a.example.net include:b.example.net -all")
	z.txt("a.example.net", "v=spf1 ip4:192.0.2.0/25 -all")
	z.txt("b.example.net", "v=spf1 ip4:192.0.2.128/25 -all")
	z.txt("com.spf.example.org", "v=spf1 ip4:198.51.100.0/24 -all")
	_, r := serve(t, z)
	a, fs, err := AnalyzeSPF(context.Background(), r, "example.com")
	if err != nil {
		t.Fatal(err)
	}
	// %{d} include 1 + 2; %{o1} include 1; exists %{i} 1.
	if a.Lookups != 5 || HasErrors(fs) {
		t.Errorf("lookups %d, findings %v; want 5 and no error", a.Lookups, findingCodes(fs))
	}
	for _, c := range a.Costs {
		if strings.HasPrefix(c.Term, "exists:") && !strings.Contains(c.Problem, "depends on each message") {
			t.Errorf("exists:%%{i}: %+v", c)
		}
	}
}
