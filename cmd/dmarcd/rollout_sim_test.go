package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/advisor"
	"github.com/dmarcd/dmarcd/internal/dnsrecord"
	"github.com/dmarcd/dmarcd/internal/synth"
	"github.com/dmarcd/dmarcd/internal/testserver"
	"github.com/dmarcd/dmarcd/schema/sqlite"
)

// The closed-loop rollout simulation: each Monday `dmarcd advise --at`
// runs as a user runs it, the record it recommends is published in a
// loopback DNS server, and the next week's reports carry that record as
// their policy_published (in each reporter's format: RFC 7489 reporters
// write pct, RFC 9990 reporters write testing) with the dispositions
// receivers apply under it. The scenarios are the mail streams postmasters
// meet; every run is checked against one invariant and its own path.

const simDomain = "gws.test"

// simStart is the Monday of the first simulated week.
var simStart = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

// simLimit is the advisor's default limit on the failing mail of
// legitimate senders, which the invariant checks.
const simLimit = advisor.DefaultMaxLegitimateFailing

// simSender is one sender of a scenario; legit says its failing mail is the
// domain's own.
type simSender struct {
	synth.Traffic
	legit bool
}

type simScenario struct {
	name      string
	weeks     int
	reporters []synth.Reporter
	senders   []simSender
	// notOurs returns the not_ours of the domain in the week (the user
	// marks senders as the advice says).
	notOurs func(week int) []string
	// fixAt, when set, is the day from which the SPF record of the domain
	// includes _spf.google.com (the user applied the advice).
	fixAt string
	check func(t *testing.T, weeks []simWeek)
}

// simWeek is one simulated week: the record live during it and the advice
// given on the Monday after it.
type simWeek struct {
	Live   string
	Step   string
	Advice advisor.Recommendation
}

var (
	rfc7489Reporters = []synth.Reporter{{OrgName: "google.com", Share: 0.6}, {OrgName: "Outlook.com", Share: 0.4}}
	rfc9990Reporters = []synth.Reporter{{OrgName: "GMX", Share: 0.6, RFC9990: true}, {OrgName: "WEB.DE", Share: 0.4, RFC9990: true}}
	mixedReporters   = []synth.Reporter{{OrgName: "google.com", Share: 0.5}, {OrgName: "GMX", Share: 0.3, RFC9990: true}, {OrgName: "Outlook.com", Share: 0.2}}
)

func dkimPass(d, sel string) []dmarcd.DKIMResult {
	return []dmarcd.DKIMResult{{Domain: d, Selector: sel, Result: "pass"}}
}

func spfResult(d, result string) []dmarcd.SPFResult {
	return []dmarcd.SPFResult{{Domain: d, Scope: "mfrom", Result: result}}
}

// simDay is the day n days after the start: simDay(7*w+k) is day k
// (Monday 0) of week w (0-based).
func simDay(n int) string { return simStart.AddDate(0, 0, n).Format(time.DateOnly) }

// The senders of the scenarios.
var (
	simOwn = simSender{Traffic: synth.Traffic{IP: "192.0.2.10", PerDay: 1000, DKIM: dkimPass(simDomain, "s1"), SPF: spfResult(simDomain, "pass")}, legit: true}
	// Spoofing from a new address every day.
	simSpoofing = simSender{Traffic: synth.Traffic{IP: "spoofing", PerDay: 60, SPF: spfResult(simDomain, "fail"),
		Vary: func(day string) string { return "100.64.7." + strings.TrimPrefix(day[8:], "0") }}}
	// A forwarder that keeps the DKIM signature, and a list that breaks it.
	simForwarder = simSender{Traffic: synth.Traffic{IP: "203.0.113.1", PerDay: 100, DKIM: dkimPass(simDomain, "s1"), SPF: spfResult(simDomain, "fail"),
		Reasons: []dmarcd.PolicyOverride{{Type: "forwarded"}}}}
	simList = simSender{Traffic: synth.Traffic{IP: "203.0.113.2", PerDay: 30, SPF: spfResult("lists.example.org", "pass"),
		DKIM: []dmarcd.DKIMResult{{Domain: simDomain, Selector: "s1", Result: "fail"}, {Domain: "lists.example.org", Selector: "l", Result: "pass"}}}}
	// Google Workspace sending as the domain, not set up: about 30% of
	// its mail.
	simWorkspace = simSender{Traffic: synth.Traffic{IP: "209.85.220.41", PerDay: 460,
		DKIM: dkimPass("gws-test.20230601.gappssmtp.com", "20230601"), SPF: spfResult(simDomain, "softfail")}, legit: true}
	// An unlisted CRM: 5%.
	simCRM = simSender{Traffic: synth.Traffic{IP: "198.51.100.20", PerDay: 57, DKIM: dkimPass("crmvendor.example", "crm1"),
		SPF: spfResult("bounce.crmvendor.example", "pass")}, legit: true}
)

