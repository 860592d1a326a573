// Package synth writes synthetic aggregate report data straight into a
// store, day by day and source by source, for the tests of the advisor and
// the alerts: each test states the traffic its decision rests on.
package synth

import (
	"context"
	"fmt"
	"strings"
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

	// DKIM and SPF, when set, are the authentication results the records
	// carry instead of the ones Pass, DKIMOnly and Selector make; the
	// record's aligned dkim and spf pass when one of them passes for the
	// domain (relaxed). From FailFrom on, the results for the domain fail.
	DKIM []dmarcd.DKIMResult
	SPF  []dmarcd.SPFResult
	// Envelope is the envelope_from of the records (the SPF domain, or the
	// domain, when empty).
	Envelope string
	// Reasons are the reporters' policy overrides of its records.
	Reasons []dmarcd.PolicyOverride
	// Vary, when set, returns the source's address on a day, for senders
	// that rotate their addresses (spoofing campaigns); IP is then a
	// label.
	Vary func(day string) string
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
	// RFC9990 reporters write the published policy as RFC 9990 does: no
	// pct, testing y or n. Others write pct (100 when the record has
	// none) and no testing, as RFC 7489 reporters do.
	RFC9990 bool
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
				Policy: rep.published(ds.Domain, pol),
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
				for _, rec := range dispose(record(ds.Domain, tr, dayStr, n), r.Policy) {
					if err := w.Write(ctx, &rec); err != nil {
						t.Fatal(err)
					}
					r.RecordCount++
					r.MessageCount += rec.Count
				}
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

// published is the policy_published of a report of rep under pol: RFC 9990
// reporters write testing and no pct, the others pct and no testing.
func (rep Reporter) published(domain string, pol Policy) dmarcd.PolicyPublished {
	pp := dmarcd.PolicyPublished{Domain: domain, P: pol.P, Pct: pol.Pct, Testing: pol.Testing, ADKIM: "r", ASPF: "r"}
	if rep.RFC9990 {
		pp.Pct = dmarcd.PctAbsent
		if pp.Testing == "" {
			pp.Testing = "n"
		}
	} else {
		pp.Testing = ""
		if pp.Pct == dmarcd.PctAbsent && pol.P != "" {
			pp.Pct = 100
		}
	}
	return pp
}

// dispose sets the disposition of a record as a receiver applies the
// published policy to failing mail: RFC 9990 receivers read testing=y as
// the next lower policy, RFC 7489 receivers apply p to pct% of the mail
// and the next lower policy to the rest (the record is split in two).
func dispose(rec dmarcd.Record, pp dmarcd.PolicyPublished) []dmarcd.Record {
	if rec.DKIM == "pass" || rec.SPF == "pass" || pp.P == "none" || pp.P == "" {
		return []dmarcd.Record{rec}
	}
	lower := map[string]string{"reject": "quarantine", "quarantine": "none"}[pp.P]
	if pp.Testing == "y" {
		rec.Disposition = lower
		return []dmarcd.Record{rec}
	}
	pct := int64(100)
	if pp.Pct != dmarcd.PctAbsent {
		pct = int64(pp.Pct)
	}
	applied := rec.Count * pct / 100
	rest := rec
	rec.Disposition, rec.Count = pp.P, applied
	rest.Disposition, rest.Count = lower, rest.Count-applied
	var out []dmarcd.Record
	for _, r := range []dmarcd.Record{rec, rest} {
		if r.Count > 0 {
			out = append(out, r)
		}
	}
	return out
}

func record(domain string, tr Traffic, dayStr string, n int64) dmarcd.Record {
	pass := tr.Pass && (tr.FailFrom == "" || dayStr < tr.FailFrom)
	ip := tr.IP
	if tr.Vary != nil {
		ip = tr.Vary(dayStr)
	}
	rec := dmarcd.Record{SourceIP: ip, Count: n, Disposition: "none", DKIM: "fail", SPF: "fail", HeaderFrom: domain,
		EnvelopeFrom: tr.Envelope, Reasons: tr.Reasons}
	if tr.DKIM != nil || tr.SPF != nil {
		failing := tr.FailFrom != "" && dayStr >= tr.FailFrom
		for _, d := range tr.DKIM {
			if failing && aligned(d.Domain, domain) {
				d.Result = "fail"
			}
			rec.DKIMResults = append(rec.DKIMResults, d)
			if d.Result == "pass" && aligned(d.Domain, domain) {
				rec.DKIM = "pass"
			}
		}
		for _, s := range tr.SPF {
			if failing && aligned(s.Domain, domain) {
				s.Result = "fail"
			}
			rec.SPFResults = append(rec.SPFResults, s)
			if s.Result == "pass" && aligned(s.Domain, domain) {
				rec.SPF = "pass"
			}
		}
		if rec.EnvelopeFrom == "" && len(tr.SPF) > 0 {
			rec.EnvelopeFrom = tr.SPF[0].Domain
		}
		return rec
	}
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

// aligned says whether d is domain or below it, or domain below d: relaxed
// alignment for the synthetic domains (no public suffix list needed).
func aligned(d, domain string) bool {
	d, domain = strings.ToLower(d), strings.ToLower(domain)
	return d == domain || strings.HasSuffix(d, "."+domain) || strings.HasSuffix(domain, "."+d)
}

func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic("synth: bad day " + s)
	}
	return t
}
