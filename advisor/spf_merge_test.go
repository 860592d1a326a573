package advisor

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
)

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
