package alert

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/advisor"
	"github.com/dmarcd/dmarcd/analyze"
	"github.com/dmarcd/dmarcd/internal/figures"
)

// Thresholds say when a domain's data is worth an alert. Each sender domain
// may set its own ([domain.alerts] in the config); DefaultThresholds
// otherwise.
type Thresholds struct {
	// FailingSourceMessages: a new source is told about when more of its
	// mail than this failed DMARC.
	FailingSourceMessages int64 `toml:"failing_source_messages"`
	// NewSourceDays: a source first seen within this many days is new.
	NewSourceDays int `toml:"new_source_days"`
	// BaselineDays is how far back "seen before" and "used to report"
	// look.
	BaselineDays int `toml:"baseline_days"`
	// PassRate is the least DMARC pass rate over PassRateDays, 0..1,
	// when the domain had at least PassRateMinMessages.
	PassRate            float64 `toml:"pass_rate"`
	PassRateDays        int     `toml:"pass_rate_days"`
	PassRateMinMessages int64   `toml:"pass_rate_min_messages"`
	// SilentDays: a large reporter with no report for this many days is
	// silent. LargeReporterShare is the share of the domain's reported
	// mail that makes a reporter large.
	SilentDays         int     `toml:"silent_days"`
	LargeReporterShare float64 `toml:"large_reporter_share"`
	// TLSFailureRate is the most of the TLS sessions to the domain's MX
	// hosts (SMTP TLS reports, over PassRateDays) that may fail, 0..1,
	// when there were at least TLSMinSessions.
	TLSFailureRate float64 `toml:"tls_failure_rate"`
	TLSMinSessions int64   `toml:"tls_min_sessions"`
}

// DefaultThresholds apply where the config sets none.
var DefaultThresholds = Thresholds{
	FailingSourceMessages: 50,
	NewSourceDays:         2,
	BaselineDays:          30,
	PassRate:              0.90,
	PassRateDays:          7,
	PassRateMinMessages:   100,
	SilentDays:            3,
	LargeReporterShare:    0.05,
	TLSFailureRate:        0.01,
	TLSMinSessions:        100,
}

// withDefaults fills the zero fields of t from DefaultThresholds.
func (t Thresholds) withDefaults() Thresholds { return t.Over(DefaultThresholds) }

// Over fills the zero fields of t from d: a domain's own thresholds over
// the configured defaults.
func (t Thresholds) Over(d Thresholds) Thresholds {
	t.FailingSourceMessages = cmp.Or(t.FailingSourceMessages, d.FailingSourceMessages)
	t.NewSourceDays = cmp.Or(t.NewSourceDays, d.NewSourceDays)
	t.BaselineDays = cmp.Or(t.BaselineDays, d.BaselineDays)
	t.PassRate = cmp.Or(t.PassRate, d.PassRate)
	t.PassRateDays = cmp.Or(t.PassRateDays, d.PassRateDays)
	t.PassRateMinMessages = cmp.Or(t.PassRateMinMessages, d.PassRateMinMessages)
	t.SilentDays = cmp.Or(t.SilentDays, d.SilentDays)
	t.LargeReporterShare = cmp.Or(t.LargeReporterShare, d.LargeReporterShare)
	t.TLSFailureRate = cmp.Or(t.TLSFailureRate, d.TLSFailureRate)
	t.TLSMinSessions = cmp.Or(t.TLSMinSessions, d.TLSMinSessions)
	return t
}

// Domain is a sender domain as the report detectors see it.
type Domain struct {
	dmarcd.SenderDomain
	Thresholds Thresholds
	// Classifier tells the class of its sources; nil for a plain one.
	Classifier *analyze.Classifier
}

// days returns the window of the n days that end yesterday (reports cover
// whole days and arrive the day after).
func days(now time.Time, n int) analyze.Window {
	end := now.AddDate(0, 0, -1)
	return analyze.Window{From: end.AddDate(0, 0, 1-n).Format(time.DateOnly), To: end.Format(time.DateOnly)}
}

