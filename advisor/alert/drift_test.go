package alert

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/advisor"
	"github.com/dmarcd/dmarcd/internal/testserver"
)

func rr(t *testing.T, s string) dns.RR {
	t.Helper()
	r, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestDNSDrift: records as recommended are quiet; a lost SPF entry and a
// DMARC record that no longer reports to us are drift; a policy that moved
// with the rollout is not.
func TestDNSDrift(t *testing.T) {
	srv := testserver.StartDNS(t, map[string][]dns.RR{
		"example.com.":        {rr(t, `example.com. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 ~all"`)},
		"_dmarc.example.com.": {rr(t, `_dmarc.example.com. 300 IN TXT "v=DMARC1; p=quarantine; pct=25; t=y; rua=mailto:dmarc@example.com"`)},
	})
	r, err := advisor.NewResolver(srv.Addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	d := dmarcd.SenderDomain{Name: "example.com", Mode: dmarcd.ModeOwn, RUA: []string{"dmarc@example.com"}}
	detect := DNSDrift(r, []dmarcd.SenderDomain{d}, advisor.SPFAdditions{IPs: []string{"192.0.2.0/24"}},
		func(dmarcd.SenderDomain) ([]advisor.DKIMPublicKey, error) { return nil, nil })
	run := func() string {
		as, err := detect.Detect(context.Background(), time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(kinds(as), ",")
	}
	if got := run(); got != "" {
		t.Fatalf("drift on records as recommended: %s", got)
	}
	srv.Set("example.com.", rr(t, `example.com. 300 IN TXT "v=spf1 include:_spf.example.net ~all"`))
	srv.Set("_spf.example.net.", rr(t, `_spf.example.net. 300 IN TXT "v=spf1 ip4:198.51.100.0/24 -all"`))
	srv.Set("_dmarc.example.com.", rr(t, `_dmarc.example.com. 300 IN TXT "v=DMARC1; p=quarantine; rua=mailto:someone@example.org"`))
	// The live record now also sends reports to example.org, which has not
	// authorized them: that is drift too.
	if got := run(); got != "dns-drift:spf:example.com,dns-drift:dmarc:_dmarc.example.com,dns-drift:report-authorization:example.com._report._dmarc.example.org" {
		t.Fatalf("drift: %s", got)
	}
}

func TestKeysDue(t *testing.T) {
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	advice := []advisor.KeyAdvice{
		{Key: dmarcd.Key{Domain: "example.com", Selector: "s2026a", State: dmarcd.KeyCurrent, Created: created}, RotationDue: true, Reason: "older than 180 days"},
		{Key: dmarcd.Key{Domain: "example.com", Selector: "s2026b", State: dmarcd.KeyPublished}, Next: dmarcd.KeySigning, Ready: true, Reason: "published 3 days"},
		{Key: dmarcd.Key{Domain: "example.com", Selector: "s2025", State: dmarcd.KeyRetired}, Next: dmarcd.KeyRevoked, Reason: "grace period until 2026-12-01"},
	}
	got, err := KeysDue(func(context.Context) ([]advisor.KeyAdvice, error) { return advice, nil }).Detect(context.Background(), time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if k := strings.Join(kinds(got), ","); k != "key-due:s2026a,key-due:s2026b:signing" {
		t.Errorf("got %s", k)
	}
}