// clean is own mail, spoofing, and forwarding that keeps or breaks DKIM.
func clean() []simSender { return []simSender{simOwn, simSpoofing, simForwarder, simList} }

var simLadder = []string{"quarantine 1% (t=y)", "quarantine 5% (t=y)", "quarantine 10% (t=y)", "quarantine 25% (t=y)", "quarantine 50% (t=y)",
	"quarantine", "reject 1% (t=y)", "reject 5% (t=y)", "reject 10% (t=y)", "reject 25% (t=y)", "reject 50% (t=y)", "reject"}

func TestRolloutSimulation(t *testing.T) {
	reachesReject := func(t *testing.T, weeks []simWeek) {
		t.Helper()
		for i, want := range simLadder {
			if got := weeks[i+1].Step; got != want {
				t.Fatalf("week %d at %q, want %q (one step a week)", i+2, got, want)
			}
		}
		if last := weeks[len(weeks)-1].Advice; last.Action != advisor.Done {
			t.Errorf("after the last week: %s, want done", last.Action)
		}
	}
	neverBeyondNone := func(name string, fixParts ...string) func(*testing.T, []simWeek) {
		return func(t *testing.T, weeks []simWeek) {
			t.Helper()
			for i, w := range weeks {
				if w.Step != "none" {
					t.Fatalf("week %d at %s", i+1, w.Step)
				}
				if i == 0 {
					continue
				}
				if w.Advice.Action != advisor.Hold {
					t.Errorf("week %d: %s", i+1, w.Advice.Action)
				}
				requireBlocker(t, w.Advice, name, fixParts...)
			}
		}
	}
	espStart := simDay(7*5 + 1)     // Tuesday of week 6, at quarantine 50%
	regressEarly := simDay(7*8 + 1) // Tuesday of week 9, at reject 5%
	regressLate := simDay(7*8 + 5)  // Saturday of week 9
	printer := simSender{Traffic: synth.Traffic{IP: "203.0.113.200", PerDay: 40, SPF: spfResult(simDomain, "fail")}, legit: true}
	scenarios := []simScenario{
		{name: "clean RFC 7489", weeks: 13, reporters: rfc7489Reporters, senders: clean(), check: reachesReject},
		{name: "clean RFC 9990", weeks: 13, reporters: rfc9990Reporters, senders: clean(), check: reachesReject},
		{name: "clean mixed reporters", weeks: 13, reporters: mixedReporters, senders: clean(), check: reachesReject},
		{name: "spoofing only", weeks: 13, reporters: mixedReporters, check: reachesReject, senders: []simSender{simOwn,
			{Traffic: synth.Traffic{IP: "spoofing", PerDay: 400, SPF: spfResult(simDomain, "fail"),
				Vary: func(day string) string { return "100.64.9." + strings.TrimPrefix(day[8:], "0") }}}}},
		{name: "forwarding with intact DKIM", weeks: 13, reporters: rfc7489Reporters, check: reachesReject, senders: []simSender{simOwn,
			{Traffic: synth.Traffic{IP: "203.0.113.9", PerDay: 300, DKIM: dkimPass(simDomain, "s1"), SPF: spfResult(simDomain, "fail")}}}},
		{name: "Google Workspace unaligned", weeks: 5, reporters: mixedReporters, senders: append(clean(), simWorkspace),
			check: neverBeyondNone("Google Workspace", "add include:_spf.google.com to the SPF record of gws.test (costs 4 lookups; you are at 3 of 10)",
				"Google Admin console", "selector google")},
		{name: "Google Workspace fixed in week 4", weeks: 8, reporters: mixedReporters, fixAt: simDay(7 * 3),
			senders: append(clean(),
				simSender{Traffic: synth.Traffic{IP: simWorkspace.IP, PerDay: simWorkspace.PerDay, DKIM: simWorkspace.DKIM, SPF: simWorkspace.SPF, Until: simDay(7*3 - 1)}, legit: true},
				simSender{Traffic: synth.Traffic{IP: simWorkspace.IP, PerDay: simWorkspace.PerDay, DKIM: dkimPass(simDomain, "google"), SPF: spfResult(simDomain, "pass"), From: simDay(7 * 3)}, legit: true}),
			check: func(t *testing.T, weeks []simWeek) {
				steps := stepsOf(weeks)
				if want := "none none none none quarantine 1% (t=y) quarantine 5% (t=y) quarantine 10% (t=y) quarantine 25% (t=y)"; strings.Join(steps, " ") != want {
					t.Errorf("steps %q, want %q", strings.Join(steps, " "), want)
				}
			}},
		{name: "unlisted CRM", weeks: 4, reporters: rfc7489Reporters, senders: append(clean(), simCRM),
			check: neverBeyondNone("crmvendor.example", "ask crmvendor.example to sign your mail with d=gws.test")},
		{name: "new ESP mid-rollout", weeks: 9, reporters: mixedReporters,
			senders: append(clean(), simSender{Traffic: synth.Traffic{IP: "198.51.100.30", PerDay: 95, SPF: spfResult("bounces.esp.example", "pass"), From: espStart}, legit: true}),
			check: func(t *testing.T, weeks []simWeek) {
				if weeks[5].Step != "quarantine 50% (t=y)" || weeks[5].Advice.Action != advisor.Rollback {
					t.Fatalf("week 6 at %s: %s, want a rollback from quarantine 50%%", weeks[5].Step, weeks[5].Advice.Action)
				}
				for _, w := range weeks[6:] {
					requireBlocker(t, w.Advice, "esp.example", "ask esp.example to sign your mail with d=gws.test")
				}
			}},
		{name: "own source regressing early in the week", weeks: 10, reporters: mixedReporters,
			senders: append(clean(), simSender{Traffic: synth.Traffic{IP: "192.0.2.20", PerDay: 180, DKIM: dkimPass(simDomain, "s1"), SPF: spfResult(simDomain, "pass"), FailFrom: regressEarly}, legit: true}),
			check:   rollsBackInWeek(9)},
		{name: "own source regressing late in the week", weeks: 10, reporters: mixedReporters,
			senders: append(clean(), simSender{Traffic: synth.Traffic{IP: "192.0.2.20", PerDay: 180, DKIM: dkimPass(simDomain, "s1"), SPF: spfResult(simDomain, "pass"), FailFrom: regressLate}, legit: true}),
			check:   rollsBackInWeek(9)},
		{name: "low volume", weeks: 4, reporters: rfc7489Reporters,
			senders: []simSender{{Traffic: synth.Traffic{IP: "192.0.2.10", PerDay: 3, DKIM: dkimPass(simDomain, "s1"), SPF: spfResult(simDomain, "pass")}, legit: true}},
			check: func(t *testing.T, weeks []simWeek) {
				for i, w := range weeks[1:] {
					reasons := strings.Join(w.Advice.Reasons, "\n")
					if w.Step != "none" || w.Advice.Action != advisor.Hold || !strings.Contains(reasons, "window_days = ") ||
						!strings.Contains(reasons, "step directly to quarantine") || !strings.Contains(reasons, "min_messages") {
						t.Errorf("week %d at %s: %s\n%s", i+2, w.Step, w.Advice.Action, reasons)
					}
				}
			}},
		{name: "reports stopping", weeks: 6, senders: clean(),
			reporters: []synth.Reporter{{OrgName: "google.com", Share: 0.6, Until: simDay(7*3 - 1)}, {OrgName: "Outlook.com", Share: 0.4, Until: simDay(7*3 - 1)}},
			check: func(t *testing.T, weeks []simWeek) {
				// The last reports are of week 3: quarantine 10% from week
				// 4 on, held for want of reports.
				for i, w := range weeks[3:] {
					if w.Step != "quarantine 10% (t=y)" || w.Advice.Action != advisor.Hold || !strings.Contains(strings.Join(w.Advice.Reasons, " "), "no reports in the last 7 days") {
						t.Errorf("week %d at %s: %s %q", i+4, w.Step, w.Advice.Action, w.Advice.Reasons)
					}
				}
			}},
		{name: "a steady sender marked not ours", weeks: 5, reporters: rfc7489Reporters, senders: append(clean(), printer),
			notOurs: func(week int) []string {
				if week >= 2 {
					return []string{"203.0.113.200"}
				}
				return nil
			},
			check: func(t *testing.T, weeks []simWeek) {
				requireBlocker(t, weeks[0].Advice, "203.0.113.200", `if it is not yours, add "203.0.113.200" to not_ours`)
				if got := strings.Join(stepsOf(weeks), " "); got != "none none none quarantine 1% (t=y) quarantine 5% (t=y)" {
					t.Errorf("steps %q", got)
				}
			}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			weeks := runSimulation(t, sc)
			for i, w := range weeks {
				t.Logf("week %2d %-22s -> %-8s %s", i+1, w.Step, w.Advice.Action, firstReason(w.Advice))
			}
			checkExposure(t, sc, weeks)
			sc.check(t, weeks)
		})
	}
}