// perDomain makes a detector that checks each domain on its own, so that
// one domain's failure (a DNS timeout, a bad record) neither hides the
// alerts of the others nor resolves its own: the failures come back as
// DomainErrors.
func perDomain(kinds []dmarcd.AlertKind, domains []Domain, check func(ctx context.Context, now time.Time, d Domain) ([]dmarcd.Alert, error)) Detector {
	return Detector{Kinds: kinds, Detect: func(ctx context.Context, now time.Time) ([]dmarcd.Alert, error) {
		var out []dmarcd.Alert
		failed := DomainErrors{}
		for _, d := range domains {
			as, err := check(ctx, now, d)
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				failed[d.Name] = err
				continue
			}
			out = append(out, as...)
		}
		if len(failed) > 0 {
			return out, failed
		}
		return out, nil
	}}
}

// FailingSources alerts on sources not seen before whose mail fails DMARC;
// a source that failed in the window and no longer does is cleared.
func FailingSources(q analyze.Querier, domains []Domain) Detector {
	return perDomain([]dmarcd.AlertKind{dmarcd.AlertFailingSource}, domains, func(ctx context.Context, now time.Time, d Domain) ([]dmarcd.Alert, error) {
		var out []dmarcd.Alert
		t := d.Thresholds.withDefaults()
		cl := d.Classifier
		if cl == nil {
			cl = &analyze.Classifier{}
		}
		w := days(now, t.BaselineDays)
		recent := days(now, t.NewSourceDays)
		sources, err := cl.Sources(ctx, q, d.Name, w)
		if err != nil {
			return nil, err
		}
		failing, err := analyze.FailingSources(ctx, q, d.Name, recent)
		if err != nil {
			return nil, err
		}
		failingRecently := map[string]bool{}
		for _, ip := range failing {
			failingRecently[ip] = true
		}
		for _, s := range sources {
			if s.FirstFailDay == "" {
				continue
			}
			if !failingRecently[s.IP] {
				out = append(out, dmarcd.Alert{Domain: d.Name, Kind: dmarcd.AlertFailingSource, Subject: s.IP, Clear: true,
					Title: fmt.Sprintf("%s no longer fails DMARC for %s", sourceName(s), d.Name),
					Text: fmt.Sprintf("No failing mail from %s since %s; %s of its %s messages passed DMARC from %s to %s.",
						sourceName(s), recent.From, figures.Count(s.DMARCPass), figures.Count(s.Messages), w.From, w.To)})
				continue
			}
			out = append(out, dmarcd.Alert{
				Domain: d.Name, Kind: dmarcd.AlertFailingSource, Subject: s.IP,
				Onset: s.FirstDay >= recent.From && s.Failing() > t.FailingSourceMessages,
				Title: fmt.Sprintf("New source %s fails DMARC for %s", sourceName(s), d.Name),
				Text: fmt.Sprintf("%s of %s messages from %s failed DMARC since %s. Class: %s (%s).",
					figures.Count(s.Failing()), figures.Count(s.Messages), sourceName(s), s.FirstDay, s.Class, s.Why),
				Facts: []dmarcd.Fact{
					{Label: "Failing", Value: figures.Count(s.Failing())},
					{Label: "Messages", Value: figures.Count(s.Messages)},
					{Label: "Class", Value: string(s.Class)},
					{Label: "First seen", Value: s.FirstDay},
				},
				Action: sourceAction(s.Class, d.Name),
			})
		}
		return out, nil
	})
}

func sourceName(s analyze.Source) string {
	if s.PTR != "" {
		return s.IP + " (" + s.PTR + ")"
	}
	return s.IP
}

func sourceAction(c analyze.Class, domain string) string {
	switch c {
	case analyze.Authorized, analyze.AuthorizedFailing, analyze.Unconfigured:
		return "If this sender is yours, make its mail pass DMARC (dmarcd senders " + domain + " names the fix: a DKIM key of " + domain + ", or an SPF include with an aligned envelope sender) before the policy tightens; if it is not, add it to not_ours of the domain."
	case analyze.Forwarder:
		return "A forwarder or list: its mail fails because the forwarding breaks authentication. Nothing to fix on your side; keep DKIM signing so that forwarded mail keeps passing."
	}
	return "If this source sends for you, authorize it (dmarcd domain add " + domain + " --ip ...); otherwise it is spoofing, which the DMARC policy will stop as the rollout advances."
}

