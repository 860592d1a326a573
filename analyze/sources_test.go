package analyze_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/advisor"
	"github.com/dmarcd/dmarcd/analyze"
	"github.com/dmarcd/dmarcd/internal/synth"
	"github.com/dmarcd/dmarcd/internal/testserver"
)

// reverseZone is the records of forward-confirmed (or not) reverse DNS:
// for each address its PTR name, and the name's A record when confirm.
func reverseZone(t *testing.T, zone map[string][]dns.RR, ip, name string, confirm bool) {
	t.Helper()
	arpa, err := dns.ReverseAddr(ip)
	if err != nil {
		t.Fatal(err)
	}
	zone[arpa] = append(zone[arpa], rr(t, arpa+" 300 IN PTR "+name+"."))
	if confirm {
		zone[name+"."] = append(zone[name+"."], rr(t, name+". 300 IN A "+ip))
	}
}

func rr(t *testing.T, s string) dns.RR {
	t.Helper()
	r, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var window = analyze.Window{From: "2026-11-01", To: "2026-11-07"}

// TestInventory classifies the senders of a domain that has every kind:
// its own servers, Google Workspace not set up (the classic
// misconfiguration), an unlisted CRM, an ESP that started mid-window, a
// forwarder with intact DKIM, a mailing list that breaks the signature, a
// printer that sends steadily without authentication, a spoofing campaign
// on new addresses every day, and a spoofer whose PTR claims Google but
// does not resolve back. Reverse DNS comes from a loopback DNS server.
func TestInventory(t *testing.T) {
	const domain = "gws.test"
	zone := map[string][]dns.RR{}
	reverseZone(t, zone, "209.85.220.41", "mail-sor-f41.google.com", true)
	reverseZone(t, zone, "198.51.100.20", "o1.mail.crmvendor.example", true)
	reverseZone(t, zone, "100.64.0.9", "mail-fake.google.com", false)
	resolver, err := advisor.NewResolver(testserver.DNS(t, zone), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	pass := func(d, sel string) []dmarcd.DKIMResult {
		return []dmarcd.DKIMResult{{Domain: d, Selector: sel, Result: "pass"}}
	}
	spf := func(d, result string) []dmarcd.SPFResult {
		return []dmarcd.SPFResult{{Domain: d, Scope: "mfrom", Result: result}}
	}
	s := testserver.SQLite(t)
	synth.Dataset{Domain: domain, From: window.From, To: window.To, Sources: []synth.Traffic{
		{IP: "192.0.2.1", PerDay: 600, DKIM: pass(domain, "s2026"), SPF: spf(domain, "pass")},
		{IP: "209.85.220.41", PerDay: 300, DKIM: pass("gws-test.20230601.gappssmtp.com", "20230601"), SPF: spf(domain, "softfail")},
		{IP: "198.51.100.20", PerDay: 50, DKIM: pass("crmvendor.example", "crm1"), SPF: spf("bounce.crmvendor.example", "pass")},
		{IP: "198.51.100.30", PerDay: 80, SPF: spf("bounces.esp.example", "pass"), From: "2026-11-04"},
		{IP: "203.0.113.1", PerDay: 40, DKIM: pass(domain, "s2026"), SPF: spf(domain, "fail")},
		{IP: "203.0.113.2", PerDay: 20, DKIM: []dmarcd.DKIMResult{{Domain: domain, Selector: "s2026", Result: "fail"},
			{Domain: "lists.example.org", Selector: "list", Result: "pass"}}, SPF: spf("lists.example.org", "pass")},
		{IP: "203.0.113.50", PerDay: 15, SPF: spf(domain, "fail")},
		{IP: "campaign", PerDay: 30, SPF: spf(domain, "fail"), Vary: func(day string) string { return "100.64.1." + strings.TrimPrefix(day[8:], "0") }},
		{IP: "100.64.0.9", PerDay: 25, SPF: spf(domain, "fail"), Until: "2026-11-02"},
		// A spoofer whose mail passes SPF for a throwaway domain of its own,
		// on one day.
		{IP: "100.64.2.1", PerDay: 40, SPF: spf("xk2j.throwaway.example", "pass"), From: "2026-11-03", Until: "2026-11-03"},
	}}.Write(t, s)

	c := &analyze.Classifier{Selectors: []string{"s2026"}, Resolver: resolver}
	c.Networks, _ = analyze.ParseNetworks([]string{"192.0.2.0/24"})
	inv, err := c.Inventory(context.Background(), s, domain, window)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, snd := range inv.Senders {
		got[snd.ID] = string(snd.Class)
		t.Logf("%-28s %-18s %6d msgs %5.1f%% pass  %s", snd.ID, snd.Class, snd.Messages, 100*snd.PassRate(), snd.Why)
	}
	want := map[string]string{
		"network:192.0.2.0/24":     "authorized",
		"service:google-workspace": "unconfigured",
		"domain:crmvendor.example": "unconfigured",
		"domain:esp.example":       "unconfigured",
		"ip:203.0.113.1":           "forwarder",
		"domain:example.org":       "forwarder",
		"ip:203.0.113.50":          "unconfigured",
		"ip:100.64.0.9":            "spoofing",
		"domain:throwaway.example": "spoofing",
	}
	for d := 1; d <= 7; d++ {
		want[fmt.Sprintf("ip:100.64.1.%d", d)] = "spoofing"
	}
	for id, class := range want {
		if got[id] != class {
			t.Errorf("%s: %q, want %q", id, got[id], class)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d senders, want %d: %v", len(got), len(want), got)
	}
	gws := find(t, inv, "service:google-workspace")
	if gws.Service == nil || gws.Service.SPFInclude != "_spf.google.com" || gws.OwnEnvelope != 2100 ||
		len(gws.PTRs) != 1 || gws.PTRs[0] != "mail-sor-f41.google.com" || gws.DKIMDomains[0].Domain != "gws-test.20230601.gappssmtp.com" {
		t.Errorf("Google Workspace: %+v", gws)
	}
	if esp := find(t, inv, "domain:esp.example"); esp.FirstDay != "2026-11-04" || esp.Days != 4 || esp.OwnEnvelope != 0 ||
		esp.SPFDomains[0].Domain != "bounces.esp.example" {
		t.Errorf("ESP: %+v", esp)
	}
	// The spoofer's PTR does not resolve back: shown, not trusted.
	for _, src := range inv.Sources {
		if src.IP == "100.64.0.9" && (src.PTR != "mail-fake.google.com" || src.PTRConfirmed) {
			t.Errorf("unconfirmed PTR: %+v", src)
		}
	}
	if inv.Messages == 0 || len(inv.Recent) != 3 || inv.Recent[0].Day != "2026-11-05" || inv.Recent[2].Day != "2026-11-07" {
		t.Errorf("inventory: %d messages, recent days %v", inv.Messages, inv.Recent)
	}
	// The ESP fails for 80 of the 1,135 messages of each recent day.
	if esp := find(t, inv, "domain:esp.example"); fmt.Sprint(esp.RecentFailing) != "[80 80 80]" || esp.RecentShare < 0.070 || esp.RecentShare > 0.071 {
		t.Errorf("ESP recent: %v, share %.4f", esp.RecentFailing, esp.RecentShare)
	}

	// The user says the CRM and the printer are not theirs.
	c.NotOurs = []string{"crmvendor.example", "203.0.113.50"}
	inv, err = c.Inventory(context.Background(), s, domain, window)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"domain:crmvendor.example", "ip:203.0.113.50"} {
		if snd := find(t, inv, id); snd.Class != analyze.Spoofing || !snd.NotOurs || !strings.Contains(snd.Why, "not yours") {
			t.Errorf("%s marked not ours: %s %v %s", id, snd.Class, snd.NotOurs, snd.Why)
		}
	}
	// Listed in the configuration, Google Workspace is authorized, and
	// failing.
	c.NotOurs, c.SPFIncludes = nil, []string{"_spf.google.com"}
	inv, err = c.Inventory(context.Background(), s, domain, window)
	if err != nil {
		t.Fatal(err)
	}
	if gws := find(t, inv, "service:google-workspace"); gws.Class != analyze.AuthorizedFailing {
		t.Errorf("Google Workspace with its include listed: %s (%s)", gws.Class, gws.Why)
	}
}

func find(t *testing.T, inv *analyze.Inventory, id string) *analyze.Sender {
	t.Helper()
	for i := range inv.Senders {
		if inv.Senders[i].ID == id {
			return &inv.Senders[i]
		}
	}
	t.Fatalf("no sender %s", id)
	return nil
}

// TestClassify checks the classes of single sources of the older synthetic
// data: listed, signing with a known selector, aligned SPF, DKIM surviving
// forwarding, and nothing.
func TestClassify(t *testing.T) {
	s := testserver.SQLite(t)
	synth.Dataset{Domain: "example.com", From: "2026-11-01", To: "2026-11-07", Sources: []synth.Traffic{
		{IP: "192.0.2.10", PerDay: 100},                                   // listed in the config, failing
		{IP: "198.51.100.1", PerDay: 100, DKIMOnly: true, Selector: "s1"}, // signs with our selector
		{IP: "198.51.100.2", PerDay: 100, Pass: true},                     // aligned SPF passes
		{IP: "203.0.113.1", PerDay: 100, DKIMOnly: true, Selector: "x"},   // DKIM survives, SPF fails
		{IP: "100.64.0.1", PerDay: 100, Until: "2026-11-02"},              // nobody, twice
	}}.Write(t, s)
	nets, err := analyze.ParseNetworks([]string{"192.0.2.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	c := &analyze.Classifier{Networks: nets, Selectors: []string{"S1"}}
	sources, err := c.Sources(context.Background(), s, "example.com", window)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]analyze.Class{
		"192.0.2.10": analyze.AuthorizedFailing, "198.51.100.1": analyze.Authorized, "198.51.100.2": analyze.Authorized,
		"203.0.113.1": analyze.Forwarder, "100.64.0.1": analyze.Spoofing,
	}
	if len(sources) != len(want) {
		t.Fatalf("%d sources, want %d", len(sources), len(want))
	}
	for _, src := range sources {
		if src.Class != want[src.IP] {
			t.Errorf("%s: %s (%s), want %s", src.IP, src.Class, src.Why, want[src.IP])
		}
		if days := map[bool]int64{true: 200, false: 700}[src.IP == "100.64.0.1"]; src.Messages != days {
			t.Errorf("%s: %d messages %s..%s", src.IP, src.Messages, src.FirstDay, src.LastDay)
		}
		if src.IP == "192.0.2.10" && (src.FirstFailDay != "2026-11-01" || src.Days != 7) {
			t.Errorf("first failure %q, %d days", src.FirstFailDay, src.Days)
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

// TestCatalogue reads the shipped catalogue and refuses bad ones.
func TestCatalogue(t *testing.T) {
	c := analyze.DefaultCatalogue
	if len(c.Services) < 20 || c.Updated == "" {
		t.Fatalf("%d services, updated %q", len(c.Services), c.Updated)
	}
	for _, id := range []string{"google-workspace", "microsoft-365", "amazon-ses", "sendgrid", "mailchimp", "mandrill", "mailgun",
		"postmark", "sparkpost", "salesforce", "hubspot", "zendesk", "freshdesk", "brevo"} {
		if c.ByID(id) == nil {
			t.Errorf("no %s", id)
		}
	}
	for _, bad := range []string{
		"format = 2\n",
		"format = 1\ncolour = 1\n",
		"format = 1\n[[service]]\nid = \"x\"\nname = \"X\"\nkind = \"esp\"\n",                                   // nothing to recognise it by
		"format = 1\n[[service]]\nid = \"X Y\"\nname = \"X\"\nkind = \"esp\"\ndkim_domains = [\"x.example\"]\n", // bad id
		"format = 1\n[[service]]\nid = \"x\"\nname = \"X\"\nkind = \"bank\"\ndkim_domains = [\"x.example\"]\n",
	} {
		if _, err := analyze.ParseCatalogue([]byte(bad)); err == nil {
			t.Errorf("accepted: %q", bad)
		}
	}
	// A user's [[sender]] replaces the catalogue's entry of the same id.
	mine, err := c.With(analyze.Service{ID: "sendgrid", Name: "Our SendGrid", Kind: analyze.KindESP, DKIMDomains: []string{"SendGrid.NET."}})
	if err != nil || mine.ByID("sendgrid").Name != "Our SendGrid" || mine.ByID("sendgrid").DKIMDomains[0] != "sendgrid.net" ||
		len(mine.Services) != len(c.Services) || c.ByID("sendgrid").Name != "SendGrid" {
		t.Errorf("With: %v", err)
	}
}
