package advisor

import (
	"context"
	"strings"
	"testing"

	"github.com/dmarcd/dmarcd"
)

func TestCheckWellConfigured(t *testing.T) {
	srv, r := serve(t, ownDomainZone())
	in := ownSetup
	in.DKIM = []DKIMPublicKey{{Selector: "s1", Value: rsaKeyRecord(t, 2048)}, {Selector: "s2", Value: ed25519KeyRecord(t)}}
	p, err := PlanDomain(context.Background(), r, in)
	if err != nil {
		t.Fatal(err)
	}
	publish(srv, p)
	fs, err := Check(context.Background(), r, in.Domain, CheckOptions{Ours: in.Ours, DKIM: in.DKIM})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		if f.Severity != SeverityInfo && f.Code != "dmarc-missing-rua" {
			t.Errorf("unexpected finding on the wizard's records: %+v", f)
		}
	}
	for _, code := range []string{"spf-lookups-ok", "dmarc-found", "dkim-ok"} {
		if findFinding(fs, code) == nil {
			t.Errorf("no %s finding: %v", code, findingCodes(fs))
		}
	}
	if f := findFinding(fs, "spf-lookups-ok"); !strings.Contains(f.Message, "4 of 10 DNS lookups") || !strings.Contains(f.Message, "include:_spf.google.com 2") {
		t.Errorf("SPF summary %q", f.Message)
	}
}