// PassRate alerts when a domain's DMARC pass rate over the rolling window
// falls below its threshold, and clears with the rate of the day.
func PassRate(q analyze.Querier, domains []Domain) Detector {
	return perDomain([]dmarcd.AlertKind{dmarcd.AlertPassRate}, domains, func(ctx context.Context, now time.Time, d Domain) ([]dmarcd.Alert, error) {
		t := d.Thresholds.withDefaults()
		w := days(now, t.PassRateDays)
		daily, err := analyze.Daily(ctx, q, d.Name, w)
		if err != nil {
			return nil, err
		}
		total := analyze.Total(daily)
		rate := fmt.Sprintf("%.1f%%", 100*total.PassRate())
		a := dmarcd.Alert{
			Domain: d.Name, Kind: dmarcd.AlertPassRate, Subject: "dmarc", Onset: true,
			Title: fmt.Sprintf("DMARC pass rate of %s is %s", d.Name, rate),
			Text: fmt.Sprintf("%s of %s messages passed DMARC from %s to %s; the threshold is %.1f%%.",
				rate, figures.Count(total.Messages), w.From, w.To, 100*t.PassRate),
			Facts: []dmarcd.Fact{
				{Label: "Pass rate", Value: rate},
				{Label: "Messages", Value: figures.Count(total.Messages)},
				{Label: "Failing", Value: figures.Count(total.Messages - total.DMARCPass)},
			},
			Action: "Look at the failing senders (dmarcd senders " + d.Name + "): a sender of yours failing is urgent, spoofing is not.",
		}
		switch {
		case total.Messages < t.PassRateMinMessages:
			a.Clear, a.Action = true, ""
			a.Text = fmt.Sprintf("%s messages from %s to %s, fewer than the %s the threshold needs.", figures.Count(total.Messages), w.From, w.To, figures.Count(t.PassRateMinMessages))
		case total.PassRate() >= t.PassRate:
			a.Clear, a.Action = true, ""
		}
		return []dmarcd.Alert{a}, nil
	})
}

// TLSFailures alerts when the SMTP TLS reports of a domain show more
// failed sessions than its threshold, per policy type (an MTA-STS policy in
// enforce mode means the mail of those sessions was not delivered).
func TLSFailures(q analyze.Querier, domains []Domain) Detector {
	return perDomain([]dmarcd.AlertKind{dmarcd.AlertTLS}, domains, func(ctx context.Context, now time.Time, d Domain) ([]dmarcd.Alert, error) {
		var out []dmarcd.Alert
		t := d.Thresholds.withDefaults()
		w := days(now, t.PassRateDays)
		policies, failures, err := analyze.TLS(ctx, q, d.Name, w)
		if err != nil {
			return nil, err
		}
		for _, p := range policies {
			a := dmarcd.Alert{
				Domain: d.Name, Kind: dmarcd.AlertTLS, Subject: p.Type, Onset: true,
				Title: fmt.Sprintf("%.1f%% of TLS sessions to %s fail (%s)", 100*p.FailureRate(), d.Name, p.Type),
				Text: fmt.Sprintf("%s of %s sessions that %d reporters opened to the MX hosts of %s failed to set up TLS from %s to %s; the threshold is %.1f%%.",
					figures.Count(p.Failed), figures.Count(p.Successful+p.Failed), p.Reporters, d.Name, w.From, w.To, 100*t.TLSFailureRate),
				Facts: []dmarcd.Fact{
					{Label: "Failure rate", Value: fmt.Sprintf("%.1f%%", 100*p.FailureRate())},
					{Label: "Failed sessions", Value: figures.Count(p.Failed)},
					{Label: "Policy", Value: p.Type},
				},
				Action: "Look at the failures (dmarcd tls " + d.Name + "): an expired or mismatched certificate, or an MX host without STARTTLS, loses mail under an enforced MTA-STS or DANE policy.",
			}
			if p.Successful+p.Failed < t.TLSMinSessions || p.FailureRate() <= t.TLSFailureRate {
				a.Clear, a.Action, a.Facts = true, "", nil
				out = append(out, a)
				continue
			}
			for _, f := range failures {
				if f.Domain == d.Name {
					a.Facts = append(a.Facts, dmarcd.Fact{Label: "Most failed", Value: fmt.Sprintf("%s at %s (%s)", f.ResultType, cmp.Or(f.ReceivingMX, "an MX host"), figures.Count(f.Sessions))})
					break
				}
			}
			out = append(out, a)
		}
		return out, nil
	})
}

