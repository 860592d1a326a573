package web

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/advisor"
	"github.com/dmarcd/dmarcd/analyze"
	"github.com/dmarcd/dmarcd/internal/synth"
)

// countingStore counts the queries run through it.
type countingStore struct {
	analyze.Querier
	queries atomic.Int64
}

func (c *countingStore) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	c.queries.Add(1)
	return c.Querier.Query(ctx, query, args...)
}

// TestIndexQueries shows that the front page reads the store a fixed
// number of times, however many domains it lists: each row's step, as the
// last reports saw it, comes from one query for all rows.
func TestIndexQueries(t *testing.T) {
	st := openStore(t)
	now := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
	addDomains := func(from, to int) {
		for i := from; i < to; i++ {
			synth.Dataset{
				Domain: fmt.Sprintf("d%d.example", i), From: "2026-11-20", To: "2026-11-28",
				Published: synth.Constant("quarantine", 50, ""),
				Sources:   []synth.Traffic{{IP: "192.0.2.10", PerDay: 10, Pass: true}},
			}.Write(t, st)
		}
	}
	index := func() (page string, queries int64) {
		t.Helper()
		cs := &countingStore{Querier: st}
		page = mustGet(t, newHandler(t, Options{Store: cs, Now: func() time.Time { return now }}), "/")
		return page, cs.queries.Load()
	}
	addDomains(0, 2)
	_, few := index()
	addDomains(2, 8)
	page, many := index()
	if many != few {
		t.Errorf("the front page ran %d queries for 8 domains, %d for 2", many, few)
	}
	if got := strings.Count(page, `title="as the last reports saw it"`); got != 8 {
		t.Errorf("%d rows show the step the reports saw, want 8", got)
	}
	t.Logf("%d queries", many)
}

// TestIndexModel builds the front page's view model without HTTP: the
// rows, their figures for the window, the step the last reports saw, and
// the totals, ready for the template.
func TestIndexModel(t *testing.T) {
	st := openStore(t)
	synth.Dataset{
		Domain: "busy.example", From: "2026-11-20", To: "2026-11-28",
		Published: synth.Constant("quarantine", 25, ""),
		Sources:   []synth.Traffic{{IP: "192.0.2.10", PerDay: 100, Pass: true}, {IP: "198.51.100.7", PerDay: 10}},
	}.Write(t, st)
	synth.Dataset{
		Domain: "quiet.example", From: "2026-11-01", To: "2026-11-02",
		Published: synth.Constant("none", 100, ""),
		Sources:   []synth.Traffic{{IP: "192.0.2.20", PerDay: 5, Pass: true}},
	}.Write(t, st)
	h := newHandler(t, Options{Store: st})
	win := window{Window: analyze.Window{From: "2026-11-22", To: "2026-11-28"}, Days: 7}
	p, err := h.indexModel(context.Background(), win, func(string) bool { return true }, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Domains) != 2 || p.Domains[0].Name != "busy.example" || p.Domains[1].Name != "quiet.example" {
		t.Fatalf("rows: %+v", p.Domains)
	}
	busy, quiet := p.Domains[0], p.Domains[1]
	if busy.Figures.Messages != 7*110 || busy.Figures.DMARCPass != 7*100 || quiet.Figures.Messages != 0 {
		t.Errorf("figures: busy %+v, quiet %+v", busy.Figures, quiet.Figures)
	}
	if p.Totals.Messages != 7*110 {
		t.Errorf("totals: %+v", p.Totals)
	}
	if busy.Ladder == nil || busy.StepSource != "reports" || quiet.Ladder == nil {
		t.Errorf("steps: busy %v %q, quiet %v", busy.Ladder, busy.StepSource, quiet.Ladder)
	}
}

// TestDomainModel builds a domain page's view model without HTTP: the
// window's totals and dispositions, the step the reports saw, the sources
// with ours first, and the advisor's recommendation for the live record.
func TestDomainModel(t *testing.T) {
	st := openStore(t)
	synth.Dataset{
		Domain: "busy.example", From: "2026-11-01", To: "2026-11-28",
		Published: synth.Constant("quarantine", 25, ""),
		Sources:   []synth.Traffic{{IP: "192.0.2.10", PerDay: 100, Pass: true}, {IP: "198.51.100.7", PerDay: 10}},
	}.Write(t, st)
	dns := &fakeDNS{txt: map[string][]string{"_dmarc.busy.example": {"v=DMARC1; p=quarantine; pct=25; rua=mailto:d@busy.example"}}, ptr: map[string]string{}}
	now := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
	h := newHandler(t, fullOptions(st, dns, nil, now))
	win := window{Window: analyze.Window{From: "2026-11-22", To: "2026-11-28"}, Days: 7}
	p, err := h.domainModel(context.Background(), dmarcd.SenderDomain{Name: "busy.example", IPs: []string{"192.0.2.0/24"}}, win)
	if err != nil {
		t.Fatal(err)
	}
	if p.Total.Messages != 7*110 || p.Total.DMARCPass != 7*100 || p.Dispositions.Total != 7*110 {
		t.Errorf("totals: %+v, dispositions %+v", p.Total, p.Dispositions)
	}
	if p.PublishedStep != "quarantine 25%" {
		t.Errorf("the step the reports saw: %q", p.PublishedStep)
	}
	if len(p.Sources) != 2 || p.Sources[0].IP != "192.0.2.10" || p.Sources[0].Messages != 700 {
		t.Errorf("sources: %+v", p.Sources)
	}
	if p.Advice == nil || p.Advice.Domain != "busy.example" || p.AdviceError != "" {
		t.Fatalf("advice: %+v %q", p.Advice, p.AdviceError)
	}
	if p.LatestURL != "" {
		t.Errorf("a window with reports links to another: %q", p.LatestURL)
	}
	// A window after the last report: nothing in it, and the way back.
	later := window{Window: analyze.Window{From: "2026-12-10", To: "2026-12-16"}, Days: 7}
	if p, err = h.domainModel(context.Background(), dmarcd.SenderDomain{Name: "busy.example"}, later); err != nil {
		t.Fatal(err)
	}
	if p.Total.Messages != 0 || p.LatestURL != "?days=7&to=2026-11-28" {
		t.Errorf("an empty window: %d messages, latest %q", p.Total.Messages, p.LatestURL)
	}
}

