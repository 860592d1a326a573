package dnsrecord

import (
	"errors"
	"strings"
	"testing"

	"github.com/dmarcd/dmarcd"
)

func TestRecordString(t *testing.T) {
	pct := 5
	r := DMARCRecord{Policy: dmarcd.PolicyQuarantine, Percent: &pct, Testing: true, RUA: []string{"mailto:dmarc@example.com"}}
	if got, want := r.String(), "v=DMARC1; p=quarantine; pct=5; t=y; rua=mailto:dmarc@example.com"; got != want {
		t.Errorf("String() = %q; want %q", got, want)
	}
	if s := r.Step(); s != (dmarcd.RolloutStep{Policy: dmarcd.PolicyQuarantine, Percent: 5}) {
		t.Errorf("Step() = %v", s)
	}

	// Parsing gives the canonical order, and String parses back to the
	// same record.
	in := " v = DMARC1 ;rua=mailto:a@example.com,mailto:b@example.net ; adkim=s;p=REJECT; sp=quarantine; np=reject; psd=n; fo=1:d; ruf=mailto:f@example.com; foo=bar;"
	rec, _, err := ParseDMARC(in)
	if err != nil {
		t.Fatal(err)
	}
	want := "v=DMARC1; p=reject; sp=quarantine; np=reject; psd=n; adkim=s; rua=mailto:a@example.com,mailto:b@example.net; ruf=mailto:f@example.com; fo=1:d; foo=bar"
	if rec.String() != want {
		t.Errorf("canonical\n %s\nwant\n %s", rec.String(), want)
	}
	again, _, err := ParseDMARC(rec.String())
	if err != nil || again.String() != want {
		t.Errorf("round trip: %v, %v", again, err)
	}
	if rec.Step() != (dmarcd.RolloutStep{Policy: dmarcd.PolicyReject, Percent: 100}) || rec.SubdomainEffective() != dmarcd.PolicyQuarantine {
		t.Errorf("Step %v, sp %v", rec.Step(), rec.SubdomainEffective())
	}
}