// rollsBackInWeek checks that the advice after week n (1-based) rolls back.
func rollsBackInWeek(n int) func(*testing.T, []simWeek) {
	return func(t *testing.T, weeks []simWeek) {
		t.Helper()
		if w := weeks[n-1]; w.Advice.Action != advisor.Rollback {
			t.Fatalf("after week %d at %s: %s, want a rollback: %q", n, w.Step, w.Advice.Action, w.Advice.Reasons)
		}
		requireBlocker(t, weeks[n-1].Advice, "listed network 192.0.2.0/24")
	}
}

func firstReason(r advisor.Recommendation) string {
	if len(r.Reasons) == 0 {
		return ""
	}
	return r.Reasons[0]
}

func stepsOf(weeks []simWeek) []string {
	out := make([]string, len(weeks))
	for i, w := range weeks {
		out[i] = w.Step
	}
	return out
}

// requireBlocker checks that the advice names the sender as blocking, with
// fixes holding each of fixParts.
func requireBlocker(t *testing.T, r advisor.Recommendation, name string, fixParts ...string) {
	t.Helper()
	for _, b := range r.Evidence.Blocking {
		if !strings.Contains(b.Name, name) {
			continue
		}
		var fixes []string
		for _, f := range b.Fixes {
			fixes = append(fixes, f.Text+" "+f.Record)
		}
		all := strings.Join(fixes, "\n")
		for _, p := range fixParts {
			if !strings.Contains(all, p) {
				t.Errorf("the fixes of %s lack %q:\n%s", b.Name, p, all)
			}
		}
		return
	}
	t.Errorf("%s is not named as blocking: %+v", name, r.Evidence.Blocking)
}

