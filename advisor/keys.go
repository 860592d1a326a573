package advisor

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/analyze"
	"github.com/dmarcd/dmarcd/internal/dnsrecord"
)

// TXTLookup returns the TXT records at name, the strings of each record
// joined. A name without TXT records (NODATA or NXDOMAIN) gives no records
// and a nil error; other failures are errors.
type TXTLookup func(ctx context.Context, name string) ([]string, error)

// Defaults of a KeyAdvisor.
const (
	// DefaultKeyEvidenceDays is how many days of aggregate reports say
	// whether a selector passes at the large reporters.
	DefaultKeyEvidenceDays = 7
	// DefaultLargeReporterShare: a reporter is large when it reported at
	// least this share of the signed mail of the domain in the window.
	DefaultLargeReporterShare = 0.05
	// DefaultSelectorPassRate: a selector passes at a reporter when at
	// least this share of its signatures there passed.
	DefaultSelectorPassRate = 0.95
	// keyInFlightDays: a report may still show a retired selector on the day
	// after its retirement (mail signed before, delivered after).
	keyInFlightDays = 1
)

// KeyAdvisor says when each DKIM key should move to its next state, and
// why. The key store applies the moves (dmarcd keys advance); the advisor
// only reads DNS and the aggregate reports.
type KeyAdvisor struct {
	Policy dmarcd.RotationPolicy
	Lookup TXTLookup
	// Store holds the aggregate reports (the views daily_selectors and
	// dkim_signatures); nil when there is none.
	Store analyze.Querier
	// EvidenceDays, LargeReporterShare and MinPassRate: the Default* values
	// when zero.
	EvidenceDays       int
	LargeReporterShare float64
	MinPassRate        float64
	Now                func() time.Time
}

// KeyAdvice is the advice for one key.
type KeyAdvice struct {
	Key dmarcd.Key
	// Next is the state the key moves to next, "" when it waits for
	// another key (a current key) or is at its end.
	Next dmarcd.KeyState
	// Ready says the checks for Next pass: move the key now.
	Ready bool
	// NotBefore is when a wait ends, when the key waits for time.
	NotBefore time.Time
	// Reason says what was checked and found, or what to do.
	Reason string
	// RotationDue says the key is older than the rotation period and no
	// keySuccessor is under way.
	RotationDue bool
	// Reporters is the evidence from the reports: per reporter, the
	// signatures with the key's selector and how many passed.
	Reporters []ReporterSelector
}

// ReporterSelector is what one reporter saw of one selector.
type ReporterSelector struct {
	OrgName  string
	Messages int64
	Passed   int64
	Large    bool // a large reporter of the domain
}

func (a *KeyAdvisor) now() time.Time {
	if a.Now != nil {
		return a.Now().UTC()
	}
	return time.Now().UTC()
}

func (a *KeyAdvisor) evidenceDays() int {
	if a.EvidenceDays > 0 {
		return a.EvidenceDays
	}
	return DefaultKeyEvidenceDays
}

// Advise returns one advice per key that is not deleted, in the order of
// keys.
func (a *KeyAdvisor) Advise(ctx context.Context, keys []dmarcd.Key) ([]KeyAdvice, error) {
	var out []KeyAdvice
	for _, k := range keys {
		if k.State == dmarcd.KeyDeleted {
			continue
		}
		adv, err := a.adviseOne(ctx, k, keys)
		if err != nil {
			return out, fmt.Errorf("advice for %s: %w", k.ID(), err)
		}
		out = append(out, adv)
	}
	return out, nil
}

const keyDay = 24 * time.Hour

