// Package advisor turns the analysis of stored reports and the live DNS into
// decisions: the next step of a slow DMARC rollout with the exact record to
// publish, DNS checks of SPF, DKIM and DMARC, the records a new sender domain
// needs, and when to rotate DKIM keys.
package advisor

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/analyze"
)

// Gates are the conditions for moving a domain to the next rollout step.
// The defaults (DefaultGates) are documented in dmarcd.example.toml.
type Gates struct {
	// WindowDays is the span of report data the evidence covers.
	WindowDays int `toml:"window_days"`
	// MinDaysPerStep is how long a step must hold before the next.
	MinDaysPerStep int `toml:"min_days_per_step"`
	// MinMessages is the least mail in the window for a decision.
	MinMessages int64 `toml:"min_messages"`
	// MinAlignedShare is the share of the mail of authorized sources
	// that must pass DMARC (aligned DKIM or SPF), 0..1.
	MinAlignedShare float64 `toml:"min_aligned_share"`
	// MinSampleMessages is the least mail a percentage step must apply to
	// in the window to mean anything: quarantine 1% of 300 messages is 3
	// messages, which tells nothing, so the step is refused and the
	// advisor goes to the first percentage that reaches it.
	MinSampleMessages int64 `toml:"min_sample_messages"`
	// NewFailureDays: an authorized source whose mail first failed within
	// this many days of the window's end is a new failure.
	NewFailureDays int `toml:"new_failure_days"`
	// MinSourceMessages: sources with less mail in the window are noise
	// for the gates (they are still listed).
	MinSourceMessages int64 `toml:"min_source_messages"`
}

// DefaultGates are the gates without configuration.
var DefaultGates = Gates{
	WindowDays:        7,
	MinDaysPerStep:    7,
	MinMessages:       500,
	MinAlignedShare:   0.98,
	MinSampleMessages: 50,
	NewFailureDays:    3,
	MinSourceMessages: 10,
}

// Action is what the advisor recommends for a domain.
type Action string

const (
	Advance  Action = "advance"
	Hold     Action = "hold"
	Rollback Action = "rollback"
	Done     Action = "done"  // at p=reject 100%: keep monitoring
	Start    Action = "start" // no DMARC record: publish the first one
)

// Recommendation is the advisor's word on one domain, with its evidence and
// the record to publish. The same object feeds `dmarcd advise`, the weekly
// Slack message and the web page.
type Recommendation struct {
	Domain string `json:"domain"`
	Action Action `json:"action"`
	// Current is the step the live record is at; Next the step to
	// publish (equal to Current on hold).
	Current dmarcd.RolloutStep `json:"current"`
	Next    dmarcd.RolloutStep `json:"next"`
	// Reasons say why, one sentence each, the deciding one first.
	Reasons []string `json:"reasons"`
	// RecordName and Record are the TXT record to publish; Record is empty
	// when nothing is to change. LiveRecord is what DNS has now.
	RecordName string   `json:"record_name"`
	Record     string   `json:"record,omitempty"`
	LiveRecord string   `json:"live_record,omitempty"`
	Evidence   Evidence `json:"evidence"`
	// Explanation says how the record reads to RFC 7489 and RFC 9989
	// receivers.
	Explanation string    `json:"explanation,omitempty"`
	At          time.Time `json:"at"`
}