// checkExposure is the invariant of every scenario: once a week of reports
// shows legitimate mail failing, the step published for the next week
// never quarantines or rejects more of the domain's mail than the limit,
// at the rate the failing had on the last day of that week.
func checkExposure(t *testing.T, sc simScenario, weeks []simWeek) {
	t.Helper()
	for i := range weeks[:len(weeks)-1] {
		lastDay := simDay(7*i + 6)
		share := legitFailingShare(sc, lastDay, i)
		next := weeks[i+1].Step
		if x := simExposure(next) * share; x > simLimit+0.0005 {
			t.Errorf("week %d: %s puts %.2f%% of the mail at risk (legitimate senders failed for %.1f%% on %s), over the limit",
				i+2, next, 100*x, 100*share, lastDay)
		}
	}
}

// legitFailingShare is the share of the domain's mail that legitimate
// senders fail with on day (in week, 0-based), from the scenario.
func legitFailingShare(sc simScenario, day string, week int) float64 {
	var all, failing float64
	var notOurs []string
	if sc.notOurs != nil {
		notOurs = sc.notOurs(week)
	}
	for _, s := range sc.senders {
		if s.From != "" && day < s.From || s.Until != "" && day > s.Until {
			continue
		}
		all += float64(s.PerDay)
		passes := false
		for _, d := range s.DKIM {
			passes = passes || d.Result == "pass" && d.Domain == simDomain
		}
		for _, r := range s.SPF {
			passes = passes || r.Result == "pass" && r.Domain == simDomain
		}
		if s.FailFrom != "" && day >= s.FailFrom {
			passes = false
		}
		if s.legit && !passes && !slicesContains(notOurs, s.IP) {
			failing += float64(s.PerDay)
		}
	}
	return failing / all
}

