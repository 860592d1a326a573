package advisor

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/analyze"
	"github.com/dmarcd/dmarcd/ingest"
	"github.com/dmarcd/dmarcd/internal/corpus"
	"github.com/dmarcd/dmarcd/internal/synth"
	"github.com/dmarcd/dmarcd/internal/testserver"
	"github.com/dmarcd/dmarcd/schema/sqlite"
)

// now is the time of the synthetic decisions: the window is 2026-11-13 to
// 2026-11-19.
var now = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)

func store(t *testing.T, ds synth.Dataset) *sqlite.Store {
	t.Helper()
	s := testserver.SQLite(t)
	ds.Write(t, s)
	return s
}

func advisorFor(s analyze.Querier, live string) *Advisor {
	return &Advisor{
		Store:  s,
		Lookup: func(context.Context, string) (string, error) { return live, nil },
		Gates:  DefaultGates,
		Classifier: func(d dmarcd.SenderDomain) *analyze.Classifier {
			nets, _ := analyze.ParseNetworks(d.IPs)
			return &analyze.Classifier{Networks: nets, Selectors: d.Selectors}
		},
		Now: func() time.Time { return now },
	}
}

// spoofing is unauthenticated mail from a new address every day, as
// spoofing campaigns send.
func spoofing(perDay int64) synth.Traffic {
	return synth.Traffic{IP: "spoofing", PerDay: perDay, Vary: func(day string) string { return "100.64.1." + strings.TrimPrefix(day[8:], "0") }}
}

var example = dmarcd.SenderDomain{Name: "example.com", IPs: []string{"192.0.2.0/24", "198.51.100.7"}, RUA: []string{"dmarc@example.com"}}