// SilentReporters alerts when a large reporter that sent reports for a
// domain stopped: its reports may go elsewhere (a changed rua=) or be
// refused by the report mailbox. A reporter that reports again clears.
func SilentReporters(q analyze.Querier, domains []Domain) Detector {
	return perDomain([]dmarcd.AlertKind{dmarcd.AlertReporterSilent}, domains, func(ctx context.Context, now time.Time, d Domain) ([]dmarcd.Alert, error) {
		var out []dmarcd.Alert
		t := d.Thresholds.withDefaults()
		recent := days(now, t.SilentDays)
		base := analyze.Window{From: days(now, t.BaselineDays).From, To: day(recent.From).AddDate(0, 0, -1).Format(time.DateOnly)}
		before, err := analyze.Reporters(ctx, q, d.Name, base)
		if err != nil {
			return nil, err
		}
		lately, err := analyze.Reporters(ctx, q, d.Name, recent)
		if err != nil {
			return nil, err
		}
		active := map[string]analyze.Reporter{}
		for _, r := range lately {
			active[r.OrgName] = r
		}
		var total int64
		for _, r := range before {
			total += r.Messages
		}
		for _, r := range before {
			if total == 0 || float64(r.Messages)/float64(total) < t.LargeReporterShare {
				continue
			}
			if now, ok := active[r.OrgName]; ok {
				out = append(out, dmarcd.Alert{Domain: d.Name, Kind: dmarcd.AlertReporterSilent, Subject: r.OrgName, Clear: true,
					Title: fmt.Sprintf("%s sends reports for %s again", r.OrgName, d.Name),
					Text:  fmt.Sprintf("%s sent %d reports of %s messages since %s, the last on %s.", r.OrgName, now.Reports, figures.Count(now.Messages), recent.From, now.LastDay)})
				continue
			}
			out = append(out, dmarcd.Alert{
				Domain: d.Name, Kind: dmarcd.AlertReporterSilent, Subject: r.OrgName, Onset: true,
				Title: fmt.Sprintf("%s stopped sending reports for %s", r.OrgName, d.Name),
				Text: fmt.Sprintf("%s reported %s messages in %d reports up to %s, and nothing since.",
					r.OrgName, figures.Count(r.Messages), r.Reports, r.LastDay),
				Facts:  []dmarcd.Fact{{Label: "Last report", Value: r.LastDay}, {Label: "Messages reported", Value: figures.Count(r.Messages)}},
				Action: "Check that the DMARC record's rua= still points at your report mailbox, that the mailbox accepts mail, and that dmarcd's poller logs in (dmarcd check " + d.Name + ").",
			})
		}
		return out, nil
	})
}