func slicesContains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// simExposure is the share of the failing mail a step quarantines or
// rejects at an RFC 7489 receiver.
func simExposure(step string) float64 {
	step = strings.TrimSuffix(step, " (t=y)")
	switch {
	case step == "none":
		return 0
	case strings.HasPrefix(step, "reject"):
		return 1
	case step == "quarantine":
		return 1
	}
	var pct float64
	fmt.Sscanf(step, "quarantine %f%%", &pct)
	return pct / 100
}

// runSimulation runs a scenario week by week.
func runSimulation(t *testing.T, sc simScenario) []simWeek {
	dir := t.TempDir()
	db := filepath.Join(dir, "d.db")
	st, err := sqlite.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv := testserver.StartDNS(t, simZone(t))
	live := "v=DMARC1; p=none; rua=mailto:dmarc@gws.test"
	srv.Set("_dmarc."+simDomain+".", txtRR(t, "_dmarc."+simDomain, live))
	config := filepath.Join(dir, "dmarcd.toml")

	var senders []synth.Traffic
	for _, s := range sc.senders {
		senders = append(senders, s.Traffic)
	}
	var weeks []simWeek
	for w := range sc.weeks {
		monday := simStart.AddDate(0, 0, 7*w)
		if sc.fixAt != "" && monday.Format(time.DateOnly) >= sc.fixAt {
			srv.Set(simDomain+".", txtRR(t, simDomain, "v=spf1 ip4:192.0.2.0/24 a mx include:_spf.helpdesk.example include:_spf.google.com ~all"))
		}
		rec, _, err := dnsrecord.ParseDMARC(live)
		if err != nil {
			t.Fatal(err)
		}
		pol := synth.Policy{P: string(rec.Policy), Pct: dmarcd.PctAbsent}
		if rec.Percent != nil {
			pol.Pct = *rec.Percent
		}
		if rec.Testing {
			pol.Testing = "y"
		}
		synth.Dataset{Domain: simDomain, From: monday.Format(time.DateOnly), To: monday.AddDate(0, 0, 6).Format(time.DateOnly),
			Published: synth.Constant(pol.P, pol.Pct, pol.Testing), Sources: senders, Reporters: sc.reporters}.Write(t, st)

		var notOurs []string
		if sc.notOurs != nil {
			notOurs = sc.notOurs(w)
		}
		writeSimConfig(t, config, db, srv.Addr, notOurs)
		next := monday.AddDate(0, 0, 7).Format(time.DateOnly)
		code, out, errOut := runCLI(t, "--config", config, "advise", "--at", next, "--format", "json", "--domain", simDomain)
		if code != exitOK {
			t.Fatalf("advise --at %s: exit %d: %s", next, code, errOut)
		}
		var advice struct{ Recommendations []advisor.Recommendation }
		if err := json.Unmarshal([]byte(out), &advice); err != nil || len(advice.Recommendations) != 1 {
			t.Fatalf("advise --at %s: %v\n%s", next, err, out)
		}
		r := advice.Recommendations[0]
		weeks = append(weeks, simWeek{Live: live, Step: stepOfRecord(t, live), Advice: r})
		if r.Record != "" {
			live = r.Record
			srv.Set("_dmarc."+simDomain+".", txtRR(t, "_dmarc."+simDomain, live))
		}
	}
	return weeks
}

