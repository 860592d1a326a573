package advisor

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/internal/testserver"
)

func TestTreeWalkTargets(t *testing.T) {
	cases := map[string][]string{
		"example.com":        {"example.com", "com"},
		"a.mail.example.com": {"a.mail.example.com", "mail.example.com", "example.com", "com"},
		"com":                {"com"},
		// 12 labels: the domain, then its last 7 labels, then one less.
		"a.b.c.d.e.f.g.h.i.j.example.com.": {
			"a.b.c.d.e.f.g.h.i.j.example.com",
			"f.g.h.i.j.example.com", "g.h.i.j.example.com", "h.i.j.example.com",
			"i.j.example.com", "j.example.com", "example.com", "com",
		},
		// 8 labels: x >= 8 shortens to 7, the same as removing one.
		"a.b.c.d.e.f.example.com": {
			"a.b.c.d.e.f.example.com", "b.c.d.e.f.example.com", "c.d.e.f.example.com",
			"d.e.f.example.com", "e.f.example.com", "f.example.com", "example.com", "com",
		},
	}
	for in, want := range cases {
		got := TreeWalkTargets(in)
		if !slices.Equal(got, want) {
			t.Errorf("TreeWalkTargets(%q) =\n %q\nwant\n %q", in, got, want)
		}
		if len(got) > TreeWalkMaxQueries {
			t.Errorf("TreeWalkTargets(%q): %d queries, over %d", in, len(got), TreeWalkMaxQueries)
		}
	}
}

func dmarcQueries(srv *testserver.DNSServer) []string {
	var out []string
	for _, q := range srv.Queries() {
		if strings.HasPrefix(q, "_dmarc.") {
			out = append(out, strings.TrimSuffix(strings.TrimPrefix(q, "_dmarc."), " TXT"))
		}
	}
	return out
}

func TestDiscoverFromDeepSubdomain(t *testing.T) {
	z := testZone{}
	z.txt("_dmarc.example.com", "v=DMARC1; p=reject; sp=quarantine; rua=mailto:dmarc@example.com")
	z.txt("_dmarc.mail.example.com", "not a DMARC record")
	srv, r := serve(t, z)
	domain := "a.b.c.d.e.f.g.h.i.mail.example.com"
	d, err := Discover(context.Background(), r, domain)
	if err != nil {
		t.Fatal(err)
	}
	if d.Record == nil || d.PolicyDomain != "example.com" || d.OrgDomain != "example.com" {
		t.Fatalf("discovery = %+v; want the record of example.com", d)
	}
	if d.Applied() != dmarcd.PolicyQuarantine {
		t.Errorf("applied policy %s; want sp=quarantine", d.Applied())
	}
	if got, want := dmarcQueries(srv), TreeWalkTargets(domain); !slices.Equal(got, want) {
		t.Errorf("queries\n %q\nwant\n %q", got, want)
	}
	if f := findFinding(d.Findings, "dmarc-inherited"); f == nil || !strings.Contains(f.Message, "sp=quarantine") {
		t.Errorf("findings %v; want dmarc-inherited", d.Findings)
	}

	// The domain's own record is the policy; the walk goes on to the
	// organizational domain.
	z.txt("_dmarc.shop.example.com", "v=DMARC1; p=none; rua=mailto:dmarc@example.com")
	_, r = serve(t, z)
	d, err = Discover(context.Background(), r, "shop.example.com")
	if err != nil || d.PolicyDomain != "shop.example.com" || d.OrgDomain != "example.com" || d.Applied() != dmarcd.PolicyNone {
		t.Errorf("discovery of shop.example.com = %+v, %v", d, err)
	}
	text, err := LookupDMARC(r)(context.Background(), "shop.example.com")
	if err != nil || text != "v=DMARC1; p=none; rua=mailto:dmarc@example.com" {
		t.Errorf("LookupDMARC = %q, %v", text, err)
	}
	// No record anywhere.
	d, err = Discover(context.Background(), r, "example.org")
	if err != nil || d.Record != nil || d.OrgDomain != "example.org" || len(d.Steps) != 2 {
		t.Errorf("discovery without records = %+v, %v", d, err)
	}
}

