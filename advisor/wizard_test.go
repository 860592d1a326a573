package advisor

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dmarcd/dmarcd"
)

// Peers from Debian's packages (installed by .ci/run).
const (
	namedCheckzone = "/usr/bin/named-checkzone" // bind9-utils
	pyspfPython    = "/usr/bin/python3"         // with python3-spf
	pyspfModule    = "/usr/lib/python3/dist-packages/spf.py"
	dnspython      = "/usr/lib/python3/dist-packages/dns/resolver.py" // python3-dnspython, which the script uses
)

func rsaKeyRecord(t *testing.T, bits int) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
}

// smallRSAKeyRecord publishes an RSA modulus of 512 bits, which verifiers
// refuse (RFC 8301 §3.2); Go no longer generates such keys, and publishing
// one needs no factors.
func smallRSAKeyRecord(t *testing.T) string {
	t.Helper()
	n := new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), 511), big.NewInt(12345))
	der, err := x509.MarshalPKIXPublicKey(&rsa.PublicKey{N: n, E: 65537})
	if err != nil {
		t.Fatal(err)
	}
	return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
}

func ed25519KeyRecord(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)
}

// ownDomainZone is example.com before the wizard: an SPF record of its own
// servers and Google, no DMARC record.
func ownDomainZone() testZone {
	z := testZone{}
	z.txt("example.com", "v=spf1 mx include:_spf.google.com -all", "google-site-verification=abc123")
	z.mx("example.com", "mx.example.com")
	z.a("mx.example.com", "192.0.2.25")
	z.aaaa("mx.example.com", "2001:db8::25")
	z.txt("_spf.google.com", "v=spf1 include:_netblocks.google.com ~all")
	z.txt("_netblocks.google.com", "v=spf1 ip4:35.190.247.0/24 ip4:64.233.160.0/19 ~all")
	z.txt("spf.crm.example", "v=spf1 ip4:203.0.113.0/24 -all")
	return z
}

var ownSetup = DomainSetup{
	Domain: dmarcd.SenderDomain{
		Name:        "example.com",
		Mode:        dmarcd.ModeOwn,
		IPs:         []string{"198.51.100.0/28"},
		SPFIncludes: []string{"spf.crm.example"},
		RUA:         []string{"dmarc@reports.example.net"},
	},
	Ours: SPFAdditions{IPs: []string{"192.0.2.10", "2001:db8::10"}},
}

