// Package advisor turns the analysis of stored reports and the live DNS into
// decisions: the next step of a slow DMARC rollout with the exact record to
// publish, DNS checks of SPF, DKIM and DMARC, the records a new sender domain
// needs, and when to rotate DKIM keys.
package advisor

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/analyze"
	"github.com/dmarcd/dmarcd/internal/dnsrecord"
	"github.com/dmarcd/dmarcd/internal/figures"
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
	// MinAlignedShare is the share of the mail of authorized senders
	// that must pass DMARC (aligned DKIM or SPF), 0..1.
	MinAlignedShare float64 `toml:"min_aligned_share"`
	// MaxLegitimateFailing is the largest share of the domain's mail,
	// 0..1, that may come from legitimate senders (authorized or not set
	// up, and not marked not ours) and fail DMARC, both to advance and to
	// stay at a step: a step that would quarantine or reject more of the
	// domain's own mail than this is rolled back. See
	// DefaultMaxLegitimateFailing.
	MaxLegitimateFailing float64 `toml:"max_legitimate_failing"`
	// MinSampleMessages is the least mail a percentage step must apply to
	// in the window to mean anything: quarantine 1% of 300 messages is 3
	// messages, which tells nothing, so the step is refused and the
	// advisor goes to the first percentage that reaches it.
	MinSampleMessages int64 `toml:"min_sample_messages"`
	// NewFailureDays are the last days of the window whose failing mail
	// also counts at its own rate: a sender that started failing late in
	// the window weighs as much as it fails now.
	NewFailureDays int `toml:"new_failure_days"`
	// MinSourceMessages: senders with less failing mail in the window are
	// not named as blocking (they still count in the shares).
	MinSourceMessages int64 `toml:"min_source_messages"`
}

// DefaultMaxLegitimateFailing is 1%: at p=reject, one legitimate message
// in a hundred lost is what users notice and complain of within days (a
// domain of 1,000 messages a day loses 10 a day), so no step may put more
// at risk; and failures of authorized mail below it are mostly what no
// setup can fix (receivers' gateways and lists that alter signed mail),
// so a lower gate would hold clean domains for ever.
const DefaultMaxLegitimateFailing = 0.01