func TestParseDMARCFindings(t *testing.T) {
	const rua = "; rua=mailto:dmarc@example.com"
	cases := []struct {
		txt  string
		code string
		sev  Severity
		says string
	}{
		{"v=DMARC1; p=quarantine; pct=5" + rua, "dmarc-pct-without-t", SeverityWarning, "ALL failing mail"},
		{"v=DMARC1; p=reject; pct=50" + rua, "dmarc-pct-without-t", SeverityWarning, "p=reject"},
		{"v=DMARC1; p=quarantine; pct=5; t=y" + rua, "dmarc-pct", SeverityInfo, "RFC 7489 receivers"},
		{"v=DMARC1; p=quarantine; pct=100" + rua, "dmarc-pct-100", SeverityInfo, "default"},
		{"v=DMARC1; p=none; rf=afrf" + rua, "dmarc-removed-rf", SeverityWarning, "RFC 9989"},
		{"v=DMARC1; p=none; ri=86400" + rua, "dmarc-removed-ri", SeverityWarning, "RFC 9989"},
		{"v=DMARC1; p=none", "dmarc-missing-rua", SeverityWarning, "no aggregate reports"},
		{"v=DMARC1; p=none; rua=dmarc@example.com", "dmarc-invalid-uri", SeverityWarning, "no scheme"},
		{"v=DMARC1; p=none; rua=mailto:not-an-address", "dmarc-invalid-uri", SeverityWarning, "not a mail address"},
		{"v=DMARC1; p=none; rua=mailto:dmarc@example.com!10m", "dmarc-uri-size", SeverityInfo, "RFC 9989 dropped the size limit"},
		{"v=DMARC1; p=reject; sp=none" + rua, "dmarc-weak-sp", SeverityWarning, "sp=none is weaker than p=reject"},
		{"v=DMARC1; p=reject; np=quarantine" + rua, "dmarc-weak-np", SeverityWarning, "np=quarantine"},
		{"v=DMARC1; p=maybe" + rua, "dmarc-invalid-p", SeverityError, "treat the whole record as p=none (RFC 7489 §6.6.3)"},
		{"v=DMARC1; p=maybe", "dmarc-invalid-p", SeverityError, "no DMARC at all"},
		{"v=DMARC1; p=reject; sp=rejected" + rua, "dmarc-invalid-sp", SeverityError, "sp=rejected is not a policy (none, quarantine or reject): receivers then treat the whole record as p=none"},
		{"v=DMARC1; p=none; adkim=x" + rua, "dmarc-invalid-adkim", SeverityError, "relaxed"},
		{"v=DMARC1; p=none; fo=2" + rua, "dmarc-invalid-fo", SeverityError, "0, 1, d or s"},
		{"v=DMARC1; p=none; psd=maybe" + rua, "dmarc-invalid-psd", SeverityError, "y, n or u"},
		{"v=DMARC1; p=none; rau=mailto:x@example.com" + rua, "dmarc-unknown-tag", SeverityWarning, "rau"},
		{"v=DMARC1" + rua, "dmarc-missing-p", SeverityWarning, "treat it as p=none"},
		{"v=DMARC1; p=none; p=reject" + rua, "dmarc-duplicate-tag", SeverityWarning, "more than once"},
		{"v=DMARC1; p=none; fo=1" + rua, "dmarc-fo-without-ruf", SeverityInfo, "ruf"},
	}
	for _, c := range cases {
		_, fs, err := ParseDMARC(c.txt)
		if err != nil {
			t.Errorf("ParseDMARC(%q): %v", c.txt, err)
			continue
		}
		f := findFinding(fs, c.code)
		if f == nil || f.Severity != c.sev || !strings.Contains(f.Message, c.says) {
			t.Errorf("ParseDMARC(%q) = %v; want %s %s saying %q", c.txt, fs, c.sev, c.code, c.says)
		}
	}
	// An invalid sp makes the record act as p=none, p=reject included.
	if r, _, _ := ParseDMARC("v=DMARC1; p=reject; sp=rejected" + rua); r.Step().Policy != "none" || r.ActsAsNone == "" {
		t.Errorf("p=reject with an invalid sp: step %v, acts as none %q", r.Step(), r.ActsAsNone)
	}
	// A size limit is kept, as written.
	if r, _, _ := ParseDMARC("v=DMARC1; p=none; rua=mailto:dmarc@example.com!10m"); r.String() != "v=DMARC1; p=none; rua=mailto:dmarc@example.com!10m" {
		t.Errorf("the size limit is lost: %s", r)
	}
	// A clean record has no findings.
	if _, fs, _ := ParseDMARC("v=DMARC1; p=reject; rua=mailto:dmarc@example.com"); len(fs) != 0 {
		t.Errorf("findings on a clean record: %v", fs)
	}
	for _, txt := range []string{"", "p=none; v=DMARC1", "v=DMARC2; p=none", "v=dmarc1; p=none", "v=spf1 -all"} {
		if _, _, err := ParseDMARC(txt); !errors.Is(err, ErrNotDMARC) {
			t.Errorf("ParseDMARC(%q): %v; want ErrNotDMARC", txt, err)
		}
	}
}