func TestRolloutDecisions(t *testing.T) {
	ours := synth.Traffic{IP: "192.0.2.1", PerDay: 1000, Pass: true}
	spoofer := spoofing(20)
	cases := []struct {
		name       string
		ds         synth.Dataset
		live       string
		action     Action
		next       string
		record     string
		reasonPart string
	}{{
		name:   "advance",
		ds:     synth.Dataset{Domain: "example.com", From: "2026-11-01", To: "2026-11-19", Published: synth.Constant("quarantine", 5, "y"), Sources: []synth.Traffic{ours, spoofer}},
		live:   "v=DMARC1; p=quarantine; pct=5; t=y; rua=mailto:dmarc@example.com",
		action: Advance, next: "quarantine 10%",
		record:     "v=DMARC1; p=quarantine; pct=10; t=y; rua=mailto:dmarc@example.com",
		reasonPart: "has held 19 days",
	}, {
		name: "hold for too few days",
		ds: synth.Dataset{Domain: "example.com", From: "2026-11-01", To: "2026-11-19", Sources: []synth.Traffic{ours, spoofer},
			Published: func(d string) synth.Policy {
				if d < "2026-11-17" {
					return synth.Policy{P: "none", Pct: -1}
				}
				return synth.Policy{P: "quarantine", Pct: 5, Testing: "y"}
			}},
		live:   "v=DMARC1; p=quarantine; pct=5; t=y; rua=mailto:dmarc@example.com",
		action: Hold, next: "quarantine 5%", reasonPart: "has held 3 days",
	}, {
		name: "hold for a failing legitimate source",
		ds: synth.Dataset{Domain: "example.com", From: "2026-11-01", To: "2026-11-19", Published: synth.Constant("none", -1, ""),
			Sources: []synth.Traffic{ours, spoofer, {IP: "198.51.100.7", PerDay: 100}}},
		live:   "v=DMARC1; p=none; rua=mailto:dmarc@example.com",
		action: Hold, next: "none", reasonPart: "listed network 198.51.100.7/32 (authorized-failing) fails DMARC for 700 of 700 messages",
	}, {
		name:   "hold for low volume",
		ds:     synth.Dataset{Domain: "example.com", From: "2026-11-01", To: "2026-11-19", Published: synth.Constant("none", -1, ""), Sources: []synth.Traffic{{IP: "192.0.2.1", PerDay: 10, Pass: true}}},
		live:   "v=DMARC1; p=none; rua=mailto:dmarc@example.com",
		action: Hold, next: "none", reasonPart: "too little mail to decide: 70 messages",
	}, {
		name: "roll back after a new failure",
		ds: synth.Dataset{Domain: "example.com", From: "2026-11-01", To: "2026-11-19", Published: synth.Constant("quarantine", 25, "y"),
			Sources: []synth.Traffic{ours, spoofer, {IP: "192.0.2.9", PerDay: 200, Pass: true, FailFrom: "2026-11-18"}}},
		live:   "v=DMARC1; p=quarantine; pct=25; t=y; sp=none; rua=mailto:dmarc@example.com",
		action: Rollback, next: "quarantine 5%",
		record:     "v=DMARC1; p=quarantine; sp=none; pct=5; t=y; rua=mailto:dmarc@example.com",
		reasonPart: "go back to quarantine 5%",
	}, {
		name:   "start without a record",
		ds:     synth.Dataset{Domain: "example.com", From: "2026-11-18", To: "2026-11-19", Published: synth.Constant("none", -1, ""), Sources: []synth.Traffic{ours}},
		live:   "",
		action: Start, next: "none", record: "v=DMARC1; p=none; rua=mailto:dmarc@example.com",
	}, {
		name:   "small volume skips meaningless percentages",
		ds:     synth.Dataset{Domain: "example.com", From: "2026-11-01", To: "2026-11-19", Published: synth.Constant("none", -1, ""), Sources: []synth.Traffic{{IP: "192.0.2.1", PerDay: 90, Pass: true}}},
		live:   "v=DMARC1; p=none; rua=mailto:dmarc@example.com; ri=3600",
		action: Advance, next: "quarantine 10%",
		record:     "v=DMARC1; p=quarantine; pct=10; t=y; rua=mailto:dmarc@example.com",
		reasonPart: "quarantine 1% is skipped: 1% of 630 messages is fewer than 50",
	}, {
		name:   "quarantine 100 to reject 1",
		ds:     synth.Dataset{Domain: "example.com", From: "2026-11-01", To: "2026-11-19", Published: synth.Constant("quarantine", 100, ""), Sources: []synth.Traffic{ours, spoofer}},
		live:   "v=DMARC1; p=quarantine; rua=mailto:dmarc@example.com",
		action: Advance, next: "reject 1%",
		record: "v=DMARC1; p=reject; pct=1; t=y; rua=mailto:dmarc@example.com",
	}, {
		name:   "50 to 100 drops pct and t",
		ds:     synth.Dataset{Domain: "example.com", From: "2026-11-01", To: "2026-11-19", Published: synth.Constant("reject", 50, "y"), Sources: []synth.Traffic{ours, spoofer}},
		live:   "v=DMARC1; p=reject; pct=50; t=y; rua=mailto:dmarc@example.com",
		action: Advance, next: "reject",
		record: "v=DMARC1; p=reject; rua=mailto:dmarc@example.com",
	}, {
		name:   "done at reject",
		ds:     synth.Dataset{Domain: "example.com", From: "2026-11-01", To: "2026-11-19", Published: synth.Constant("reject", 100, ""), Sources: []synth.Traffic{ours, spoofer}},
		live:   "v=DMARC1; p=reject; rua=mailto:dmarc@example.com",
		action: Done, next: "reject",
	}, {
		name:   "hold when the reports stopped",
		ds:     synth.Dataset{Domain: "example.com", From: "2026-10-01", To: "2026-11-05", Published: synth.Constant("quarantine", 5, "y"), Sources: []synth.Traffic{ours, spoofer}},
		live:   "v=DMARC1; p=quarantine; pct=5; t=y; rua=mailto:dmarc@example.com",
		action: Hold, next: "quarantine 5%", reasonPart: "no reports in the last 7 days (2026-11-13..2026-11-19); the last report covers 2026-11-05",
	}, {
		name: "forwarded mail does not hold the rollout",
		ds: synth.Dataset{Domain: "example.com", From: "2026-11-01", To: "2026-11-19", Published: synth.Constant("quarantine", 5, "y"),
			Sources: []synth.Traffic{ours, spoofer, {IP: "203.0.113.5", PerDay: 50, DKIMOnly: true}}},
		live:   "v=DMARC1; p=quarantine; pct=5; t=y; rua=mailto:dmarc@example.com",
		action: Advance, next: "quarantine 10%",
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := store(t, c.ds)
			rec, err := advisorFor(s, c.live).Recommend(context.Background(), example)
			if err != nil {
				t.Fatal(err)
			}
			if rec.Action != c.action || rec.Next.String() != c.next {
				t.Fatalf("got %s to %s, want %s to %s; reasons: %q", rec.Action, rec.Next, c.action, c.next, rec.Reasons)
			}
			if rec.Record != c.record && c.record != "" {
				t.Errorf("record %q, want %q", rec.Record, c.record)
			}
			if c.action == Hold && rec.Record != "" {
				t.Errorf("hold with a record to publish: %q", rec.Record)
			}
			if c.reasonPart != "" && !strings.Contains(strings.Join(rec.Reasons, "\n"), c.reasonPart) {
				t.Errorf("reasons %q lack %q", rec.Reasons, c.reasonPart)
			}
			if len(rec.Evidence.Reporters) == 0 && rec.Evidence.Messages > 0 {
				t.Error("no reporters in the evidence")
			}
		})
	}
}