// Evidence is what the recommendation rests on.
type Evidence struct {
	Window analyze.Window `json:"window"`
	// LastReportDay is the last day any stored report covers for the
	// domain, set when the window holds none ("" when there is none at
	// all): reports have stopped, or the window is not where the data is.
	LastReportDay   string  `json:"last_report_day,omitempty"`
	DaysAtStep      int     `json:"days_at_step"`
	Messages        int64   `json:"messages"`
	DMARCPassRate   float64 `json:"dmarc_pass_rate"`
	DKIMAlignedRate float64 `json:"dkim_aligned_rate"`
	SPFAlignedRate  float64 `json:"spf_aligned_rate"`
	// AuthorizedMessages and AuthorizedPassRate cover the mail of the
	// domain's own and authorized sources: the mail a policy must never
	// block.
	AuthorizedMessages int64   `json:"authorized_messages"`
	AuthorizedPassRate float64 `json:"authorized_pass_rate"`
	// FailingAuthorized lists authorized sources that still fail DMARC.
	FailingAuthorized []SourceFailure `json:"failing_authorized,omitempty"`
	// ForwardedFailing is mail of forwarders that fails DMARC: a policy
	// will hit it, and the domain cannot fix it (ARC can).
	ForwardedFailing int64 `json:"forwarded_failing"`
	UnknownFailing   int64 `json:"unknown_failing"`
	// NextWouldAffect estimates what the next step would have quarantined
	// or rejected in the window: its percentage of the failing mail.
	NextWouldAffect           int64              `json:"next_would_affect"`
	NextWouldAffectAuthorized int64              `json:"next_would_affect_authorized"`
	Reporters                 []analyze.Reporter `json:"reporters"`
}

// SourceFailure is an authorized source whose mail fails DMARC.
type SourceFailure struct {
	IP       string  `json:"ip"`
	PTR      string  `json:"ptr,omitempty"`
	Messages int64   `json:"messages"`
	Failing  int64   `json:"failing"`
	Why      string  `json:"why"`
	Since    string  `json:"since"` // first day it failed in the window
	New      bool    `json:"new"`
	PassRate float64 `json:"pass_rate"`
}

// RecordLookup returns the DMARC record published for domain (the TXT value
// at _dmarc.DOMAIN, or found by the RFC 9989 tree walk), "" when none.
type RecordLookup func(ctx context.Context, domain string) (string, error)

// Advisor recommends rollout steps.
type Advisor struct {
	Store  analyze.Querier
	Lookup RecordLookup
	Gates  Gates
	// Classifier gives the class of each source; per domain, since the
	// authorized networks differ.
	Classifier func(d dmarcd.SenderDomain) *analyze.Classifier
	Now        func() time.Time
}

