package analyze_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/dmarcd/dmarcd/analyze"
	"github.com/dmarcd/dmarcd/internal/synth"
	"github.com/dmarcd/dmarcd/internal/testserver"
)

// fakePTR answers reverse lookups from a map.
type fakePTR map[string]string

func (f fakePTR) PTR(_ context.Context, ip string) ([]string, error) {
	if name, ok := f[ip]; ok {
		return []string{name + "."}, nil
	}
	return nil, fmt.Errorf("no PTR for %s", ip)
}

func TestClassify(t *testing.T) {
	s := testserver.SQLite(t)
	synth.Dataset{Domain: "example.com", From: "2026-11-01", To: "2026-11-07", Sources: []synth.Traffic{
		{IP: "192.0.2.10", PerDay: 100},                                   // listed in the config, failing
		{IP: "198.51.100.1", PerDay: 100, DKIMOnly: true, Selector: "s1"}, // signs with our selector
		{IP: "198.51.100.2", PerDay: 100, Pass: true},                     // aligned SPF passes
		{IP: "203.0.113.1", PerDay: 100, DKIMOnly: true, Selector: "x"},   // DKIM survives, SPF fails
		{IP: "203.0.113.2", PerDay: 100},                                  // a list server by name
		{IP: "100.64.0.1", PerDay: 100},                                   // nobody
	}}.Write(t, s)
	nets, err := analyze.ParseNetworks([]string{"192.0.2.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	c := &analyze.Classifier{Networks: nets, Selectors: []string{"S1"},
		Resolver: fakePTR{"203.0.113.2": "mail-lists.groups.io", "100.64.0.1": "host-1.dsl.example.net"}}
	sources, err := c.Sources(context.Background(), s, "example.com", analyze.Window{From: "2026-11-01", To: "2026-11-07"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]analyze.Class{
		"192.0.2.10": analyze.Authorized, "198.51.100.1": analyze.Authorized, "198.51.100.2": analyze.Authorized,
		"203.0.113.1": analyze.Forwarder, "203.0.113.2": analyze.Forwarder, "100.64.0.1": analyze.Unknown,
	}
	if len(sources) != len(want) {
		t.Fatalf("%d sources, want %d", len(sources), len(want))
	}
	for _, src := range sources {
		if src.Class != want[src.IP] {
			t.Errorf("%s: %s (%s), want %s", src.IP, src.Class, src.Why, want[src.IP])
		}
		if src.Messages != 700 || src.FirstDay != "2026-11-01" || src.LastDay != "2026-11-07" {
			t.Errorf("%s: %d messages %s..%s", src.IP, src.Messages, src.FirstDay, src.LastDay)
		}
	}
	for _, src := range sources {
		if src.IP == "100.64.0.1" && (src.PTR != "host-1.dsl.example.net" || src.BaseDomain != "example.net") {
			t.Errorf("reverse DNS: %q, base %q", src.PTR, src.BaseDomain)
		}
		if src.IP == "192.0.2.10" && src.FirstFailDay != "2026-11-01" {
			t.Errorf("first failure %q", src.FirstFailDay)
		}
	}
}

func TestParseNetworks(t *testing.T) {
	nets, err := analyze.ParseNetworks([]string{"192.0.2.7", "2001:db8::/32", " 198.51.100.9/24 "})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(nets) != "[192.0.2.7/32 2001:db8::/32 198.51.100.0/24]" {
		t.Errorf("got %v", nets)
	}
	if _, err := analyze.ParseNetworks([]string{"mail.example.com"}); err == nil {
		t.Error("a host name was accepted")
	}
}