func (a *KeyAdvisor) adviseOne(ctx context.Context, k dmarcd.Key, all []dmarcd.Key) (KeyAdvice, error) {
	adv := KeyAdvice{Key: k, Next: k.State.Next()}
	now := a.now()
	name := k.RecordName()
	switch k.State {
	case dmarcd.KeyCreated:
		found, other, err := a.record(ctx, k)
		if err != nil {
			return adv, err
		}
		switch {
		case found:
			adv.Ready, adv.Reason = true, "its record is in DNS at "+name
		case other != "":
			adv.Reason = name + " publishes another key (" + other + "): publish this key's record instead"
		default:
			adv.Reason = "publish its record: " + name + ". IN TXT " + dnsrecord.Quote(k.TXT())
		}

	case dmarcd.KeyPublished:
		found, other, err := a.record(ctx, k)
		if err != nil {
			return adv, err
		}
		wait := k.StateSince.Add(a.Policy.PublishedWait)
		switch {
		case !found && other != "":
			adv.Reason = name + " now publishes another key (" + other + ")"
		case !found:
			adv.Reason = "its record is no longer in DNS at " + name
		case now.Before(wait):
			adv.NotBefore = wait
			adv.Reason = fmt.Sprintf("its record is in DNS since %s; sign from %s on, when resolvers that cached \"no such record\" have forgotten it", keyDate(k.StateSince), keyDate(wait))
		default:
			adv.Ready = true
			adv.Reason = fmt.Sprintf("its record has been in DNS for %s, longer than the published wait of %s", keyDays(now.Sub(k.StateSince)), keyDays(a.Policy.PublishedWait))
		}

	case dmarcd.KeySigning:
		if !keyOthersSign(k, all) {
			adv.Ready, adv.Reason = true, "it is the only signing key of "+k.Domain+" for "+k.Algorithm
			break
		}
		if a.Store == nil {
			adv.Reason = "no report store: cannot tell whether the selector passes at the large reporters"
			break
		}
		since := k.StateSince
		if w := now.Add(-time.Duration(a.evidenceDays()) * keyDay); w.After(since) {
			since = w
		}
		reps, err := a.reporters(ctx, k, since)
		if err != nil {
			return adv, err
		}
		adv.Reporters = reps
		adv.Ready, adv.Reason = a.passesAtLarge(k, reps, since)

	case dmarcd.KeyCurrent:
		adv.Next = ""
		due := k.Created.Add(a.Policy.RotationPeriod)
		if succ := keySuccessor(k, all); succ != nil {
			adv.Reason = fmt.Sprintf("a rotation is under way: %s is %s; this key retires when it becomes current", succ.Selector, succ.State)
		} else if !now.Before(due) {
			adv.RotationDue = true
			adv.Reason = fmt.Sprintf("created %s, older than the rotation period of %s: rotate it (dmarcd keys rotate --domain %s)", keyDate(k.Created), keyDays(a.Policy.RotationPeriod), k.Domain)
		} else {
			adv.NotBefore = due
			adv.Reason = "the domain's key; rotate it from " + keyDate(due) + " on"
		}

	case dmarcd.KeyRetired:
		end := k.StateSince.Add(a.Policy.GracePeriod)
		if now.Before(end) {
			adv.NotBefore = end
			adv.Reason = fmt.Sprintf("retired %s; its record stays published for the grace period, until %s", keyDate(k.StateSince), keyDate(end))
			break
		}
		if a.Store == nil {
			adv.Reason = "no report store: cannot tell whether mail signed with the selector is gone"
			break
		}
		after := k.StateSince.Add(keyInFlightDays * keyDay)
		n, last, err := analyze.SelectorTraffic(ctx, a.Store, k.Domain, k.Selector, keyDate(after))
		if err != nil {
			return adv, err
		}
		if n > 0 {
			adv.Reason = fmt.Sprintf("reports still show %d messages signed with %s after %s (the last on %s): something still signs with it; find it before revoking", n, k.Selector, keyDate(after), last)
			break
		}
		adv.Ready = true
		adv.Reason = fmt.Sprintf("the grace period of %s is over and no report shows the selector after %s: publish the revoked record (p=)", keyDays(a.Policy.GracePeriod), keyDate(after))

	case dmarcd.KeyRevoked:
		txts, err := a.lookup(ctx, name)
		if err != nil {
			return adv, err
		}
		for _, txt := range txts {
			if r, err := dnsrecord.ParseKey(txt); err == nil && r.Matches(k) {
				adv.Reason = name + " still publishes the key: publish " + name + ". IN TXT " + dnsrecord.Quote(k.TXT())
				return adv, nil
			}
		}
		wait := k.StateSince.Add(a.Policy.PublishedWait)
		if now.Before(wait) {
			adv.NotBefore = wait
			adv.Reason = "revoked " + keyDate(k.StateSince) + "; delete the private key from " + keyDate(wait) + " on"
			break
		}
		adv.Ready, adv.Reason = true, "the record no longer publishes the key: the private key can go"
	}
	return adv, nil
}

func (a *KeyAdvisor) lookup(ctx context.Context, name string) ([]string, error) {
	if a.Lookup == nil {
		return nil, fmt.Errorf("no DNS lookup configured")
	}
	return a.Lookup(ctx, name)
}