func stepOfRecord(t *testing.T, record string) string {
	r, _, err := dnsrecord.ParseDMARC(record)
	if err != nil {
		t.Fatal(err)
	}
	return advisor.StepText(r.Step(), r.Testing)
}

func writeSimConfig(t *testing.T, path, db, resolver string, notOurs []string) {
	t.Helper()
	quoted := make([]string, len(notOurs))
	for i, n := range notOurs {
		quoted[i] = fmt.Sprintf("%q", n)
	}
	cfg := fmt.Sprintf(`store = %q
[dns]
resolver = %q
[[domain]]
name = %q
ips = ["192.0.2.0/24"]
selectors = ["s1"]
rua = ["dmarc@gws.test"]
not_ours = [%s]
`, db, resolver, simDomain, strings.Join(quoted, ", "))
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}

func txtRR(t *testing.T, name, value string) dns.RR {
	t.Helper()
	return &dns.TXT{Hdr: dns.RR_Header{Name: dns.Fqdn(name), Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 300}, Txt: dnsrecord.Split(value)}
}

// simZone is the DNS of the simulation: the domain's SPF record (three
// lookups: a, mx and an include), Google's SPF includes (four lookups),
// and the forward-confirmed reverse DNS of Google's and the CRM's servers.
func simZone(t *testing.T) map[string][]dns.RR {
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	zone := map[string][]dns.RR{
		simDomain + ".":              {txtRR(t, simDomain, "v=spf1 ip4:192.0.2.0/24 a mx include:_spf.helpdesk.example ~all"), rr(simDomain + ". 300 IN A 192.0.2.1"), rr(simDomain + ". 300 IN MX 10 mx.gws.test.")},
		"mx.gws.test.":               {rr("mx.gws.test. 300 IN A 192.0.2.2")},
		"_spf.helpdesk.example.":     {txtRR(t, "_spf.helpdesk.example", "v=spf1 ip4:198.51.100.128/25 -all")},
		"_spf.google.com.":           {txtRR(t, "_spf.google.com", "v=spf1 include:_netblocks.google.com include:_netblocks2.google.com include:_netblocks3.google.com ~all")},
		"_netblocks.google.com.":     {txtRR(t, "_netblocks.google.com", "v=spf1 ip4:209.85.128.0/17 ip4:74.125.0.0/16 ~all")},
		"_netblocks2.google.com.":    {txtRR(t, "_netblocks2.google.com", "v=spf1 ip6:2001:4860:4000::/36 ~all")},
		"_netblocks3.google.com.":    {txtRR(t, "_netblocks3.google.com", "v=spf1 ip4:172.217.0.0/19 ~all")},
		"mail-sor-f41.google.com.":   {rr("mail-sor-f41.google.com. 300 IN A 209.85.220.41")},
		"o1.mail.crmvendor.example.": {rr("o1.mail.crmvendor.example. 300 IN A 198.51.100.20")},
	}
	for ip, name := range map[string]string{"209.85.220.41": "mail-sor-f41.google.com.", "198.51.100.20": "o1.mail.crmvendor.example."} {
		arpa, _ := dns.ReverseAddr(ip)
		zone[arpa] = []dns.RR{rr(arpa + " 300 IN PTR " + name)}
	}
	return zone
}