func TestDiscoverPSD(t *testing.T) {
	z := testZone{}
	z.txt("_dmarc.bank", "v=DMARC1; p=reject; psd=y; rua=mailto:psd@registry.bank")
	z.txt("_dmarc.example.com", "v=DMARC1; p=quarantine; rua=mailto:dmarc@example.com")
	z.txt("_dmarc.dept.example.com", "v=DMARC1; p=none; psd=n; rua=mailto:dmarc@example.com")
	srv, r := serve(t, z)

	// psd=y: the organizational domain is one label below the PSD.
	d, err := Discover(context.Background(), r, "mail.shop.bank")
	if err != nil || d.PolicyDomain != "bank" || d.OrgDomain != "shop.bank" {
		t.Errorf("discovery under a PSD = %+v, %v; want policy of bank, org shop.bank", d, err)
	}
	// psd=n stops the walk: example.com is never asked.
	before := len(dmarcQueries(srv))
	d, err = Discover(context.Background(), r, "x.dept.example.com")
	if err != nil || d.PolicyDomain != "dept.example.com" || d.OrgDomain != "dept.example.com" {
		t.Errorf("discovery under psd=n = %+v, %v", d, err)
	}
	if q := dmarcQueries(srv)[before:]; !slices.Equal(q, []string{"x.dept.example.com", "dept.example.com"}) {
		t.Errorf("queries %q; want the walk to stop at psd=n", q)
	}
	// A TXT record at _dmarc that is not a DMARC record is shown, with why
	// it is ignored.
	srv.Set("_dmarc.shop.bank.", txtRR("_dmarc.shop.bank.", "p=reject; v=DMARC1"))
	d, err = Discover(context.Background(), r, "shop.bank")
	if f := findFinding(d.Findings, "dmarc-not-a-record"); err != nil || f == nil || !strings.Contains(f.Message, "its first tag is p=") || d.PolicyDomain != "bank" {
		t.Errorf("a TXT record at _dmarc that is not DMARC: %+v, %v", d.Findings, err)
	}
	// psd=y on the domain itself does not stop the walk or make it its own
	// parent.
	d, err = Discover(context.Background(), r, "bank")
	if err != nil || d.PolicyDomain != "bank" || d.OrgDomain != "bank" {
		t.Errorf("discovery of the PSD itself = %+v, %v", d, err)
	}
}

func TestDiscoverMultipleAndFailures(t *testing.T) {
	z := testZone{}
	z.txt("_dmarc.sub.example.com", "v=DMARC1; p=none", "v=DMARC1; p=reject")
	z.txt("_dmarc.example.com", "v=DMARC1; p=quarantine; rua=mailto:dmarc@example.com")
	z.add("_dmarc.broken.example.net", testserver.DNSServFail("_dmarc.broken.example.net"))
	_, r := serve(t, z)

	d, err := Discover(context.Background(), r, "sub.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if f := findFinding(d.Findings, "dmarc-multiple"); f == nil || f.Name != "_dmarc.sub.example.com" || f.Severity != SeverityError {
		t.Errorf("findings %v; want dmarc-multiple at _dmarc.sub.example.com", d.Findings)
	}
	if d.PolicyDomain != "example.com" {
		t.Errorf("policy domain %q; want the parent's record, the two at sub.example.com discarded (RFC 9989 §4.8)", d.PolicyDomain)
	}

	d, err = Discover(context.Background(), r, "broken.example.net")
	if !errors.Is(err, ErrTemporary) || d == nil || len(d.Steps) != 1 || d.Steps[0].Error == "" {
		t.Errorf("discovery with SERVFAIL = %+v, %v; want a temporary error after one step", d, err)
	}
}

func TestReportAuthorization(t *testing.T) {
	z := testZone{}
	z.txt("_dmarc.example.com", "v=DMARC1; p=none")
	z.txt("example.com._report._dmarc.reports.example.net", "v=DMARC1")
	z.txt("*._report._dmarc.wild.example", "v=DMARC1")
	z.txt("example.com._report._dmarc.wrong.example", "something else")
	_, r := serve(t, z)
	auths, err := CheckReportAuthorization(context.Background(), r, "example.com", []string{
		"mailto:dmarc@example.com",
		"mailto:dmarc@sub.example.com",
		"mailto:agg@reports.example.net",
		"mailto:agg@wild.example",
		"mailto:agg@missing.example",
		"mailto:agg@wrong.example",
		"https://example.com/not-mail",
	})
	if err != nil {
		t.Fatal(err)
	}
	type res struct{ external, authorized bool }
	want := map[string]res{
		"dmarc@example.com":       {false, true},
		"dmarc@sub.example.com":   {false, true},
		"agg@reports.example.net": {true, true},
		"agg@wild.example":        {true, true},
		"agg@missing.example":     {true, false},
		"agg@wrong.example":       {true, false},
	}
	if len(auths) != len(want) {
		t.Errorf("%d results; want %d", len(auths), len(want))
	}
	for _, a := range auths {
		if w := want[a.Address]; a.External != w.external || a.Authorized != w.authorized {
			t.Errorf("%s: external %v authorized %v; want %v %v", a.Address, a.External, a.Authorized, w.external, w.authorized)
		}
		if a.External && a.Name != "example.com._report._dmarc."+a.ReportDomain {
			t.Errorf("%s: name %q", a.Address, a.Name)
		}
	}
}