// record says whether k's record is published with its key; other is the
// p= of another DKIM key published at the name (a short prefix).
func (a *KeyAdvisor) record(ctx context.Context, k dmarcd.Key) (found bool, other string, err error) {
	txts, err := a.lookup(ctx, k.RecordName())
	if err != nil {
		return false, "", fmt.Errorf("looking up %s: %w", k.RecordName(), err)
	}
	for _, txt := range txts {
		// dnsrecord.ParseKey is the parser `dmarcd check` and the wizard
		// use: a record they refuse is not this key's, nor another key.
		r, err := dnsrecord.ParseKey(txt)
		if err != nil {
			continue
		}
		if r.Matches(k) {
			return true, "", nil
		}
		if r.Revoked {
			other = "p= empty: revoked"
		} else {
			other = "k=" + r.KeyType
		}
	}
	return false, other, nil
}

// keyOthersSign says whether another key of k's domain and algorithm signs.
func keyOthersSign(k dmarcd.Key, all []dmarcd.Key) bool {
	for _, o := range all {
		if o.Domain == k.Domain && o.Algorithm == k.Algorithm && o.Selector != k.Selector && o.State.Signs() {
			return true
		}
	}
	return false
}

// keySuccessor is a newer key of k's domain and algorithm on its way up.
func keySuccessor(k dmarcd.Key, all []dmarcd.Key) *dmarcd.Key {
	for i, o := range all {
		if o.Domain == k.Domain && o.Algorithm == k.Algorithm && o.Selector != k.Selector &&
			(o.State == dmarcd.KeyCreated || o.State == dmarcd.KeyPublished || o.State == dmarcd.KeySigning) {
			return &all[i]
		}
	}
	return nil
}

// reporters returns, per reporter of k's domain, what it saw of k's
// selector since the day of since; Large marks the large reporters.
func (a *KeyAdvisor) reporters(ctx context.Context, k dmarcd.Key, since time.Time) ([]ReporterSelector, error) {
	seen, err := analyze.SelectorReports(ctx, a.Store, k.Domain, keyDate(since))
	if err != nil {
		return nil, err
	}
	byOrg := map[string]*ReporterSelector{}
	total := map[string]int64{}
	var all int64
	for _, s := range seen {
		total[s.OrgName] += s.Messages
		all += s.Messages
		r := byOrg[s.OrgName]
		if r == nil {
			r = &ReporterSelector{OrgName: s.OrgName}
			byOrg[s.OrgName] = r
		}
		if s.Selector == strings.ToLower(k.Selector) {
			r.Messages += s.Messages
			r.Passed += s.Passed
		}
	}
	share := a.LargeReporterShare
	if share <= 0 {
		share = DefaultLargeReporterShare
	}
	var out []ReporterSelector
	for org, r := range byOrg {
		r.Large = all > 0 && float64(total[org]) >= share*float64(all)
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		if total[out[i].OrgName] != total[out[j].OrgName] {
			return total[out[i].OrgName] > total[out[j].OrgName]
		}
		return out[i].OrgName < out[j].OrgName
	})
	return out, nil
}

// passesAtLarge says whether k's selector passes at every large reporter.
func (a *KeyAdvisor) passesAtLarge(k dmarcd.Key, reps []ReporterSelector, since time.Time) (bool, string) {
	rate := a.MinPassRate
	if rate <= 0 {
		rate = DefaultSelectorPassRate
	}
	var ok, missing, failing []string
	for _, r := range reps {
		if !r.Large {
			continue
		}
		switch {
		case r.Messages == 0:
			missing = append(missing, r.OrgName)
		case float64(r.Passed) < rate*float64(r.Messages):
			failing = append(failing, fmt.Sprintf("%s (%d of %d pass)", r.OrgName, r.Passed, r.Messages))
		default:
			ok = append(ok, fmt.Sprintf("%s (%d of %d)", r.OrgName, r.Passed, r.Messages))
		}
	}
	switch {
	case len(ok)+len(missing)+len(failing) == 0:
		return false, "no aggregate report for " + k.Domain + " since " + keyDate(since) + ": wait for reports"
	case len(failing) > 0:
		return false, fmt.Sprintf("selector %s fails at %s: check its record and the signer", k.Selector, strings.Join(failing, ", "))
	case len(missing) > 0:
		return false, fmt.Sprintf("selector %s passes at %s, but no report from %s shows it yet", k.Selector, strings.Join(ok, ", "), strings.Join(missing, ", "))
	}
	return true, fmt.Sprintf("selector %s passes at the large reporters since %s: %s", k.Selector, keyDate(since), strings.Join(ok, ", "))
}

func keyDate(t time.Time) string { return t.UTC().Format("2006-01-02") }

func keyDays(d time.Duration) string {
	n := int(d.Round(time.Hour).Hours() / 24)
	if n == 1 {
		return "1 day"
	}
	if n == 0 {
		return fmt.Sprintf("%.0f hours", d.Hours())
	}
	return fmt.Sprintf("%d days", n)
}