func TestCheckFindsProblems(t *testing.T) {
	ours := rsaKeyRecord(t, 2048)
	z := overLimitZone()
	z.txt("_dmarc.example.com", "v=DMARC1; p=quarantine; pct=10; sp=none; ri=3600; rua=mailto:dmarc@reports.example.net")
	z.txt("s1._domainkey.example.com", rsaKeyRecord(t, 2048)) // not ours
	z.txt("weak._domainkey.example.com", rsaKeyRecord(t, 1024))
	z.txt("bad._domainkey.example.com", "v=DKIM1; k=rsa; p=bm90IGEga2V5")
	_, r := serve(t, z)
	d := dmarcd.SenderDomain{Name: "example.com", IPs: []string{"192.0.2.1"}, RUA: []string{"dmarc@reports.example.net"}, Selectors: []string{"weak", "bad", "gone"}}
	fs, err := Check(context.Background(), r, d, CheckOptions{
		DKIM:           []DKIMPublicKey{{Selector: "s1", Value: ours}, {Selector: "s3", Value: ours}},
		IntendedPolicy: dmarcd.PolicyReject,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Severity{
		"spf-lookups":               SeverityError,
		"dmarc-pct-without-t":       SeverityWarning,
		"dmarc-weak-sp":             SeverityWarning,
		"dmarc-sp-below-rollout":    SeverityWarning,
		"dmarc-removed-ri":          SeverityWarning,
		"dmarc-report-unauthorized": SeverityError,
		"dkim-mismatch":             SeverityError,
		"dkim-weak-key":             SeverityWarning,
		"dkim-invalid":              SeverityError,
		"drift-unknown":             SeverityInfo, // the SPF merge is over the limit
	}
	for code, sev := range want {
		f := findFinding(fs, code)
		if f == nil || f.Severity != sev || f.Name == "" || f.Message == "" {
			t.Errorf("finding %s (%s): %+v; all: %v", code, sev, f, findingCodes(fs))
		}
	}
	var missing []string
	for _, f := range fs {
		if f.Code == "dkim-missing" {
			missing = append(missing, string(f.Severity)+" "+f.Name)
		}
	}
	if strings.Join(missing, ", ") != "error s3._domainkey.example.com, warning gone._domainkey.example.com" {
		t.Errorf("dkim-missing: %q; want ours an error, another sender's a warning", missing)
	}
	if f := findFinding(fs, "dmarc-report-unauthorized"); f.Name != "example.com._report._dmarc.reports.example.net" || !strings.Contains(f.Advice, "v=DMARC1") {
		t.Errorf("report authorization finding %+v", f)
	}
	if !HasErrors(fs) {
		t.Error("HasErrors = false")
	}
}

func TestCheckDriftAndMissingDMARC(t *testing.T) {
	z := ownDomainZone()
	_, r := serve(t, z)
	fs, err := Check(context.Background(), r, ownSetup.Domain, CheckOptions{Ours: ownSetup.Ours})
	if err != nil {
		t.Fatal(err)
	}
	if f := findFinding(fs, "dmarc-missing"); f == nil || f.Severity != SeverityError || !strings.Contains(f.Message, "_dmarc.example.com, _dmarc.com") {
		t.Errorf("dmarc-missing: %+v", f)
	}
	// The live SPF record lacks our servers.
	if f := findFinding(fs, "drift-spf"); f == nil || !strings.Contains(f.Message, "ip4:192.0.2.10") {
		t.Errorf("drift-spf: %+v; all %v", f, findingCodes(fs))
	}
	if f := findFinding(fs, "drift-dmarc"); f == nil {
		t.Errorf("no drift-dmarc: %v", findingCodes(fs))
	}
}

// TestCheckKeyRecord: the advice on a key record verifiers take; what
// they refuse is dnsrecord.ParseKey's error.
func TestCheckKeyRecord(t *testing.T) {
	cases := []struct {
		txt   string
		codes string
	}{
		{rsaKeyRecord(t, 2048), ""},
		{ed25519KeyRecord(t), ""},
		{rsaKeyRecord(t, 1024), "warning:dkim-weak-key"},
		{"v=DKIM1; p=", "warning:dkim-revoked"},
		{"v=DKIM1; t=y; p=", "warning:dkim-revoked"},
		{strings.Replace(ed25519KeyRecord(t), "; p=", "; t=y:s; p=", 1), "info:dkim-testing"},
	}
	for _, c := range cases {
		_, fs, err := checkKeyRecord(c.txt)
		if got := strings.Join(findingCodes(fs), " "); err != nil || got != c.codes {
			t.Errorf("checkKeyRecord(%.40q...) = %q, %v; want %q", c.txt, got, err, c.codes)
		}
	}
	// Verifiers refuse an RSA key under 1024 bits (RFC 8301 §3.2): the
	// check says the record does not parse.
	z := testZone{}
	z.txt("small._domainkey.example.com", smallRSAKeyRecord(t))
	_, r := serve(t, z)
	fs := checkDKIM(context.Background(), r, "example.com", "small", "")
	if f := findFinding(fs, "dkim-invalid"); f == nil || f.Severity != SeverityError || !strings.Contains(f.Message, "512 bits; verifiers refuse keys under 1024") {
		t.Errorf("a 512-bit key: %v", fs)
	}
}

// TestCheckUnderPSD: a domain covered only by its public suffix operator's
// record gets no alarm about the operator's report address, which it cannot
// change; an invalid sp= says the record acts as p=none.
func TestCheckUnderPSD(t *testing.T) {
	z := testZone{}
	z.txt("_dmarc.bank", "v=DMARC1; p=reject; psd=y; rua=mailto:psd@registry.example")
	z.txt("_dmarc.other.example", "v=DMARC1; p=reject; sp=rejected; rua=mailto:dmarc@other.example")
	_, r := serve(t, z)
	fs, err := Check(context.Background(), r, dmarcd.SenderDomain{Name: "shop.bank"}, CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if f := findFinding(fs, "dmarc-report-unauthorized"); f != nil {
		t.Errorf("an alarm about the PSD operator's report address: %+v", f)
	}
	if f := findFinding(fs, "dmarc-psd-record"); f == nil || !strings.Contains(f.Advice, "_dmarc.shop.bank") {
		t.Errorf("no word that the record is the PSD operator's: %v", findingCodes(fs))
	}
	fs, err = Check(context.Background(), r, dmarcd.SenderDomain{Name: "other.example"}, CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if f := findFinding(fs, "dmarc-invalid-sp"); f == nil || f.Severity != SeverityError || !strings.Contains(f.Message, "treat the whole record as p=none") {
		t.Errorf("invalid sp: %+v", f)
	}
	if f := findFinding(fs, "dmarc-found"); f == nil || !strings.Contains(f.Message, "applies none") {
		t.Errorf("the record found: %+v", f)
	}
}