// TestParseDMARCTagList: the tag-list problems a DMARC record may have,
// and the findings they give, in record order. Receivers differ in how
// they take them, so they are warnings; empty tag-specs pass unremarked.
func TestParseDMARCTagList(t *testing.T) {
	const rua = "; rua=mailto:dmarc@example.com"
	cases := []struct {
		txt   string
		codes string
	}{
		{"v=DMARC1; p=none" + rua, ""},
		{"v=DMARC1; p=none;" + rua + ";", ""},
		{"v=DMARC1;; p=none;;" + rua, ""},
		{"v=DMARC1; p=none; junk" + rua, "warning:dmarc-syntax"},
		{"v=DMARC1; p=none; P=reject" + rua, "warning:dmarc-duplicate-tag"},
		{"v=DMARC1; p=none; v=DMARC1" + rua, "warning:dmarc-duplicate-tag"},
		{"v=DMARC1; p=none; v=DMARC1; v=DMARC1" + rua, "warning:dmarc-duplicate-tag warning:dmarc-duplicate-tag warning:dmarc-duplicate-tag"},
		{"v=DMARC1; junk; p=none; adkim=x; p=quarantine" + rua, "warning:dmarc-syntax error:dmarc-invalid-adkim warning:dmarc-duplicate-tag"},
		{"v=DMARC1; p=none; 9x=1" + rua, "warning:dmarc-unknown-tag"},
	}
	for _, c := range cases {
		_, fs, err := ParseDMARC(c.txt)
		if got := strings.Join(findingCodes(fs), " "); err != nil || got != c.codes {
			t.Errorf("ParseDMARC(%q) = %q, %v; want %q", c.txt, got, err, c.codes)
		}
	}
	// Tag names match any case (RFC 5234 §2.3); the version does not.
	if r, _, _ := ParseDMARC("V=DMARC1; P=Reject; RUA=mailto:dmarc@example.com"); r.Policy != "reject" || len(r.RUA) != 1 {
		t.Errorf("upper-case tags: %+v", r)
	}
}

// TestDMARCTagRules: every tag String writes has a rule, so that a record
// written by dmarcd reads back without unknown tags.
func TestDMARCTagRules(t *testing.T) {
	for _, tag := range []string{"v", "p", "sp", "np", "pct", "t", "psd", "adkim", "aspf", "rua", "ruf", "fo", "rf", "ri"} {
		if dmarcTagRules[tag] == nil {
			t.Errorf("no rule for %s=", tag)
		}
	}
}

func TestWhyNotDMARC(t *testing.T) {
	for txt, want := range map[string]string{
		"v=DMARC1; p=none":  "",
		"p=none":            "its first tag is p=",
		"v=dmarc1; p=none":  "case-sensitive",
		"v=DMARC2":          "v=DMARC2 is not v=DMARC1",
		"google-site-verif": "starts with the tag v=DMARC1",
	} {
		got := WhyNotDMARC(txt)
		if want == "" && got != "" || !strings.Contains(got, want) {
			t.Errorf("WhyNotDMARC(%q) = %q; want %q", txt, got, want)
		}
	}
}

func TestReportAddress(t *testing.T) {
	for in, want := range map[string]string{
		"mailto:dmarc@example.com":           "dmarc@example.com",
		"MAILTO:dmarc@example.com":           "dmarc@example.com",
		"mailto:dmarc%2Breports@example.com": "dmarc+reports@example.com",
	} {
		if got, err := ReportAddress(in); err != nil || got != want {
			t.Errorf("ReportAddress(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"https://example.com/dmarc", "dmarc@example.com", "mailto:", "mailto:a b@example.com"} {
		if got, err := ReportAddress(in); err == nil {
			t.Errorf("ReportAddress(%q) = %q; want an error", in, got)
		}
	}
}

func FuzzParseDMARC(f *testing.F) {
	for _, s := range []string{
		"v=DMARC1; p=none; rua=mailto:a@example.com", "v=DMARC1;p=quarantine;pct=5;t=y;sp=reject;np=reject;psd=n;fo=1:d",
		"v=DMARC1; p=reject; rua=mailto:a@example.com!10m,mailto:b@example.net; ri=86400; rf=afrf; foo=bar", "v=DMARC1; =; ;;",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, txt string) {
		rec, _, err := ParseDMARC(txt)
		if err != nil {
			return
		}
		// The canonical text parses to the same canonical text.
		again, _, err := ParseDMARC(rec.String())
		if err != nil || again.String() != rec.String() {
			t.Fatalf("%q: canonical %q parses to %v, %v", txt, rec.String(), again, err)
		}
	})
}