func TestPlanOwnDomain(t *testing.T) {
	srv, r := serve(t, ownDomainZone())
	in := ownSetup
	in.DKIM = []DKIMPublicKey{{Selector: "dmarcd2026", Value: rsaKeyRecord(t, 2048)}}
	p, err := PlanDomain(context.Background(), r, in)
	if err != nil {
		t.Fatal(err)
	}
	byPurpose := map[string]PlannedRecord{}
	for _, pr := range p.Records {
		byPurpose[pr.Purpose] = pr
	}
	if len(p.Records) != 4 {
		t.Errorf("%d records; want SPF, DKIM, DMARC and the report authorization: %+v", len(p.Records), p.Records)
	}
	spf := byPurpose[PurposeSPF]
	wantSPF := "v=spf1 mx include:_spf.google.com ip4:192.0.2.10 ip6:2001:db8::10 ip4:198.51.100.0/28 include:spf.crm.example -all"
	if spf.Name != "example.com" || spf.Value != wantSPF || spf.Host() != "@" {
		t.Errorf("SPF %s (%s) = %q; want %q at @", spf.Name, spf.Host(), spf.Value, wantSPF)
	}
	if p.SPF == nil || p.SPF.Lookups != 4 || CostSummary(p.SPF.Costs) != "include:_spf.google.com 2, mx 1, include:spf.crm.example 1" {
		t.Errorf("SPF costs: %+v", p.SPF)
	}
	dkim := byPurpose[PurposeDKIM]
	if dkim.Name != "dmarcd2026._domainkey.example.com" || len(dkim.Strings) < 2 || strings.Join(dkim.Strings, "") != in.DKIM[0].Value {
		t.Errorf("DKIM record %s: %d strings", dkim.Name, len(dkim.Strings))
	}
	dm := byPurpose[PurposeDMARC]
	if dm.Name != "_dmarc.example.com" || dm.Value != "v=DMARC1; p=none; rua=mailto:dmarc@reports.example.net" {
		t.Errorf("DMARC %s = %q", dm.Name, dm.Value)
	}
	auth := byPurpose[PurposeReportAuthorization]
	if auth.Name != "example.com._report._dmarc.reports.example.net" || auth.Value != "v=DMARC1" || auth.Zone != "reports.example.net" {
		t.Errorf("report authorization %+v", auth)
	}
	if zs := p.Zones(); len(zs) != 2 || zs[0] != "example.com" || zs[1] != "reports.example.net" {
		t.Errorf("zones %q", zs)
	}

	// Drift: nothing of it is live but the old SPF record.
	diffs, err := Drift(context.Background(), r, p)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{}
	for _, d := range diffs {
		kinds[d.Purpose] = d.Kind
	}
	if kinds[PurposeSPF] != DriftDiffers || kinds[PurposeDKIM] != DriftMissing || kinds[PurposeDMARC] != DriftMissing || kinds[PurposeReportAuthorization] != DriftMissing {
		t.Errorf("drift before publishing: %v", diffs)
	}
	// Published: no drift, and the wizard run again changes nothing.
	publish(srv, p)
	if diffs, err := Drift(context.Background(), r, p); err != nil || len(diffs) != 0 {
		t.Errorf("drift after publishing: %v, %v", diffs, err)
	}
	again, err := PlanDomain(context.Background(), r, in)
	if err != nil {
		t.Fatal(err)
	}
	for i, pr := range again.Records {
		if pr.Value != p.Records[i].Value {
			t.Errorf("second run: %s = %q; first run %q", pr.Name, pr.Value, p.Records[i].Value)
		}
	}
	// Someone edits the live DMARC record and adds an SPF record.
	srv.Set("_dmarc.example.com", txtRR("_dmarc.example.com", "v=DMARC1; p=none"))
	srv.Set("example.com", txtRR("example.com", wantSPF), txtRR("example.com", "v=spf1 -all"))
	diffs, _ = Drift(context.Background(), r, p)
	kinds = map[string]string{}
	for _, d := range diffs {
		kinds[d.Purpose] = d.Kind
	}
	if len(diffs) != 2 || kinds[PurposeDMARC] != DriftDiffers || kinds[PurposeSPF] != DriftSeveral {
		t.Errorf("drift after edits: %v", diffs)
	}
	for _, d := range diffs {
		if !strings.Contains(d.String(), d.Name) {
			t.Errorf("difference text %q does not name %s", d.String(), d.Name)
		}
	}
}

func TestPlanKeepsLiveDMARC(t *testing.T) {
	z := ownDomainZone()
	z.txt("_dmarc.example.com", "v=DMARC1; p=quarantine; pct=25; t=y; rua=mailto:old@example.com")
	z.txt("example.com._report._dmarc.reports.example.net", "v=DMARC1")
	_, r := serve(t, z)
	p, err := PlanDomain(context.Background(), r, ownSetup)
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range p.Records {
		if pr.Purpose == PurposeDMARC && pr.Value != "v=DMARC1; p=quarantine; pct=25; t=y; rua=mailto:old@example.com,mailto:dmarc@reports.example.net" {
			t.Errorf("DMARC %q; want the live policy kept and our rua added", pr.Value)
		}
	}
	if !strings.Contains(strings.Join(p.Notes, " "), "quarantine 25%") {
		t.Errorf("notes %q do not say the live policy is kept", p.Notes)
	}
}