func TestWouldAffect(t *testing.T) {
	ds := synth.Dataset{Domain: "example.com", From: "2026-11-01", To: "2026-11-19", Published: synth.Constant("quarantine", 5, "y"),
		Sources: []synth.Traffic{{IP: "192.0.2.1", PerDay: 1000, Pass: true}, spoofing(200)}}
	rec, err := advisorFor(store(t, ds), "v=DMARC1; p=quarantine; pct=5; t=y").Recommend(context.Background(), example)
	if err != nil {
		t.Fatal(err)
	}
	// 1400 failing messages in the window; quarantine 10% of them.
	if rec.Evidence.NextWouldAffect != 140 || rec.Evidence.NextWouldAffectLegitimate != 0 {
		t.Errorf("would affect %d (%d legitimate), want 140 (0)", rec.Evidence.NextWouldAffect, rec.Evidence.NextWouldAffectLegitimate)
	}
	if rec.Evidence.SpoofingFailing != 1400 {
		t.Errorf("spoofing failing %d", rec.Evidence.SpoofingFailing)
	}
}

// TestCorpus runs the advisor over every domain of the real corpus, at the
// day after its last report: no error, and a decision for each.
func TestCorpus(t *testing.T) {
	dir := corpus.Dir(t)
	s := testserver.SQLite(t)
	var inputs []ingest.Input
	for _, kind := range []string{"aggregate", "aggregate-dmarcbis"} {
		for _, f := range corpus.Files(t, kind) {
			in, err := ingest.Expand([]string{filepath.Join(dir, f)})
			if err != nil {
				t.Fatal(err)
			}
			inputs = append(inputs, in...)
		}
	}
	if _, err := ingest.New(s, ingest.Options{}).Files(context.Background(), inputs, nil); err != nil {
		t.Fatal(err)
	}
	rows, err := s.Query(context.Background(), `SELECT domain, MAX(date_end), MAX(p), MAX(COALESCE(pct, 100)) FROM reports GROUP BY domain`)
	if err != nil {
		t.Fatal(err)
	}
	type dom struct {
		name, last, p string
		pct           int
	}
	var doms []dom
	for rows.Next() {
		var d dom
		rows.Scan(&d.name, &d.last, &d.p, &d.pct)
		doms = append(doms, d)
	}
	rows.Close()
	if len(doms) < 10 {
		t.Fatalf("only %d domains in the corpus", len(doms))
	}
	for _, d := range doms {
		last, _ := time.Parse(time.DateTime, d.last)
		a := advisorFor(s, fmt.Sprintf("v=DMARC1; p=%s; pct=%d", d.p, d.pct))
		a.Now = func() time.Time { return last.Add(24 * time.Hour) }
		rec, err := a.Recommend(context.Background(), dmarcd.SenderDomain{Name: d.name})
		if err != nil {
			t.Fatalf("%s: %v", d.name, err)
		}
		if rec.Action == "" || len(rec.Reasons) == 0 {
			t.Errorf("%s: no decision: %+v", d.name, rec)
		}
		t.Logf("%-22s %-8s %-16s -> %-16s %s", d.name, rec.Action, rec.Current, rec.Next, rec.Reasons[0])
	}
}
