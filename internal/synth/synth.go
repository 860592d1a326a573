// Package synth writes synthetic aggregate report data straight into a
// store, day by day and source by source, for the tests of the advisor and
// the alerts: each test states the traffic its decision rests on.
package synth

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd"
)

// Traffic is one source's mail per day.
type Traffic struct {
	IP     string
	PerDay int64
	// Pass: aligned DKIM and SPF pass. FailFrom: from this day on the
	// source fails (empty: never). DKIMOnly: aligned DKIM passes and SPF
	// fails, as forwarded mail does.
	Pass     bool
	FailFrom string
	DKIMOnly bool
	// From and Until bound the days the source sends (empty: all).
	From, Until string
	// Selector, when set, adds a DKIM result with it, passing when
	// the source passes.
	Selector string
}

// Policy is what a day's reports say was published.
type Policy struct {
	P       string
	Pct     int // dmarcd.PctAbsent for none
	Testing string
}

// Constant is the same policy every day.
func Constant(p string, pct int, testing string) func(string) Policy {
	return func(string) Policy { return Policy{p, pct, testing} }
}

// Dataset is the reports of a domain over days: each reporter sends one
// report a day with its share of every source's traffic.
type Dataset struct {
	Domain    string
	From, To  string // days, YYYY-MM-DD, both included
	Published func(day string) Policy
	Sources   []Traffic
	// Reporters send the reports; google.com and Outlook.com when empty.
	// A reporter's Until ends its reports.
	Reporters []Reporter
}

// Reporter is one organisation sending reports, with a share of the mail.
type Reporter struct {
	OrgName string
	Share   float64 // of every source's mail; equal shares when zero
	Until   string  // last day it reports (empty: every day)
}

// Write stores the dataset's reports into s, flushed where s groups its
// writes (dmarcd.Flusher).
func (ds Dataset) Write(t testing.TB, s dmarcd.Store) {
	t.Helper()
	ctx := context.Background()
	reporters := ds.Reporters
	if len(reporters) == 0 {
		reporters = []Reporter{{OrgName: "google.com"}, {OrgName: "Outlook.com"}}
	}
	published := ds.Published
	if published == nil {
		published = Constant("none", dmarcd.PctAbsent, "")
	}
	for d := day(ds.From); !d.After(day(ds.To)); d = d.AddDate(0, 0, 1) {
		dayStr := d.Format(time.DateOnly)
		pol := published(dayStr)
		for i, rep := range reporters {
			if rep.Until != "" && dayStr > rep.Until {
				continue
			}
			share := rep.Share
			if share == 0 {
				share = 1 / float64(len(reporters))
			}
			r := &dmarcd.AggregateReport{
				Metadata: dmarcd.ReportMetadata{OrgName: rep.OrgName, Email: "dmarc@" + rep.OrgName, ReportID: fmt.Sprintf("%s-%d", dayStr, i),
					DateBegin: d, DateEnd: d.Add(24*time.Hour - time.Second)},
				Policy: dmarcd.PolicyPublished{Domain: ds.Domain, P: pol.P, Pct: pol.Pct, Testing: pol.Testing, ADKIM: "r", ASPF: "r"},
			}
			w, err := s.BeginAggregate(ctx, r, dmarcd.Origin{Source: "synth"})
			if err != nil {
				t.Fatal(err)
			}
			for _, tr := range ds.Sources {
				if tr.From != "" && dayStr < tr.From || tr.Until != "" && dayStr > tr.Until {
					continue
				}
				n := int64(float64(tr.PerDay)*share + 0.5)
				if n == 0 {
					continue
				}
				rec := record(ds.Domain, tr, dayStr, n)
				if err := w.Write(ctx, &rec); err != nil {
					t.Fatal(err)
				}
				r.RecordCount++
				r.MessageCount += n
			}
			if err := w.Commit(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
	}
	if f, ok := s.(dmarcd.Flusher); ok {
		if err := f.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func record(domain string, tr Traffic, dayStr string, n int64) dmarcd.Record {
	pass := tr.Pass && (tr.FailFrom == "" || dayStr < tr.FailFrom)
	rec := dmarcd.Record{SourceIP: tr.IP, Count: n, Disposition: "none", DKIM: "fail", SPF: "fail", HeaderFrom: domain}
	switch {
	case tr.DKIMOnly:
		rec.DKIM = "pass"
	case pass:
		rec.DKIM, rec.SPF = "pass", "pass"
	}
	if tr.Selector != "" {
		res := "fail"
		if rec.DKIM == "pass" {
			res = "pass"
		}
		rec.DKIMResults = []dmarcd.DKIMResult{{Domain: domain, Selector: tr.Selector, Result: res}}
	}
	return rec
}

func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic("synth: bad day " + s)
	}
	return t
}