// TestPlanSaysOnlyTrueThings: the wizard writes t=y beside a kept pct below
// 100, keeps a report address's size limit, warns about ?all and an invalid
// p=, and writes no first record without a report address.
func TestPlanSaysOnlyTrueThings(t *testing.T) {
	z := ownDomainZone()
	delete(z, "example.com.")
	z.txt("example.com", "v=spf1 mx ?all")
	z.mx("example.com", "mx.example.com")
	z.txt("_dmarc.example.com", "v=DMARC1; p=quarantine; pct=10; rua=mailto:old@example.com!10m")
	z.txt("example.com._report._dmarc.reports.example.net", "v=DMARC1")
	srv, r := serve(t, z)
	p, err := PlanDomain(context.Background(), r, ownSetup)
	if err != nil {
		t.Fatal(err)
	}
	notes := strings.Join(p.Notes, "\n")
	for _, pr := range p.Records {
		if pr.Purpose == PurposeDMARC && pr.Value != "v=DMARC1; p=quarantine; pct=10; t=y; rua=mailto:old@example.com!10m,mailto:dmarc@reports.example.net" {
			t.Errorf("DMARC %q; want t=y beside pct and the size limit kept", pr.Value)
		}
	}
	for _, want := range []string{"t=y is added beside pct=10", "careful, the live record's all is kept", "?all"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	// An invalid p= makes the live record act as p=none: said, and
	// dropped.
	srv.Set("_dmarc.example.com.", txtRR("_dmarc.example.com.", "v=DMARC1; p=rejected; rua=mailto:old@example.com"))
	p, err = PlanDomain(context.Background(), r, ownSetup)
	if err != nil || !strings.Contains(strings.Join(p.Notes, " "), "p=rejected is not a policy") {
		t.Errorf("an invalid p: %v %q", err, p.Notes)
	}
	// No first record without a report address.
	srv.Set("_dmarc.example.com.")
	setup := ownSetup
	setup.Domain.RUA = nil
	if _, err := PlanDomain(context.Background(), r, setup); !errors.Is(err, ErrNoReportAddress) {
		t.Errorf("no report address: %v", err)
	}
}

func TestPlanSubdomain(t *testing.T) {
	z := ownDomainZone()
	z.txt("_dmarc.example.com", "v=DMARC1; p=reject; rua=mailto:dmarc@example.com")
	_, r := serve(t, z)
	in := DomainSetup{
		Domain: dmarcd.SenderDomain{Name: "Newsletter.Example.com", Mode: dmarcd.ModeSubdomain, RUA: []string{"mailto:dmarc@example.com"}},
		Ours:   SPFAdditions{IPs: []string{"192.0.2.10"}},
		DKIM:   []DKIMPublicKey{{Selector: "news", Value: ed25519KeyRecord(t)}},
	}
	p, err := PlanDomain(context.Background(), r, in)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"newsletter.example.com":                 "v=spf1 ip4:192.0.2.10 ~all",
		"_dmarc.newsletter.example.com":          "v=DMARC1; p=none; rua=mailto:dmarc@example.com",
		"news._domainkey.newsletter.example.com": in.DKIM[0].Value,
	}
	if len(p.Records) != len(want) {
		t.Errorf("%d records; want %d (no report authorization: the address is in the parent)", len(p.Records), len(want))
	}
	for _, pr := range p.Records {
		if want[pr.Name] != pr.Value || pr.Zone != "example.com" {
			t.Errorf("%s in zone %s = %q; want %q in example.com", pr.Name, pr.Zone, pr.Value, want[pr.Name])
		}
		if pr.Name == "example.com" || pr.Name == "_dmarc.example.com" {
			t.Errorf("the parent's record %s is touched", pr.Name)
		}
	}
	notes := strings.Join(p.Notes, " ")
	for _, says := range []string{"example.com and its records are left alone", "p=reject of example.com"} {
		if !strings.Contains(notes, says) {
			t.Errorf("notes %q do not say %q", notes, says)
		}
	}
	if _, err := PlanDomain(context.Background(), r, DomainSetup{Domain: dmarcd.SenderDomain{Name: "example.com", Mode: dmarcd.ModeSubdomain}}); err == nil {
		t.Error("mode subdomain for example.com: no error")
	}
}