// Recommend returns the recommendation for one sender domain.
func (a *Advisor) Recommend(ctx context.Context, d dmarcd.SenderDomain) (*Recommendation, error) {
	g := a.Gates
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	at := now().UTC()
	// Reports cover whole days and arrive the day after: the window ends
	// yesterday.
	end := at.AddDate(0, 0, -1)
	w := analyze.Window{From: end.AddDate(0, 0, 1-g.WindowDays).Format(time.DateOnly), To: end.Format(time.DateOnly)}
	rec := &Recommendation{Domain: d.Name, RecordName: "_dmarc." + d.Name, At: at}
	rec.Evidence.Window = w

	live, err := a.Lookup(ctx, d.Name)
	if err != nil {
		return nil, fmt.Errorf("reading the DMARC record of %s: %w", d.Name, err)
	}
	rec.LiveRecord = live
	tags := parseTags(live)
	current := stepOf(tags)
	rec.Current, rec.Next = current, current

	if err := a.gather(ctx, d, w, rec); err != nil {
		return nil, err
	}
	ev := &rec.Evidence
	if live == "" {
		rec.Action, rec.Next = Start, dmarcd.Rollout[0]
		rec.Reasons = []string{"no DMARC record is published: start monitoring with p=none and reports to your mailbox"}
		if ev.Messages == 0 && ev.LastReportDay != "" {
			rec.Reasons = append(rec.Reasons, noReports(ev, g.WindowDays))
		}
		rec.Record = buildRecord(nil, rec.Next, d)
		rec.Explanation = explain(rec.Next)
		return rec, nil
	}
	rec.Evidence.DaysAtStep, err = a.daysAtStep(ctx, d.Name, current, tags, at)
	if err != nil {
		return nil, err
	}
	idx := dmarcd.StepIndex(current)

	switch {
	case ev.Messages == 0:
		rec.hold(noReports(ev, g.WindowDays))
	case ev.Messages < g.MinMessages:
		rec.hold(fmt.Sprintf("too little mail to decide: %d messages in %d days, the gate is %d", ev.Messages, g.WindowDays, g.MinMessages))
	case idx > 0 && hasNewFailure(ev.FailingAuthorized):
		prev := dmarcd.Rollout[idx-1]
		rec.Action, rec.Next = Rollback, prev
		for _, f := range ev.FailingAuthorized {
			if f.New {
				rec.Reasons = append(rec.Reasons, fmt.Sprintf("authorized source %s started failing DMARC on %s (%d of %d messages fail): go back to %s until it is fixed",
					sourceName(f.IP, f.PTR), f.Since, f.Failing, f.Messages, prev))
			}
		}
	case ev.AuthorizedMessages > 0 && ev.AuthorizedPassRate < g.MinAlignedShare:
		rec.hold(fmt.Sprintf("%.1f%% of the mail of authorized sources passes DMARC, the gate is %.1f%%: fix the failing sources first",
			100*ev.AuthorizedPassRate, 100*g.MinAlignedShare))
		for _, f := range ev.FailingAuthorized {
			rec.Reasons = append(rec.Reasons, fmt.Sprintf("%s fails DMARC for %d of %d messages (%s)", sourceName(f.IP, f.PTR), f.Failing, f.Messages, f.Why))
		}
	case ev.DaysAtStep < g.MinDaysPerStep:
		rec.hold(fmt.Sprintf("%s has held %d days; each step holds at least %d", current, ev.DaysAtStep, g.MinDaysPerStep))
	case idx == len(dmarcd.Rollout)-1:
		rec.Action = Done
		rec.Reasons = []string{"p=reject applies to all failing mail: the rollout is complete; keep watching for new failing sources"}
	default:
		next, skipped := nextMeaningful(idx, ev.Messages, g.MinSampleMessages)
		rec.Action, rec.Next = Advance, next
		rec.Reasons = append(rec.Reasons, fmt.Sprintf("%s has held %d days, %.1f%% of authorized mail passes DMARC over %d messages: go to %s",
			current, ev.DaysAtStep, 100*ev.AuthorizedPassRate, ev.Messages, next))
		for _, s := range skipped {
			rec.Reasons = append(rec.Reasons, fmt.Sprintf("%s is skipped: %d%% of %d messages is fewer than %d, too few for the step to show anything",
				s, s.Percent, ev.Messages, g.MinSampleMessages))
		}
	}
	if rec.Next != current || rec.Action == Advance || rec.Action == Rollback {
		rec.Record = buildRecord(tags, rec.Next, d)
	}
	ev.NextWouldAffect, ev.NextWouldAffectAuthorized = a.wouldAffect(rec)
	rec.Explanation = explain(rec.Next)
	return rec, nil
}

// noReports says that the window holds no reports, and where the last
// ones are.
func noReports(ev *Evidence, windowDays int) string {
	if ev.LastReportDay == "" {
		return fmt.Sprintf("no reports in the last %d days, and none before: check that rua= reaches dmarcd", windowDays)
	}
	return fmt.Sprintf("no reports in the last %d days (%s..%s); the last report covers %s: check that rua= still reaches dmarcd (or, for old data, advise --at a day after it)",
		windowDays, ev.Window.From, ev.Window.To, ev.LastReportDay)
}

func (r *Recommendation) hold(reason string) {
	r.Action = Hold
	r.Reasons = append(r.Reasons, reason)
}

