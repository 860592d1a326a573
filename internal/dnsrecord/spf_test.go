package dnsrecord

import (
	"strings"
	"testing"
)

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
		if got, err := SPFNetworkTerm(in); err != nil || got != want {
			t.Errorf("SPFNetworkTerm(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"192.0.2", "192.0.2.1/33", "fe80::1%eth0", "mail.example.com"} {
		if got, err := SPFNetworkTerm(in); err == nil {
			t.Errorf("SPFNetworkTerm(%q) = %q; want an error", in, got)
		}
	}
}

// TestExpandMacros: the macros of a domain-spec whose values are known
// before mail arrives (RFC 7208 §7.2, §7.3).
func TestExpandMacros(t *testing.T) {
	for spec, want := range map[string]string{
		"%{d}": "mail.example.com", "%{d2}": "example.com", "%{dr}": "com.example.mail", "%{d1r}": "mail",
		"%{o}._spf.%{d2}": "example.com._spf.example.com", "a%%b.%{d}": "a%b.mail.example.com", "%{d-}": "mail.example.com",
	} {
		if got, ok := ExpandMacros(spec, "mail.example.com", "example.com"); !ok || got != want {
			t.Errorf("expand %q = %q, %v; want %q", spec, got, ok, want)
		}
	}
	if _, ok := ExpandMacros("%{i}.example.com", "example.com", "example.com"); ok {
		t.Error("%{i} expanded")
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
