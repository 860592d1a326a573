package advisor

import (
	"context"
	"errors"
	"strconv"
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

func TestParseSPF(t *testing.T) {
	valid := []string{
		"v=spf1 -all",
		"v=spf1",
		"V=SPF1 MX A:mail.example.com/24 ~ALL",
		"v=spf1 ip4:192.0.2.0/24 ip4:198.51.100.7 ip6:2001:db8::/32 include:_spf.google.com ~all",
		"v=spf1 a a/24 a//64 a/24//64 mx:example.com/28//56 -all",
		"v=spf1 exists:%{i}.%{l1r+-}._spf.%{d} -all",
		"v=spf1 include:%{d2}.example.net ?ip4:192.0.2.1 -all",
		"v=spf1 redirect=_spf.example.com",
		"v=spf1 -all exp=explain._spf.%{d}",
		"v=spf1  ip4:192.0.2.1   -all ",
		"v=spf1 -all moo=bar",
	}
	for _, txt := range valid {
		rec, fs := ParseSPF(txt)
		if rec == nil || HasErrors(fs) {
			t.Errorf("ParseSPF(%q): %v; want valid", txt, fs)
		}
	}
	invalid := map[string]string{
		"v=spf1 foo -all":                              "unknown mechanism",
		"v=spf1 =a -all":                               "unknown qualifier",
		"v=spf1 ip4:1.2.3.4/33 -all":                   "prefix length",
		"v=spf1 ip4:1.2.03.4 -all":                     "not an IP address",
		"v=spf1 ip4:2001:db8::1 -all":                  "not an IPv4 address",
		"v=spf1 ip6:192.0.2.1 -all":                    "not an IPv6 address",
		"v=spf1 a:example.com/24//129 -all":            "IPv6 prefix length",
		"v=spf1 a:example.com/024 -all":                "IPv4 prefix length",
		"v=spf1 include -all":                          "needs a domain",
		"v=spf1 include: -all":                         "needs a domain",
		"v=spf1 exists -all":                           "needs a domain",
		"v=spf1 -all:foo":                              "takes no argument",
		"v=spf1 redirect=a.example redirect=b.example": "more than once",
		"v=spf1 include:%{z}.example.com -all":         "unknown macro letter",
		"v=spf1 include:%{c}.example.com -all":         "only in exp",
		"v=spf1 include:example%.com -all":             "not a macro",
		"v=spf1 include:localhost -all":                "fully qualified",
		"v=spf1 include:example.123 -all":              "top-level label",
		"v=spf1 a:mail.example.com, -all":              "top-level label",
		"spf1 -all":                                    "v=spf1",
		"v=spf10 -all":                                 "v=spf1",
		"v=spf1 ip4:192.0.2.1\t-all":                   "tab",
	}
	for txt, want := range invalid {
		_, fs := ParseSPF(txt)
		f := findFinding(fs, "spf-syntax")
		if f == nil || f.Severity != SeverityError || !strings.Contains(f.Message, want) {
			t.Errorf("ParseSPF(%q) = %v; want an spf-syntax error about %q", txt, fs, want)
		}
	}
	warnings := map[string]string{
		"v=spf1 ptr -all":                       "spf-ptr",
		"v=spf1 +all":                           "spf-all-pass",
		"v=spf1 ?all":                           "spf-all-neutral",
		"v=spf1 -all redirect=_spf.example.com": "spf-redirect-ignored",
		"v=spf1 -all ip4:192.0.2.1":             "spf-after-all",
	}
	for txt, code := range warnings {
		_, fs := ParseSPF(txt)
		if f := findFinding(fs, code); f == nil || f.Severity != SeverityWarning || HasErrors(fs) {
			t.Errorf("ParseSPF(%q) = %v; want the warning %s and no error", txt, findingCodes(fs), code)
		}
	}
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

func TestMergeSPFIntoLiveRecord(t *testing.T) {
	z := testZone{}
	z.mx("example.com", "mx.example.com")
	z.txt("_spf.google.com", "v=spf1 include:_netblocks.google.com include:_netblocks2.google.com include:_netblocks3.google.com ~all")
	z.txt("_netblocks.google.com", "v=spf1 ip4:35.190.247.0/24 ~all")
	z.txt("_netblocks2.google.com", "v=spf1 ip6:2001:4860:4000::/36 ~all")
	z.txt("_netblocks3.google.com", "v=spf1 ip4:172.217.0.0/19 ~all")
	z.txt("spf.crm.example", "v=spf1 ip4:203.0.113.0/24 -all")
	_, r := serve(t, z)
	live := "v=spf1 mx include:_spf.google.com ip4:192.0.2.10 -all"
	m, err := MergeSPF(context.Background(), r, "example.com", live, SPFAdditions{
		IPs:      []string{"192.0.2.10", "198.51.100.5/28", "2001:db8::1", "2001:db8:1::/48"},
		Includes: []string{"_spf.google.com", "include:spf.crm.example"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "v=spf1 mx include:_spf.google.com ip4:192.0.2.10 ip4:198.51.100.0/28 ip6:2001:db8::1 ip6:2001:db8:1::/48 include:spf.crm.example -all"
	if m.Record != want {
		t.Errorf("merged\n %s\nwant\n %s", m.Record, want)
	}
	if strings.Join(m.Duplicates, " ") != "ip4:192.0.2.10 include:_spf.google.com" {
		t.Errorf("duplicates %q", m.Duplicates)
	}
	// mx 1, google 1+3, crm 1.
	if m.Lookups != 6 || CostSummary(m.Costs) != "include:_spf.google.com 4, mx 1, include:spf.crm.example 1" {
		t.Errorf("lookups %d, costs %s", m.Lookups, CostSummary(m.Costs))
	}

	// No live record: ~all.
	m, err = MergeSPF(context.Background(), r, "example.com", "", SPFAdditions{IPs: []string{"192.0.2.10"}})
	if err != nil || m.Record != "v=spf1 ip4:192.0.2.10 ~all" {
		t.Errorf("merge without live record = %v, %v", m, err)
	}
	// A live redirect stays last, without all; terms after all go.
	m, err = MergeSPF(context.Background(), r, "example.com", "v=spf1 ip4:192.0.2.1 redirect=spf.crm.example", SPFAdditions{IPs: []string{"192.0.2.2"}})
	if err != nil || m.Record != "v=spf1 ip4:192.0.2.1 ip4:192.0.2.2 redirect=spf.crm.example" {
		t.Errorf("merge with redirect = %v, %v", m.Record, err)
	}
	m, err = MergeSPF(context.Background(), r, "example.com", "v=spf1 ip4:192.0.2.1 ?all ip4:192.0.2.3 exp=x.example.com", SPFAdditions{IPs: []string{"192.0.2.2"}})
	if err != nil || m.Record != "v=spf1 ip4:192.0.2.1 ip4:192.0.2.2 ?all exp=x.example.com" || len(m.Dropped) != 1 {
		t.Errorf("merge with terms after all = %q (dropped %q), %v", m.Record, m.Dropped, err)
	}
	// A broken live record is not merged.
	if _, err := MergeSPF(context.Background(), r, "example.com", "v=spf1 foo -all", SPFAdditions{IPs: []string{"192.0.2.2"}}); err == nil || !strings.Contains(err.Error(), "unknown mechanism") {
		t.Errorf("merge into a broken record: %v", err)
	}
	if _, err := MergeSPF(context.Background(), r, "example.com", "", SPFAdditions{IPs: []string{"192.0.2.300"}}); err == nil {
		t.Error("merge of a bad address succeeded")
	}
}

func TestMergeSPFOverLimits(t *testing.T) {
	_, r := serve(t, overLimitZone())
	m, err := MergeSPF(context.Background(), r, "example.com", "v=spf1 mx include:_spf.mail.example ~all", SPFAdditions{Includes: []string{"_spf.crm.example"}})
	var le *SPFLimitError
	if !errors.As(err, &le) || le.Lookups != 11 {
		t.Fatalf("MergeSPF over the limit: %v", err)
	}
	for _, want := range []string{"11 DNS lookups", "include:_spf.crm.example 6", "include:_spf.mail.example 4", "flattening", "subdomain"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if m == nil || m.Record == "" {
		t.Error("the merge is not returned with the error")
	}
	// Over 450 octets.
	var ips []string
	for i := range 40 {
		ips = append(ips, "192.0.2."+strconv.Itoa(i+1))
	}
	_, err = MergeSPF(context.Background(), r, "example.com", "", SPFAdditions{IPs: ips})
	if !errors.As(err, &le) || le.Octets <= SPFMaxRecordOctets || !strings.Contains(err.Error(), "450") {
		t.Errorf("MergeSPF over 450 octets: %v", err)
	}
}

func TestSPFNetworkTerm(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":        "ip4:192.0.2.1",
		"192.0.2.1/32":     "ip4:192.0.2.1",
		"198.51.100.5/28":  "ip4:198.51.100.0/28",
		"ip4:192.0.2.0/24": "ip4:192.0.2.0/24",
		"2001:db8::1":      "ip6:2001:db8::1",
		"2001:DB8::/32":    "ip6:2001:db8::/32",
		"::ffff:192.0.2.9": "ip4:192.0.2.9",
		" 192.0.2.7 ":      "ip4:192.0.2.7",
	} {
		if got, err := spfNetworkTerm(in); err != nil || got != want {
			t.Errorf("spfNetworkTerm(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"192.0.2", "192.0.2.1/33", "fe80::1%eth0", "mail.example.com"} {
		if got, err := spfNetworkTerm(in); err == nil {
			t.Errorf("spfNetworkTerm(%q) = %q; want an error", in, got)
		}
	}
}

func FuzzParseSPF(f *testing.F) {
	for _, s := range []string{
		"v=spf1 -all", "v=spf1 mx a:mail.example.com/24//64 ip4:192.0.2.0/24 ip6:2001:db8::/32 include:_spf.example.net ~all",
		"v=spf1 exists:%{i}.%{l1r+-}._spf.%{d} redirect=_spf.example.com exp=x.%{d}", "v=spf1 =a moo=bar %{", "v=spf1 ptr:%{d2}. ?all",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, txt string) {
		rec, fs := ParseSPF(txt)
		if rec == nil || HasErrors(fs) {
			return
		}
		// A valid record writes back to one with the same terms.
		again, fs2 := ParseSPF(rec.String())
		if again == nil || HasErrors(fs2) || len(again.Terms) != len(rec.Terms) {
			t.Fatalf("%q parsed, but its String %q does not: %v", txt, rec.String(), fs2)
		}
	})
}

// TestSPFMacros: the macros whose values are known before mail arrives
// (%{d}, %{o} and their transformers) are expanded and followed, so that
// their lookups count; a macro of the message counts one lookup.
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
	for spec, want := range map[string]string{
		"%{d}": "mail.example.com", "%{d2}": "example.com", "%{dr}": "com.example.mail", "%{d1r}": "mail",
		"%{o}._spf.%{d2}": "example.com._spf.example.com", "a%%b.%{d}": "a%b.mail.example.com", "%{d-}": "mail.example.com",
	} {
		if got, ok := expandKnownMacros(spec, "mail.example.com", "example.com"); !ok || got != want {
			t.Errorf("expand %q = %q, %v; want %q", spec, got, ok, want)
		}
	}
	if _, ok := expandKnownMacros("%{i}.example.com", "example.com", "example.com"); ok {
		t.Error("%{i} expanded")
	}
}
