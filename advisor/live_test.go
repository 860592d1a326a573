package advisor

import (
	"context"
	"strings"
	"testing"
)

// TestCheckPlanned: a planned record against what DNS publishes: missing,
// the same (in another order or case), or different, with what differs.
func TestCheckPlanned(t *testing.T) {
	key := rsaKeyRecord(t, 2048)
	other := rsaKeyRecord(t, 2048)
	zone := map[string][]string{
		"example.com":               {"v=spf1 ip4:192.0.2.10 include:_spf.crm.example -all", "google-site-verification=x"},
		"_dmarc.example.com":        {"v=DMARC1; p=none; rua=mailto:dmarc@example.com"},
		"s1._domainkey.example.com": {key},
		"s2._domainkey.example.com": {other},
		"news.example.com":          {"V=SPF1 include:_spf.crm.example ip4:192.0.2.10 -ALL"},
		"_dmarc.news.example.com":   {"v=DMARC1; p=quarantine; pct=5"},
		"_dmarc.twice.example.com":  {"v=DMARC1; p=none", "v=DMARC1; p=none"},
	}
	lookup := func(_ context.Context, name string) ([]string, error) { return zone[name], nil }
	for _, c := range []struct {
		rec    PlannedRecord
		status string
		diff   string
	}{
		{PlannedRecord{Purpose: PurposeSPF, Name: "example.com", Value: "v=spf1 ip4:192.0.2.10 include:_spf.crm.example -all"}, LiveMatches, ""},
		{PlannedRecord{Purpose: PurposeSPF, Name: "news.example.com", Value: "v=spf1 ip4:192.0.2.10 include:_spf.crm.example -all"}, LiveMatches, ""},
		{PlannedRecord{Purpose: PurposeSPF, Name: "example.com", Value: "v=spf1 ip4:192.0.2.10 ip4:198.51.100.0/24 include:_spf.crm.example ~all"}, LiveDiffers, "missing ip4:198.51.100.0/24 ~all; not planned -all"},
		{PlannedRecord{Purpose: PurposeSPF, Name: "missing.example.com", Value: "v=spf1 -all"}, LiveMissing, ""},
		{PlannedRecord{Purpose: PurposeDMARC, Name: "_dmarc.example.com", Value: "v=DMARC1;p=none;rua=mailto:dmarc@example.com"}, LiveMatches, ""},
		{PlannedRecord{Purpose: PurposeDMARC, Name: "_dmarc.news.example.com", Value: "v=DMARC1; p=none; rua=mailto:dmarc@example.com"}, LiveDiffers, "missing p=none rua=mailto:dmarc@example.com; not planned p=quarantine pct=5"},
		{PlannedRecord{Purpose: PurposeDMARC, Name: "_dmarc.twice.example.com", Value: "v=DMARC1; p=none"}, LiveDiffers, "several records"},
		{PlannedRecord{Purpose: PurposeDKIM, Name: "s1._domainkey.example.com", Value: key}, LiveMatches, ""},
		{PlannedRecord{Purpose: PurposeDKIM, Name: "s2._domainkey.example.com", Value: key}, LiveDiffers, "another key"},
	} {
		got, err := CheckPlanned(context.Background(), lookup, c.rec)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != c.status || !strings.Contains(got.Diff, c.diff) {
			t.Errorf("%s %s: %+v, want %s %q", c.rec.Purpose, c.rec.Name, got, c.status, c.diff)
		}
	}
}