// TestPageModels builds the TLS, alerts and source pages' view models
// without HTTP over the samples, and checks that each keeps to what the
// viewer may see.
func TestPageModels(t *testing.T) {
	st := openStore(t)
	ingestSamples(t, st)
	for _, e := range []dmarcd.AlertEvent{
		{At: samplesNow, Key: "example.com|pass-rate|dmarc", Domain: "example.com", Kind: dmarcd.AlertPassRate, Subject: "dmarc", State: dmarcd.AlertFiring, Title: "low"},
		{At: samplesNow, Key: "|dmarcd-health|chat", Kind: dmarcd.AlertHealth, Subject: "chat", State: dmarcd.AlertFiring, Title: "refused"},
	} {
		if err := st.AddAlertEvent(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	h := newHandler(t, fullOptions(st, samplesDNS(), nil, samplesNow))
	ctx := context.Background()
	all := func(string) bool { return true }
	none := func(string) bool { return false }
	win := window{Window: analyze.Window{From: samplesNow.AddDate(0, 0, -30).Format(time.DateOnly), To: samplesNow.Format(time.DateOnly)}, Days: 30}

	tls, err := h.tlsModel(ctx, "", win, all)
	if err != nil || len(tls.Policies) == 0 || tls.Policies[0].Sessions == 0 {
		t.Fatalf("TLS: %+v %v", tls, err)
	}
	if hidden, _ := h.tlsModel(ctx, "", win, none); len(hidden.Policies) != 0 || len(hidden.Failures) != 0 {
		t.Errorf("TLS reports of domains the viewer may not see: %+v", hidden)
	}

	admin, err := h.alertsModel(ctx, "", all, true)
	if err != nil || len(admin.Firing) != 2 {
		t.Fatalf("the administrator's alerts: %+v %v", admin, err)
	}
	member, _ := h.alertsModel(ctx, "", all, false)
	if len(member.Firing) != 1 || member.Firing[0].Domain != "example.com" {
		t.Errorf("a member sees dmarcd's own alerts: %+v", member.Firing)
	}

	d := dmarcd.SenderDomain{Name: "example.com"}
	dom, err := h.domainModel(ctx, d, win)
	if err != nil || len(dom.Sources) == 0 {
		t.Fatalf("the domain: %v", err)
	}
	ip := dom.Sources[0].IP
	src, err := h.sourceModel(ctx, d, ip, win)
	if err != nil || src == nil || src.Source == nil || src.Messages != dom.Sources[0].Messages || len(src.Records) == 0 {
		t.Fatalf("source %s: %+v %v", ip, src, err)
	}
	if unknown, err := h.sourceModel(ctx, d, "192.0.2.254", win); unknown != nil || err != nil {
		t.Errorf("a source no report shows: %+v %v", unknown, err)
	}

	failures, err := h.failuresModel(ctx, "", 1)
	if err != nil || failures.Total == 0 || len(failures.Rows) != int(failures.Total) || failures.FirstRow != 1 || failures.NextURL != "" {
		t.Fatalf("failure reports: %+v %v", failures, err)
	}

	// The keys: grouped by domain, the signing key first, only the
	// domains the viewer may see, editable where they may change them.
	key := func(domain, selector string, state dmarcd.KeyState) advisor.KeyAdvice {
		return advisor.KeyAdvice{Key: dmarcd.Key{Domain: domain, Selector: selector, State: state, Algorithm: "ed25519"}}
	}
	groups, n := keyDomains([]advisor.KeyAdvice{key("b.example", "new", dmarcd.KeyPublished), key("a.example", "s1", dmarcd.KeyCurrent),
		key("b.example", "old", dmarcd.KeyCurrent), key("hidden.example", "x", dmarcd.KeyCurrent)},
		func(d string) bool { return d != "hidden.example" }, func(d string) bool { return d == "b.example" })
	if n != 3 || len(groups) != 2 || groups[0].Name != "a.example" || groups[0].Editable || !groups[1].Editable ||
		groups[1].Keys[0].Selector != "old" || groups[1].Keys[1].Selector != "new" {
		t.Errorf("key groups: %d %+v", n, groups)
	}
}