// gather reads the evidence of the window.
func (a *Advisor) gather(ctx context.Context, d dmarcd.SenderDomain, w analyze.Window, rec *Recommendation) error {
	days, err := analyze.Daily(ctx, a.Store, d.Name, w)
	if err != nil {
		return err
	}
	t := analyze.Total(days)
	ev := &rec.Evidence
	ev.Messages = t.Messages
	if ev.Messages == 0 {
		all, err := analyze.Domains(ctx, a.Store, d.Name)
		if err != nil {
			return err
		}
		if len(all) == 1 {
			ev.LastReportDay = all[0].LastDay
		}
	}
	ev.DMARCPassRate = t.PassRate()
	ev.DKIMAlignedRate = t.DKIMRate()
	ev.SPFAlignedRate = t.SPFRate()
	if ev.Reporters, err = analyze.Reporters(ctx, a.Store, d.Name, w); err != nil {
		return err
	}
	cl := &analyze.Classifier{}
	if a.Classifier != nil {
		cl = a.Classifier(d)
	}
	sources, err := cl.Sources(ctx, a.Store, d.Name, w)
	if err != nil {
		return err
	}
	newSince := day(w.To).AddDate(0, 0, 1-a.Gates.NewFailureDays).Format(time.DateOnly)
	var authPass int64
	for _, s := range sources {
		switch s.Class {
		case analyze.Authorized:
			ev.AuthorizedMessages += s.Messages
			authPass += s.DMARCPass
			if s.Failing() > 0 && s.Messages >= a.Gates.MinSourceMessages {
				ev.FailingAuthorized = append(ev.FailingAuthorized, SourceFailure{
					IP: s.IP, PTR: s.PTR, Messages: s.Messages, Failing: s.Failing(), Why: s.Why,
					Since: s.FirstFailDay, New: s.FirstFailDay >= newSince, PassRate: s.PassRate(),
				})
			}
		case analyze.Forwarder:
			ev.ForwardedFailing += s.Failing()
		default:
			ev.UnknownFailing += s.Failing()
		}
	}
	ev.AuthorizedPassRate = ratio(authPass, ev.AuthorizedMessages)
	return nil
}

// wouldAffect estimates what the recommended step would have applied to
// in the window: its percentage of the failing mail.
func (a *Advisor) wouldAffect(rec *Recommendation) (all, authorized int64) {
	if rec.Next.Policy == dmarcd.PolicyNone {
		return 0, 0
	}
	ev := rec.Evidence
	var authFailing int64
	for _, f := range ev.FailingAuthorized {
		authFailing += f.Failing
	}
	failing := authFailing + ev.ForwardedFailing + ev.UnknownFailing
	pct := int64(rec.Next.Percent)
	return failing * pct / 100, authFailing * pct / 100
}

// daysAtStep counts the days up to now that receivers have seen the live
// step, from the policy_published of their reports. A record changed after
// the last reports counts 0 days.
func (a *Advisor) daysAtStep(ctx context.Context, domain string, current dmarcd.RolloutStep, tags []tag, now time.Time) (int, error) {
	// Look back far enough to count any gate.
	back := analyze.Window{From: now.AddDate(0, 0, -90).Format(time.DateOnly), To: now.Format(time.DateOnly)}
	days, err := analyze.Published(ctx, a.Store, domain, back)
	if err != nil {
		return 0, err
	}
	testing := tagValue(tags, "t") == "y"
	since := ""
	for i := len(days) - 1; i >= 0; i-- {
		d := days[i]
		seen := dmarcd.RolloutStep{Policy: dmarcd.Policy(strings.ToLower(d.P)), Percent: d.Pct}
		if seen.Policy == dmarcd.PolicyNone {
			seen.Percent = 100
		}
		// Reports older than RFC 9990 carry no testing element.
		if seen != current || d.Testing != "" && (d.Testing == "y") != testing {
			break
		}
		since = d.Day
	}
	if since == "" {
		return 0, nil
	}
	return int(now.Sub(day(since)).Hours() / 24), nil
}

// nextMeaningful returns the first step after idx whose percentage of the
// window's mail reaches minSample, and the steps skipped for being too
// small. Steps at 100% always mean something.
func nextMeaningful(idx int, messages, minSample int64) (dmarcd.RolloutStep, []dmarcd.RolloutStep) {
	var skipped []dmarcd.RolloutStep
	for i := idx + 1; i < len(dmarcd.Rollout); i++ {
		s := dmarcd.Rollout[i]
		if s.Percent == 100 || messages*int64(s.Percent)/100 >= minSample {
			return s, skipped
		}
		skipped = append(skipped, s)
	}
	return dmarcd.Rollout[len(dmarcd.Rollout)-1], skipped
}

func hasNewFailure(fs []SourceFailure) bool {
	return slices.ContainsFunc(fs, func(f SourceFailure) bool { return f.New })
}

func sourceName(ip, ptr string) string {
	if ptr != "" {
		return ip + " (" + ptr + ")"
	}
	return ip
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// day parses a YYYY-MM-DD day of the views; the zero time when it does not
// parse.
func day(s string) time.Time {
	t, _ := time.Parse(time.DateOnly, s)
	return t
}