func TestPlanSPFOverLimit(t *testing.T) {
	_, r := serve(t, overLimitZone())
	p, err := PlanDomain(context.Background(), r, DomainSetup{Domain: dmarcd.SenderDomain{Name: "example.com", IPs: []string{"192.0.2.1"}}})
	var le *SPFLimitError
	if !errors.As(err, &le) || p == nil || p.SPF == nil {
		t.Fatalf("PlanDomain over the SPF limit: %v", err)
	}
	if !strings.Contains(err.Error(), "include:_spf.crm.example 6") {
		t.Errorf("error %q does not name the costly include", err)
	}
}

func TestPlanOutputs(t *testing.T) {
	_, r := serve(t, ownDomainZone())
	in := ownSetup
	in.DKIM = []DKIMPublicKey{{Selector: "s1", Value: rsaKeyRecord(t, 2048)}}
	p, err := PlanDomain(context.Background(), r, in)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := p.WriteBIND(&b, "example.com"); err != nil {
		t.Fatal(err)
	}
	bind := b.String()
	for _, want := range []string{"$ORIGIN example.com.\n", "\n@\t3600\tIN\tTXT\t\"v=spf1 mx ", "\n_dmarc\t3600\tIN\tTXT\t\"v=DMARC1; p=none; rua=mailto:dmarc@reports.example.net\"\n", "\ns1._domainkey\t3600\tIN\tTXT\t\"v=DKIM1; k=rsa; p="} {
		if !strings.Contains(bind, want) {
			t.Errorf("BIND output lacks %q:\n%s", want, bind)
		}
	}
	if strings.Contains(bind, "_report") {
		t.Errorf("the BIND lines of example.com hold the report domain's record:\n%s", bind)
	}
	b.Reset()
	p.WriteBIND(&b, "")
	if !strings.Contains(b.String(), "\nexample.com._report._dmarc.reports.example.net.\t3600\tIN\tTXT\t\"v=DMARC1\"\n") {
		t.Errorf("absolute BIND output:\n%s", b.String())
	}

	b.Reset()
	if err := p.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	table := b.String()
	for _, want := range []string{"ZONE", "_dmarc ", "s1._domainkey", "reports.example.net  example.com._report._dmarc", "consoles that want one string each"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}

	b.Reset()
	if err := p.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var back Plan
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || len(back.Records) != len(p.Records) || back.Records[0].Value != p.Records[0].Value || back.SPF.Lookups != p.SPF.Lookups {
		t.Errorf("JSON round trip: %v\n%s", err, b.String())
	}
}