// DefaultGates are the gates without configuration.
var DefaultGates = Gates{
	WindowDays:           7,
	MinDaysPerStep:       7,
	MinMessages:          500,
	MinAlignedShare:      0.98,
	MaxLegitimateFailing: DefaultMaxLegitimateFailing,
	MinSampleMessages:    50,
	NewFailureDays:       3,
	MinSourceMessages:    10,
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
	// Testing says that the live record has t=y: its policy is being
	// tested, and RFC 9989 receivers apply the next lower one (reject as
	// quarantine, quarantine as none). NextTesting is the same of the
	// record to publish.
	Testing     bool `json:"testing"`
	NextTesting bool `json:"next_testing"`
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

// CurrentText writes the live step: "no record" when there is none.
func (r *Recommendation) CurrentText() string {
	if r.Action == Start {
		return "no record"
	}
	return StepText(r.Current, r.Testing)
}

// StepText writes a step with its test mode: "quarantine 5% (t=y)".
func StepText(s dmarcd.RolloutStep, testing bool) string {
	if testing && s.Policy != dmarcd.PolicyNone {
		return s.String() + " (t=y)"
	}
	return s.String()
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
	// Formats says which report formats the reporters used: "RFC 7489",
	// "RFC 9990" or "RFC 7489 and RFC 9990".
	Formats string `json:"formats,omitempty"`
	// AuthorizedMessages and AuthorizedPassRate cover the mail of the
	// domain's authorized senders.
	AuthorizedMessages int64   `json:"authorized_messages"`
	AuthorizedPassRate float64 `json:"authorized_pass_rate"`
	// LegitimateFailing is the failing mail of legitimate senders
	// (authorized or not set up, not marked not ours): the mail a policy
	// must not block. LegitimateFailingShare is its share of the domain's
	// mail over the window, RecentFailingShare the largest share on one of
	// its last NewFailureDays (a sender that started failing late in the
	// window, at the rate it fails now); the gates use the larger.
	LegitimateFailing      int64   `json:"legitimate_failing"`
	LegitimateFailingShare float64 `json:"legitimate_failing_share"`
	RecentFailingShare     float64 `json:"recent_failing_share"`
	// Blocking are the legitimate senders whose failing mail holds or
	// rolls back the rollout, the most failing mail first, each with what
	// would fix it.
	Blocking []Blocker `json:"blocking,omitempty"`
	// ForwardedFailing is mail of forwarders that fails DMARC: a policy
	// will hit it, and the domain cannot fix it (ARC can).
	ForwardedFailing int64 `json:"forwarded_failing"`
	// SpoofingFailing is the failing mail of spoofing senders (and of
	// senders marked not ours): what the policy is for.
	SpoofingFailing int64 `json:"spoofing_failing"`
	// NextWouldAffect estimates what the next step would have quarantined
	// or rejected in the window (its exposure times the failing mail),
	// NextWouldAffectLegitimate the part of it from legitimate senders.
	NextWouldAffect           int64              `json:"next_would_affect"`
	NextWouldAffectLegitimate int64              `json:"next_would_affect_legitimate"`
	Reporters                 []analyze.Reporter `json:"reporters"`
}

// Blocker is a legitimate sender whose failing mail stands in the way of
// the rollout.
type Blocker struct {
	ID           string        `json:"id"`
	Name         string        `json:"name"`
	Class        analyze.Class `json:"class"`
	Why          string        `json:"why"`
	Messages     int64         `json:"messages"`
	Failing      int64         `json:"failing"`
	FailingShare float64       `json:"failing_share"` // of the domain's mail
	RecentShare  float64       `json:"recent_share"`  // the largest of the domain's mail on one of the last days
	Since        string        `json:"since"`         // first day it failed in the window
	IPs          []string      `json:"ips"`
	Fixes        []Fix         `json:"fixes"`
}

// RecordLookup returns the DMARC record published for domain (the TXT value
// at _dmarc.DOMAIN, or found by the RFC 9989 tree walk), "" when none.
type RecordLookup func(ctx context.Context, domain string) (string, error)

// Advisor recommends rollout steps.
type Advisor struct {
	Store  analyze.Querier
	Lookup RecordLookup
	// DNS reads the live SPF records for the fixes (their lookup cost and
	// the merged record); the fixes go without them when nil.
	DNS   DNS
	Gates Gates
	// DefaultRUA are the report addresses of records for domains that
	// name none (the mailbox dmarcd reads).
	DefaultRUA []string
	// Classifier gives the class of each sender; per domain, since the
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
	if len(d.RUA) == 0 {
		d.RUA = a.DefaultRUA
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
	liveRec, liveNote := readLive(live)
	current := liveRec.Step()
	rec.Current, rec.Next, rec.Testing = current, current, liveRec.Testing && current.Policy != dmarcd.PolicyNone
	rec.NextTesting = rec.Testing

	inv, err := a.gather(ctx, d, w, rec)
	if err != nil {
		return nil, err
	}
	ev := &rec.Evidence
	if live == "" || liveNote != "" {
		rec.Action, rec.Next, rec.NextTesting = Start, dmarcd.Rollout[0], false
		rec.Reasons = []string{"no DMARC record is published: start monitoring with p=none and reports to your mailbox"}
		if liveNote != "" {
			rec.Reasons = []string{liveNote + ": start over with p=none and reports to your mailbox"}
		}
		if ev.Messages == 0 && ev.LastReportDay != "" {
			rec.Reasons = append(rec.Reasons, noReports(ev, g.WindowDays))
		}
		rec.Record = buildRecord(liveRec, rec.Next, d)
		if !strings.Contains(rec.Record, "rua=") {
			// A p=none record without reports teaches nothing: no record
			// rather than a useless one.
			rec.Record = ""
			rec.Reasons = append(rec.Reasons, fmt.Sprintf("no report address is known for %s: set rua in its [[domain]] table, or configure the [[mailbox]] dmarcd reads. "+
				"A p=none record without rua= brings no aggregate reports, so nothing would be learned and the rollout could not go on", d.Name))
		}
		rec.Explanation = explain(rec.Next)
		return rec, nil
	}
	if note := invalidPolicyNote(live); note != "" {
		rec.Reasons = append(rec.Reasons, note)
	}
	rec.Evidence.DaysAtStep, err = a.daysAtStep(ctx, d.Name, current, rec.Testing, at)
	if err != nil {
		return nil, err
	}
	if err := a.blockers(ctx, d, inv, rec); err != nil {
		return nil, err
	}
	a.decide(rec, inv, d)
	if rec.Next != current || rec.NextTesting != rec.Testing || rec.Action == Advance || rec.Action == Rollback {
		rec.Record = buildRecord(liveRec, rec.Next, d)
	}
	ev.NextWouldAffect, ev.NextWouldAffectLegitimate = wouldAffect(rec)
	rec.Explanation = explain(rec.Next)
	return rec, nil
}

// decide applies the gates, in order: reports at all; a step that exposes
// more legitimate mail than MaxLegitimateFailing rolls back to the last
// safe step, whatever day its failures began; too little mail holds (with
// what would move it); failing legitimate mail holds, naming the senders
// and their fixes; authorized mail below MinAlignedShare holds; a step
// holds MinDaysPerStep; then the next step, skipping percentages too small
// to show anything.
func (a *Advisor) decide(rec *Recommendation, inv *analyze.Inventory, d dmarcd.SenderDomain) {
	g := a.Gates
	ev := &rec.Evidence
	current := rec.Current
	idx := dmarcd.StepIndex(current)
	share := max(ev.LegitimateFailingShare, ev.RecentFailingShare)
	limit := g.MaxLegitimateFailing
	switch {
	case ev.Messages == 0:
		rec.hold(noReports(ev, g.WindowDays))
	case idx > 0 && ev.LegitimateFailing >= g.MinSourceMessages && exposure(current)*share > limit:
		safe := lastSafeStep(idx, share, limit)
		rec.Action, rec.Next, rec.NextTesting = Rollback, dmarcd.Rollout[safe], dmarcd.Rollout[safe].Percent < 100
		rec.Reasons = append(rec.Reasons, fmt.Sprintf("%s puts %s of the domain's mail at risk: legitimate senders fail DMARC for %s of it (%s in the last %d days), over the limit of %s; go back to %s, which puts %s at risk, until they are fixed",
			current, figures.Share(exposure(current)*share), figures.Share(ev.LegitimateFailingShare), figures.Share(ev.RecentFailingShare), g.NewFailureDays, figures.Share(limit), dmarcd.Rollout[safe], figures.Share(exposure(dmarcd.Rollout[safe])*share)))
		rec.Reasons = append(rec.Reasons, blockerReasons(ev.Blocking)...)
	case ev.Messages < g.MinMessages:
		rec.hold(fmt.Sprintf("too little mail to decide: %s messages in %d days, the gate is %s", figures.Count(ev.Messages), g.WindowDays, figures.Count(g.MinMessages)))
		rec.Reasons = append(rec.Reasons, lowVolume(rec, inv, g, d)...)
	case share > limit:
		rec.hold(fmt.Sprintf("legitimate senders fail DMARC for %s of the domain's mail (%s in the last %d days), over the limit of %s: fix them, or mark those that are not yours, before any stricter step",
			figures.Share(ev.LegitimateFailingShare), figures.Share(ev.RecentFailingShare), g.NewFailureDays, figures.Share(limit)))
		rec.Reasons = append(rec.Reasons, blockerReasons(ev.Blocking)...)
	case ev.AuthorizedMessages > 0 && ev.AuthorizedPassRate < g.MinAlignedShare:
		rec.hold(fmt.Sprintf("%.1f%% of the mail of authorized senders passes DMARC, the gate is %.1f%%: fix the failing senders first",
			100*ev.AuthorizedPassRate, 100*g.MinAlignedShare))
		rec.Reasons = append(rec.Reasons, blockerReasons(ev.Blocking)...)
	case ev.DaysAtStep < g.MinDaysPerStep:
		rec.hold(fmt.Sprintf("%s has held %d days; each step holds at least %d", StepText(current, rec.Testing), ev.DaysAtStep, g.MinDaysPerStep))
	case rec.Testing && current.Percent == 100:
		rec.Action, rec.NextTesting = Advance, false
		rec.Reasons = append(rec.Reasons, fmt.Sprintf("%s has held %d days in test mode (t=y), %s of the mail fails from legitimate senders: drop t=y so that RFC 9989 receivers apply p=%s too",
			current, ev.DaysAtStep, figures.Share(share), current.Policy))
	case idx == len(dmarcd.Rollout)-1:
		rec.Action = Done
		rec.Reasons = []string{"p=reject applies to all failing mail: the rollout is complete; keep watching for new failing senders"}
	default:
		next, skipped := nextMeaningful(idx, ev.Messages, g.MinSampleMessages)
		if exposure(next)*share > limit {
			rec.hold(fmt.Sprintf("%s would put %s of the domain's mail at risk, over the limit of %s", next, figures.Share(exposure(next)*share), figures.Share(limit)))
			rec.Reasons = append(rec.Reasons, blockerReasons(ev.Blocking)...)
			return
		}
		rec.Action, rec.Next, rec.NextTesting = Advance, next, next.Percent < 100
		rec.Reasons = append(rec.Reasons, fmt.Sprintf("%s has held %d days, %.1f%% of authorized mail passes DMARC over %s messages, legitimate senders fail for %s: go to %s",
			StepText(current, rec.Testing), ev.DaysAtStep, 100*ev.AuthorizedPassRate, figures.Count(ev.Messages), figures.Share(share), next))
		for _, s := range skipped {
			rec.Reasons = append(rec.Reasons, fmt.Sprintf("%s is skipped: %d%% of %s messages is fewer than %s, too few for the step to show anything",
				s, s.Percent, figures.Count(ev.Messages), figures.Count(g.MinSampleMessages)))
		}
		if len(ev.Blocking) > 0 {
			rec.Reasons = append(rec.Reasons, "still to fix, though under the limit:")
			rec.Reasons = append(rec.Reasons, blockerReasons(ev.Blocking)...)
		}
	}
}

// exposure is the share of the failing mail that a step quarantines or
// rejects at an RFC 7489 receiver, the stricter reading: p applies to pct%
// of it and the next lower policy to the rest (RFC 7489 §6.6.4), so every
// reject step quarantines at least all of it. (An RFC 9989 receiver reads
// t=y as the next lower policy: less.)
func exposure(s dmarcd.RolloutStep) float64 {
	switch s.Policy {
	case dmarcd.PolicyQuarantine:
		return float64(s.Percent) / 100
	case dmarcd.PolicyReject:
		return 1
	}
	return 0
}

// lastSafeStep is the highest step below idx whose exposure of the
// legitimate failing share stays within limit.
func lastSafeStep(idx int, share, limit float64) int {
	for i := idx - 1; i > 0; i-- {
		if exposure(dmarcd.Rollout[i])*share <= limit {
			return i
		}
	}
	return 0
}

// lowVolume says what would let a domain with too little mail move: a
// longer window, a lower min_messages, or a direct step with its risk.
func lowVolume(rec *Recommendation, inv *analyze.Inventory, g Gates, d dmarcd.SenderDomain) []string {
	ev := rec.Evidence
	perDay := float64(ev.Messages) / float64(g.WindowDays)
	var out []string
	if perDay > 0 {
		days := int(math.Ceil(float64(g.MinMessages) / perDay))
		out = append(out, fmt.Sprintf("at %.0f messages a day, window_days = %d in [advisor] would hold the %d messages the gate asks for", perDay, days, g.MinMessages))
	}
	out = append(out, fmt.Sprintf("or lower min_messages in [advisor] to %d: the gates then decide on fewer messages, and a single sender weighs more", max(ev.Messages, 1)))
	if ev.LegitimateFailing == 0 && ev.Messages > 0 {
		next := dmarcd.RolloutStep{Policy: dmarcd.PolicyQuarantine, Percent: 100}
		if dmarcd.StepIndex(rec.Current) >= dmarcd.StepIndex(next) {
			next = dmarcd.Rollout[len(dmarcd.Rollout)-1]
		}
		if next != rec.Current {
			out = append(out, fmt.Sprintf("or, since percentages mean nothing at this volume, step directly to %s (%q): all %d messages of legitimate senders passed, but a sender not seen in these %d days would have its mail %sed",
				next, buildRecord(nil, next, d), ev.Messages-ev.SpoofingFailing-ev.ForwardedFailing, g.WindowDays, strings.TrimSuffix(string(next.Policy), "e")))
		}
	}
	return out
}

func blockerReasons(bs []Blocker) []string {
	var out []string
	for _, b := range bs {
		out = append(out, fmt.Sprintf("%s (%s) fails DMARC for %s of %s messages (%s of the domain's mail, since %s): %s",
			b.Name, b.Class, figures.Count(b.Failing), figures.Count(b.Messages), figures.Share(b.FailingShare), b.Since, b.Why))
	}
	return out
}

// readLive parses the live record. A TXT record that is not a DMARC record
// counts as none, with a note of why it is ignored.
func readLive(live string) (*dnsrecord.DMARCRecord, string) {
	if live == "" {
		return &dnsrecord.DMARCRecord{}, ""
	}
	r, _, err := dnsrecord.ParseDMARC(live)
	if err != nil {
		return &dnsrecord.DMARCRecord{}, fmt.Sprintf("the TXT record at _dmarc (%q) is not a DMARC record, so receivers ignore it (%v)", live, err)
	}
	return r, ""
}

// invalidPolicyNote says when a record's p= or sp= is not valid: receivers
// then act as if the record said p=none (RFC 7489 §6.6.3; RFC 9989 keeps
// the rule), or ignore it without a valid rua.
func invalidPolicyNote(live string) string {
	_, fs, err := dnsrecord.ParseDMARC(live)
	if err != nil {
		return ""
	}
	for _, f := range fs {
		if f.Code == "dmarc-invalid-p" || f.Code == "dmarc-invalid-sp" {
			return f.Message + ": receivers act as if the record said p=none (RFC 7489 §6.6.3), whatever its other tags; the record below corrects it"
		}
	}
	return ""
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

// gather reads the evidence of the window: the volume and results, the
// reporters and their formats, and the sender inventory.
func (a *Advisor) gather(ctx context.Context, d dmarcd.SenderDomain, w analyze.Window, rec *Recommendation) (*analyze.Inventory, error) {
	days, err := analyze.Daily(ctx, a.Store, d.Name, w)
	if err != nil {
		return nil, err
	}
	t := analyze.Total(days)
	ev := &rec.Evidence
	ev.Messages = t.Messages
	if ev.Messages == 0 {
		all, err := analyze.Domains(ctx, a.Store, d.Name)
		if err != nil {
			return nil, err
		}
		if len(all) == 1 {
			ev.LastReportDay = all[0].LastDay
		}
	}
	ev.DMARCPassRate = t.PassRate()
	ev.DKIMAlignedRate = t.DKIMRate()
	ev.SPFAlignedRate = t.SPFRate()
	if ev.Reporters, err = analyze.Reporters(ctx, a.Store, d.Name, w); err != nil {
		return nil, err
	}
	cl := &analyze.Classifier{}
	if a.Classifier != nil {
		cl = a.Classifier(d)
	}
	cl.RecentDays = a.Gates.NewFailureDays
	inv, err := cl.Inventory(ctx, a.Store, d.Name, w)
	if err != nil {
		return nil, err
	}
	var authPass int64
	for _, s := range inv.Senders {
		switch {
		case s.Class == analyze.Authorized || s.Class == analyze.AuthorizedFailing:
			ev.AuthorizedMessages += s.Messages
			authPass += s.DMARCPass
		case s.Class == analyze.Forwarder:
			ev.ForwardedFailing += s.Failing()
		}
		switch {
		case s.Class.Legitimate():
			ev.LegitimateFailing += s.Failing()
		case s.Class == analyze.Spoofing:
			ev.SpoofingFailing += s.Failing()
		}
	}
	ev.AuthorizedPassRate = ratio(authPass, ev.AuthorizedMessages)
	ev.LegitimateFailingShare = ratio(ev.LegitimateFailing, inv.Messages)
	ev.RecentFailingShare = inv.RecentShare(func(s *analyze.Sender) bool { return s.Class.Legitimate() })
	if ev.Formats, err = a.formats(ctx, d.Name, w); err != nil {
		return nil, err
	}
	return inv, nil
}

// formats says which report formats the window's reports came in.
func (a *Advisor) formats(ctx context.Context, domain string, w analyze.Window) (string, error) {
	days, err := analyze.Published(ctx, a.Store, domain, w)
	if err != nil {
		return "", err
	}
	var old, new bool
	for _, d := range days {
		old = old || d.RFC7489
		new = new || d.RFC9990
	}
	switch {
	case old && new:
		return "RFC 7489 and RFC 9990", nil
	case new:
		return "RFC 9990", nil
	case old:
		return "RFC 7489", nil
	}
	return "", nil
}

// wouldAffect estimates what the recommended step would have applied to
// in the window: its exposure of the failing mail.
func wouldAffect(rec *Recommendation) (all, legitimate int64) {
	ev := rec.Evidence
	x := exposure(rec.Next)
	failing := ev.LegitimateFailing + ev.ForwardedFailing + ev.SpoofingFailing
	return int64(float64(failing) * x), int64(float64(ev.LegitimateFailing) * x)
}

// daysAtStep counts the days up to now that receivers have seen the live
// step, from the policy_published of their reports: the same p, the same
// pct where the report has one (RFC 7489 reports), the same testing where
// it has one (RFC 9990 reports). A record changed after the last reports
// counts 0 days.
func (a *Advisor) daysAtStep(ctx context.Context, domain string, current dmarcd.RolloutStep, testing bool, now time.Time) (int, error) {
	// Look back far enough to count any gate.
	back := analyze.Window{From: now.AddDate(0, 0, -90).Format(time.DateOnly), To: now.Format(time.DateOnly)}
	days, err := analyze.Published(ctx, a.Store, domain, back)
	if err != nil {
		return 0, err
	}
	since := ""
	for i := len(days) - 1; i >= 0; i-- {
		if !days[i].Matches(current, testing) {
			break
		}
		since = days[i].Day
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