// KeysDue alerts on DKIM keys due for rotation and on rotation steps that
// are ready.
func KeysDue(advise func(ctx context.Context) ([]advisor.KeyAdvice, error)) Detector {
	return Detector{Kinds: []dmarcd.AlertKind{dmarcd.AlertKeyDue}, Detect: func(ctx context.Context, now time.Time) ([]dmarcd.Alert, error) {
		advice, err := advise(ctx)
		if err != nil {
			return nil, err
		}
		var out []dmarcd.Alert
		for _, a := range advice {
			k := a.Key
			switch {
			case a.RotationDue:
				out = append(out, dmarcd.Alert{
					Domain: k.Domain, Kind: dmarcd.AlertKeyDue, Subject: k.Selector, Onset: true,
					Title:  fmt.Sprintf("DKIM key %s of %s is due for rotation", k.Selector, k.Domain),
					Text:   a.Reason,
					Facts:  []dmarcd.Fact{{Label: "Created", Value: k.Created.Format(time.DateOnly)}, {Label: "State", Value: string(k.State)}},
					Action: "Start the rotation: dmarcd keys rotate --domain " + k.Domain,
				})
			case a.Ready && a.Next != "":
				out = append(out, dmarcd.Alert{
					Domain: k.Domain, Kind: dmarcd.AlertKeyDue, Subject: k.Selector + ":" + string(a.Next), Onset: true,
					Title:  fmt.Sprintf("DKIM key %s of %s can move to %s", k.Selector, k.Domain, a.Next),
					Text:   a.Reason,
					Facts:  []dmarcd.Fact{{Label: "State", Value: string(k.State)}, {Label: "Next", Value: string(a.Next)}},
					Action: "dmarcd keys advance --domain " + k.Domain + " --selector " + k.Selector,
				})
			}
		}
		return out, nil
	}}
}

// UnusableKey is a DKIM key that should sign and cannot.
type UnusableKey struct {
	Domain string
	// ID is SELECTOR._domainkey.DOMAIN.
	ID     string
	Reason string
}

// KeysUnusable alerts on each key the signer leaves out because its files
// are broken: mail of its domain goes unsigned by it (or by every key of
// the domain, when it was the only one).
func KeysUnusable(problems func(ctx context.Context) ([]UnusableKey, error)) Detector {
	return Detector{Kinds: []dmarcd.AlertKind{dmarcd.AlertKeyUnusable}, Detect: func(ctx context.Context, now time.Time) ([]dmarcd.Alert, error) {
		keys, err := problems(ctx)
		if err != nil {
			return nil, err
		}
		var out []dmarcd.Alert
		for _, k := range keys {
			out = append(out, dmarcd.Alert{
				Domain: k.Domain, Kind: dmarcd.AlertKeyUnusable, Subject: k.ID,
				Title:  fmt.Sprintf("DKIM key %s cannot sign", k.ID),
				Text:   "The signer leaves this key out: " + k.Reason + ". The domain's other keys still sign; mail the key alone signed goes out unsigned.",
				Action: "Restore the key's files from a backup, or retire it and rotate: dmarcd keys rotate --domain " + k.Domain,
			})
		}
		return out, nil
	}}
}

// QuarantineGrowth alerts when more than max inputs were quarantined in the
// last day: a reporter changed its format, or the poller reads mail that is
// not reports.
func QuarantineGrowth(q analyze.Querier, max int64) Detector {
	return Detector{Kinds: []dmarcd.AlertKind{dmarcd.AlertIngest}, Detect: func(ctx context.Context, now time.Time) ([]dmarcd.Alert, error) {
		since := now.Add(-24 * time.Hour).UTC()
		n, err := analyze.QuarantinedSince(ctx, q, since)
		if err != nil {
			return nil, err
		}
		a := dmarcd.Alert{
			Kind: dmarcd.AlertIngest, Subject: "quarantine", Onset: true,
			Title:  fmt.Sprintf("%s inputs quarantined in the last day", figures.Count(n)),
			Text:   fmt.Sprintf("%s inputs could not be parsed since %s UTC; the threshold is %s.", figures.Count(n), since.Format(time.DateTime), figures.Count(max)),
			Action: "See why: dmarcd query \"SELECT received_at, source, reason FROM quarantined ORDER BY received_at DESC LIMIT 20\"",
		}
		if n <= max {
			a.Clear, a.Action = true, ""
		}
		return []dmarcd.Alert{a}, nil
	}}
}

func day(s string) time.Time {
	t, _ := time.Parse(time.DateOnly, s)
	return t
}