// TestPlanPassesNamedCheckzone loads the BIND lines of the wizard into
// zones and has BIND's named-checkzone check them.
func TestPlanPassesNamedCheckzone(t *testing.T) {
	needTool(t, namedCheckzone, "bind9-utils")
	z := ownDomainZone()
	z.txt("_dmarc.example.com", "v=DMARC1; p=reject; rua=mailto:dmarc@example.com")
	_, r := serve(t, z)
	in := ownSetup
	in.DKIM = []DKIMPublicKey{{Selector: "s1", Value: rsaKeyRecord(t, 2048)}, {Selector: "s2", Value: ed25519KeyRecord(t)}}
	own, err := PlanDomain(context.Background(), r, in)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := PlanDomain(context.Background(), r, DomainSetup{
		Domain: dmarcd.SenderDomain{Name: "news.example.com", Mode: dmarcd.ModeSubdomain, RUA: []string{"dmarc@example.com"}},
		Ours:   SPFAdditions{IPs: []string{"192.0.2.10", "2001:db8::/48"}, Includes: []string{"spf.crm.example"}},
		DKIM:   []DKIMPublicKey{{Selector: "news", Value: rsaKeyRecord(t, 3072)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	check := func(zone string, plans ...*Plan) {
		t.Helper()
		var includes strings.Builder
		for i, p := range plans {
			path := filepath.Join(dir, fmt.Sprintf("%s.%d.inc", zone, i))
			var b bytes.Buffer
			if err := p.WriteBIND(&b, zone); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&includes, "$INCLUDE %s\n", path)
		}
		zoneFile := filepath.Join(dir, zone+".zone")
		text := fmt.Sprintf("$TTL 3600\n$ORIGIN %[1]s.\n@ IN SOA ns1.%[1]s. hostmaster.%[1]s. 1 7200 3600 1209600 3600\n@ IN NS ns1.%[1]s.\nns1 IN A 192.0.2.53\n%[2]s",
			zone, includes.String())
		if err := os.WriteFile(zoneFile, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		out := runTool(t, namedCheckzone, "-k", "fail", "-i", "full", zone, zoneFile)
		if !strings.Contains(out, "OK") || strings.Contains(strings.ToLower(out), "warning") || strings.Contains(out, "ignoring") {
			t.Errorf("named-checkzone %s:\n%s", zone, out)
		}
	}
	check("example.com", own, sub)
	check("reports.example.net", own)
}

// TestPlanSPFPassesPyspf has pyspf (python3-spf) evaluate the SPF record
// the wizard writes, published on the test DNS server with the records it
// includes: our addresses and the other senders pass, others soft-fail,
// and nothing is a permerror.
func TestPlanSPFPassesPyspf(t *testing.T) {
	needTool(t, pyspfModule, "python3-spf")
	needTool(t, pyspfPython, "python3")
	needTool(t, dnspython, "python3-dnspython")
	srv, r := serve(t, ownDomainZone())
	p, err := PlanDomain(context.Background(), r, ownSetup)
	if err != nil {
		t.Fatal(err)
	}
	publish(srv, p)
	_, port, _ := net.SplitHostPort(srv.Addr)
	script := `
import sys
import dns.resolver
import spf
res = dns.resolver.Resolver(configure=False)
res.nameservers = ["127.0.0.1"]
res.port = int(sys.argv[1])
dns.resolver.default_resolver = res
for arg in sys.argv[2:]:
    ip = arg
    q = spf.query(i=ip, s="postmaster@example.com", h="mail.example.com", strict=2)
    result, code, text = q.check()
    print(ip, result, text.replace("\n", " "))
`
	cases := map[string]string{
		"192.0.2.10":     "pass", // ours
		"2001:db8::10":   "pass", // ours, IPv6
		"198.51.100.9":   "pass", // another sender of the domain
		"203.0.113.77":   "pass", // through include:spf.crm.example
		"192.0.2.25":     "pass", // mx, kept from the live record
		"64.233.160.1":   "pass", // through include:_spf.google.com, kept
		"192.0.2.99":     "fail", // nobody's: the live -all
		"2001:db8:ff::1": "fail",
	}
	args := []string{"-c", script, port}
	for ip := range cases {
		args = append(args, ip)
	}
	out := runTool(t, pyspfPython, args...)
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		want, ok := cases[f[0]]
		if !ok {
			continue
		}
		seen++
		if f[1] != want {
			t.Errorf("pyspf for %s: %s; want %s\n%s", f[0], line, want, p.Records[0].Value)
		}
	}
	if seen != len(cases) {
		t.Errorf("pyspf answered %d of %d addresses:\n%s", seen, len(cases), out)
	}

	// The subdomain record alone, with ~all.
	sub, err := PlanDomain(context.Background(), r, DomainSetup{
		Domain: dmarcd.SenderDomain{Name: "news.example.com", Mode: dmarcd.ModeSubdomain, RUA: []string{"dmarc@example.com"}},
		Ours:   SPFAdditions{IPs: []string{"192.0.2.10"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	publish(srv, sub)
	script = strings.Replace(script, "postmaster@example.com", "postmaster@news.example.com", 1)
	out = runTool(t, pyspfPython, "-c", script, port, "192.0.2.10", "192.0.2.11")
	if !strings.Contains(out, "192.0.2.10 pass") || !strings.Contains(out, "192.0.2.11 softfail") {
		t.Errorf("pyspf for news.example.com:\n%s", out)
	}
	// The peer does catch a broken record.
	srv.Set("bad.example.com", txtRR("bad.example.com", "v=spf1 ip4:192.0.2.300 -all"))
	script = strings.Replace(script, "postmaster@news.example.com", "postmaster@bad.example.com", 1)
	if out = runTool(t, pyspfPython, "-c", script, port, "192.0.2.10"); !strings.Contains(out, "192.0.2.10 permerror") {
		t.Errorf("pyspf on a broken record:\n%s", out)
	}
}
