package analyze

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Sender is a service or a server that sends mail as a domain: the sources
// (IP addresses) that share an identity, with their volume and results,
// what they authenticate as, and their class.
//
// The identity of a source is, in this order: a network the configuration
// lists for the domain; a service of the catalogue, recognised by the d= of
// a passing DKIM signature, the domain of a passing SPF check or envelope
// sender, or its forward-confirmed reverse DNS; the organizational domain
// it authenticates as (DKIM or SPF) other than the domain; for mail that
// passes, its forward-confirmed reverse DNS; else its address alone.
type Sender struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Service is the catalogue's entry, nil for a sender it does not
	// know.
	Service *Service `json:"service,omitempty"`
	Class   Class    `json:"class"`
	// Why says what decided the class.
	Why string `json:"why"`
	// NotOurs: the user marked the sender as not theirs (not_ours).
	NotOurs bool `json:"not_ours,omitempty"`

	Messages    int64 `json:"messages"`
	DMARCPass   int64 `json:"dmarc_pass"`
	DKIMAligned int64 `json:"dkim_aligned"`
	SPFAligned  int64 `json:"spf_aligned"`
	// Share is its part of the domain's mail in the window.
	Share float64 `json:"share"`
	// RecentFailing is its failing mail on each of the last days of the
	// window (Inventory.Recent), and RecentShare the largest share of the
	// domain's mail of one of those days it failed for: a sender that
	// started failing late in the window shows there at its current rate.
	RecentFailing []int64 `json:"recent_failing"`
	RecentShare   float64 `json:"recent_share"`

	FirstDay     string `json:"first_day"`
	LastDay      string `json:"last_day"`
	Days         int    `json:"days"`
	FirstFailDay string `json:"first_fail_day,omitempty"`

	// IPs are its addresses, the most mail first (at most MaxSenderIPs);
	// IPCount counts them all. PTRs are their forward-confirmed reverse
	// DNS names.
	IPs     []string `json:"ips"`
	IPCount int      `json:"ip_count"`
	PTRs    []string `json:"ptrs,omitempty"`

	// DKIMDomains are the d= of its passing DKIM signatures, with their
	// selectors; SPFDomains the domains its SPF checks passed for.
	// Aligned ones are the domain's own (relaxed alignment).
	DKIMDomains []AuthDomain `json:"dkim_domains,omitempty"`
	SPFDomains  []AuthDomain `json:"spf_domains,omitempty"`
	// OwnEnvelope counts the messages it sent with an envelope sender
	// (MAIL FROM) in the domain: SPF of the domain decides them, so an SPF
	// include can make them pass.
	OwnEnvelope int64 `json:"own_envelope"`
	// Forwarded counts the messages with evidence of forwarding.
	Forwarded int64 `json:"forwarded"`
	// Reasons counts the messages per policy override the reporters gave
	// (forwarded, mailing_list, local_policy ...).
	Reasons map[string]int64 `json:"reasons,omitempty"`

	ev      evidence
	steady  bool
	sources []int // indexes into Inventory.Sources
}

// AuthDomain is a domain a sender authenticates as.
type AuthDomain struct {
	Domain    string   `json:"domain"`
	Selectors []string `json:"selectors,omitempty"`
	Messages  int64    `json:"messages"`
	Aligned   bool     `json:"aligned"`
}

// Failing is the number of its messages that failed DMARC.
func (s *Sender) Failing() int64 { return s.Messages - s.DMARCPass }

// PassRate is the share of its messages that passed DMARC.
func (s *Sender) PassRate() float64 { return ratio(s.DMARCPass, s.Messages) }

// FailingShare is its failing mail as a share of the domain's mail.
func (s *Sender) FailingShare(domainMessages int64) float64 {
	return ratio(s.Failing(), domainMessages)
}

// Inventory is the senders of a domain over a window.
type Inventory struct {
	Domain   string `json:"domain"`
	Window   Window `json:"window"`
	Messages int64  `json:"messages"`
	// Recent are the last days of the window (Classifier.RecentDays) with
	// the domain's mail of each.
	Recent  []DayMessages `json:"recent"`
	Senders []Sender      `json:"senders"`
	Sources []Source      `json:"-"`
}

// DayMessages is the mail of a day.
type DayMessages struct {
	Day      string `json:"day"`
	Messages int64  `json:"messages"`
}

// RecentShare is the largest share of the domain's mail that the senders
// for which legit says true failed DMARC with on one of the recent days.
func (inv *Inventory) RecentShare(legit func(*Sender) bool) float64 {
	var share float64
	for i, d := range inv.Recent {
		var failing int64
		for k := range inv.Senders {
			if s := &inv.Senders[k]; legit(s) && i < len(s.RecentFailing) {
				failing += s.RecentFailing[i]
			}
		}
		share = max(share, ratio(failing, d.Messages))
	}
	return share
}

// Limits of an inventory.
const (
	// MaxSenderIPs bounds the addresses listed per sender (IPCount
	// counts them all).
	MaxSenderIPs = 20
	// MaxSenderPTRs bounds the reverse DNS names listed per sender.
	MaxSenderPTRs = 5
	// DefaultRecentDays is the span of the recent figures.
	DefaultRecentDays = 3
	// SteadyMinDays: a sender seen on fewer days is never steady.
	SteadyMinDays = 3
	// FailingNoiseShare: an authorized sender whose failing share of its
	// own mail is at most this is authorized, not authorized-failing.
	// Receivers' gateways and forwarders alter a little of any domain's
	// mail after it was signed; that is no sign of a setup problem.
	FailingNoiseShare = 0.02
)

// Inventory groups the sources of domain in the window into senders and
// classifies them. The class of a sender, in this order:
//
//   - Spoofing, when the user marked it (NotOurs).
//   - Authorized (or AuthorizedFailing, when more than FailingNoiseShare
//     of its mail fails): a listed network, aligned DKIM with one of the
//     domain's selectors, aligned SPF, a catalogue service whose include
//     the configuration lists, or aligned DKIM from a sending service.
//   - Forwarder, on evidence only: for at least half of its mail the
//     reporters say forwarded, mailing_list or trusted_forwarder (or
//     local_policy with arc=pass), or the domain's own signature arrives
//     broken beside the relay's own authentication; or aligned DKIM passes
//     while SPF fails; or it is a forwarding service of the catalogue. A
//     PTR in a large provider's domain is no such evidence: Google,
//     Microsoft and Amazon host senders as well as forwarders.
//   - Unconfigured: a sending service of the catalogue recognised by its
//     authentication; or it authenticates as another domain for most of
//     its mail and is steady or named so by its confirmed reverse DNS;
//     or it sends steadily (SteadyMinDays or more, and on at least half of
//     the days since it first appeared).
//   - Spoofing: the rest.
func (c *Classifier) Inventory(ctx context.Context, q Querier, domain string, w Window) (*Inventory, error) {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	var recent []string
	for i := cmp.Or(c.RecentDays, DefaultRecentDays) - 1; i >= 0; i-- {
		if d := day(w.To).AddDate(0, 0, -i).Format(time.DateOnly); d >= w.From {
			recent = append(recent, d)
		}
	}
	sources, recentFigures, err := sourceDays(ctx, q, domain, w, recent)
	if err != nil {
		return nil, err
	}
	evs, err := c.evidence(ctx, q, domain, w)
	if err != nil {
		return nil, err
	}
	c.reverse(ctx, sources)
	inv := &Inventory{Domain: domain, Window: w, Sources: sources}
	for _, d := range recent {
		inv.Recent = append(inv.Recent, DayMessages{Day: d})
	}
	for _, s := range sources {
		inv.Messages += s.Messages
		for i, f := range recentFigures[s.IP] {
			inv.Recent[i].Messages += f.Messages
		}
	}
	byID := map[string]int{}
	for i := range sources {
		s := &sources[i]
		ev := evs[s.IP]
		if ev == nil {
			ev = &evidence{}
		}
		id, name, svc := c.identify(s, ev, domain)
		k, ok := byID[id]
		if !ok {
			k = len(inv.Senders)
			byID[id] = k
			inv.Senders = append(inv.Senders, Sender{ID: id, Name: name, Service: svc, FirstDay: s.FirstDay, LastDay: s.LastDay})
		}
		snd := &inv.Senders[k]
		snd.sources = append(snd.sources, i)
		snd.add(s, ev, recentFigures[s.IP])
	}
	cat := c.catalogue()
	for k := range inv.Senders {
		snd := &inv.Senders[k]
		snd.finish(sources, domain, w, inv)
		snd.Class, snd.Why = c.classify(snd, cat, domain)
		for _, i := range snd.sources {
			sources[i].Sender, sources[i].Class, sources[i].Why = snd.ID, snd.Class, snd.Why
		}
	}
	slices.SortStableFunc(inv.Senders, func(a, b Sender) int {
		if a.Messages != b.Messages {
			return cmp.Compare(b.Messages, a.Messages)
		}
		return strings.Compare(a.ID, b.ID)
	})
	return inv, nil
}

func (c *Classifier) catalogue() *Catalogue {
	if c.Catalogue != nil {
		return c.Catalogue
	}
	return DefaultCatalogue
}

// figures are messages and how many passed DMARC.
type figures struct{ Messages, DMARCPass int64 }

// evidence is what the records of one source (or, summed, of one sender)
// say about who sent them.
type evidence struct {
	// knownSelector: aligned DKIM passed with one of the domain's
	// selectors; alignedSelectors: per selector, aligned DKIM passes.
	knownSelector    int64
	alignedSelectors map[string]int64
	// dkim and spf: per domain other than the policy domain's
	// organization, the messages whose signature (with its selectors) or
	// SPF check passed for it.
	dkim      map[string]*AuthDomain
	spf       map[string]int64
	envelopes map[string]int64 // envelope sender domains other than the domain's
	// thirdParty: messages that authenticated (DKIM or SPF) as a domain
	// other than the policy domain's organization.
	thirdParty int64
	// ownEnvelope: messages with an envelope sender in the domain;
	// ownEnvelopeFail: of them, the ones whose SPF check did not pass.
	ownEnvelope, ownEnvelopeFail int64
	// forwarded: messages with evidence of forwarding.
	forwarded int64
	reasons   map[string]int64
}

func (e *evidence) merge(o *evidence) {
	e.knownSelector += o.knownSelector
	e.thirdParty += o.thirdParty
	e.ownEnvelope += o.ownEnvelope
	e.ownEnvelopeFail += o.ownEnvelopeFail
	e.forwarded += o.forwarded
	for k, v := range o.alignedSelectors {
		e.alignedSelectors = inc(e.alignedSelectors, k, v)
	}
	for k, v := range o.spf {
		e.spf = inc(e.spf, k, v)
	}
	for k, v := range o.envelopes {
		e.envelopes = inc(e.envelopes, k, v)
	}
	for k, v := range o.reasons {
		e.reasons = inc(e.reasons, k, v)
	}
	for k, v := range o.dkim {
		if e.dkim == nil {
			e.dkim = map[string]*AuthDomain{}
		}
		a := e.dkim[k]
		if a == nil {
			a = &AuthDomain{Domain: k}
			e.dkim[k] = a
		}
		a.Messages += v.Messages
		for _, s := range v.Selectors {
			if !slices.Contains(a.Selectors, s) {
				a.Selectors = append(a.Selectors, s)
			}
		}
	}
}

func inc(m map[string]int64, k string, v int64) map[string]int64 {
	if m == nil {
		m = map[string]int64{}
	}
	m[k] += v
	return m
}

// forwardingReasons are the policy overrides by which a reporter says that
// mail was forwarded (RFC 7489 §6.6.3 and Appendix C; RFC 9990 dropped
// "forwarded", so local_policy with an ARC result counts too).
var forwardingReasons = []string{"forwarded", "mailing_list", "trusted_forwarder"}

// evidence reads, per source, what its records say about who sent them:
// the domains its DKIM signatures and SPF checks passed for, its envelope
// senders and the reporters' policy overrides.
func (c *Classifier) evidence(ctx context.Context, q Querier, domain string, w Window) (map[string]*evidence, error) {
	rows, err := q.Query(ctx, `
SELECT source_ip, envelope_from, dkim_domains, dkim_selectors, dkim_results, spf_domains, spf_results, reasons, SUM(count)
FROM records
WHERE domain = ? AND day >= ? AND day <= ?
GROUP BY source_ip, envelope_from, dkim_domains, dkim_selectors, dkim_results, spf_domains, spf_results, reasons`, domain, w.From, w.To)
	if err != nil {
		return nil, fmt.Errorf("reading the authentication results of %s: %w", domain, err)
	}
	defer rows.Close()
	known := lower(c.Selectors)
	out := map[string]*evidence{}
	for rows.Next() {
		var ip, envelope, reasonsJSON string
		var dkimDomains, selectors, dkimResults, spfDomains, spfResults TextList
		var n Count
		if err := rows.Scan(&ip, &envelope, &dkimDomains, &selectors, &dkimResults, &spfDomains, &spfResults, &reasonsJSON, &n); err != nil {
			return nil, fmt.Errorf("reading the authentication results of %s: %w", domain, err)
		}
		e := out[ip]
		if e == nil {
			e = &evidence{}
			out[ip] = e
		}
		count := int64(n)
		var third, brokenOwn bool
		for i, d := range dkimDomains {
			d = strings.ToLower(strings.TrimSuffix(d, "."))
			sel, res := strings.ToLower(at(selectors, i)), strings.ToLower(at(dkimResults, i))
			switch {
			case d == "":
			case relaxedAligned(d, domain) && res == "pass":
				if slices.Contains(known, sel) {
					e.knownSelector += count
				}
				e.alignedSelectors = inc(e.alignedSelectors, sel, count)
			case relaxedAligned(d, domain) && res == "fail":
				brokenOwn = true
			case res == "pass":
				third = true
				if e.dkim == nil {
					e.dkim = map[string]*AuthDomain{}
				}
				a := e.dkim[d]
				if a == nil {
					a = &AuthDomain{Domain: d}
					e.dkim[d] = a
				}
				a.Messages += count
				if sel != "" && !slices.Contains(a.Selectors, sel) {
					a.Selectors = append(a.Selectors, sel)
				}
			}
		}
		for i, d := range spfDomains {
			d = strings.ToLower(strings.TrimSuffix(d, "."))
			if d != "" && !relaxedAligned(d, domain) && strings.ToLower(at(spfResults, i)) == "pass" {
				third = true
				e.spf = inc(e.spf, d, count)
			}
		}
		env := envelopeDomain(envelope)
		if env == "" && len(spfDomains) > 0 {
			env = envelopeDomain(spfDomains[0])
		}
		switch {
		case env == "":
		case relaxedAligned(env, domain):
			e.ownEnvelope += count
			if !spfPassed(env, spfDomains, spfResults) {
				e.ownEnvelopeFail += count
			}
		default:
			e.envelopes = inc(e.envelopes, env, count)
		}
		if third {
			e.thirdParty += count
		}
		forwarded := brokenOwn && third
		for _, r := range parseReasons(reasonsJSON) {
			e.reasons = inc(e.reasons, r.Type, count)
			if slices.Contains(forwardingReasons, r.Type) || strings.Contains(strings.ToLower(r.Comment), "arc=pass") {
				forwarded = true
			}
		}
		if forwarded {
			e.forwarded += count
		}
	}
	return out, rows.Err()
}

// spfPassed says whether the SPF check of domain passed.
func spfPassed(domain string, domains, results []string) bool {
	for i, d := range domains {
		if strings.EqualFold(strings.TrimSuffix(d, "."), domain) && strings.EqualFold(at(results, i), "pass") {
			return true
		}
	}
	return false
}

// envelopeDomain is the domain of an envelope_from value: reporters write
// a domain or a whole address.
func envelopeDomain(s string) string {
	s = strings.ToLower(strings.Trim(strings.TrimSpace(s), "<>"))
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		s = s[i+1:]
	}
	return strings.TrimSuffix(s, ".")
}

type reason struct {
	Type    string `json:"type"`
	Comment string `json:"comment"`
}

// parseReasons reads the reasons column: a JSON array of {type, comment}.
func parseReasons(s string) []reason {
	if s == "" || s == "[]" {
		return nil
	}
	var out []reason
	if json.Unmarshal([]byte(s), &out) != nil {
		return nil
	}
	for i := range out {
		out[i].Type = strings.ToLower(strings.TrimSpace(out[i].Type))
	}
	return out
}

func at(l []string, i int) string {
	if i < len(l) {
		return l[i]
	}
	return ""
}

// identify returns the sender ID, name and catalogue service of a source.
// An address the user marked as not theirs is a sender of its own, so that
// the mark does not spill onto the network or service it is part of.
func (c *Classifier) identify(s *Source, ev *evidence, domain string) (id, name string, svc *Service) {
	if addr, err := netip.ParseAddr(s.IP); err == nil {
		for _, m := range c.NotOurs {
			if p, err := netip.ParsePrefix(strings.TrimSpace(m)); err == nil && p.Contains(addr.Unmap()) ||
				strings.TrimSpace(m) == addr.Unmap().String() {
				return "ip:" + s.IP, s.IP, nil
			}
		}
		for _, p := range c.Networks {
			if p.Contains(addr.Unmap()) {
				return "network:" + p.String(), "listed network " + p.String(), nil
			}
		}
	}
	cat := c.catalogue()
	// A service by what its mail authenticated as, the most mail first.
	for _, d := range sortedDomains(ev.dkim) {
		if svc := cat.match(matchDKIM, d); svc != nil {
			return "service:" + svc.ID, svc.Name, svc
		}
	}
	for _, d := range sortedKeys(ev.spf) {
		if svc := cat.match(matchEnvelope, d); svc != nil {
			return "service:" + svc.ID, svc.Name, svc
		}
	}
	for _, d := range sortedKeys(ev.envelopes) {
		if svc := cat.match(matchEnvelope, d); svc != nil {
			return "service:" + svc.ID, svc.Name, svc
		}
	}
	if s.PTRConfirmed {
		if svc := cat.match(matchPTR, s.PTR); svc != nil {
			if svc.Kind == KindMailbox {
				// Mailbox providers forward their users' mail too: mail
				// from their servers that does not authenticate as the
				// service is not the service's.
				return "servers:" + svc.ID, svc.Name + " servers (unidentified mail)", svc
			}
			return "service:" + svc.ID, svc.Name, svc
		}
	}
	// The organization it authenticates as, other than the domain.
	if d := firstDomain(sortedDomains(ev.dkim), sortedKeys(ev.spf)); d != "" {
		org := orgDomain(d)
		return "domain:" + org, org, nil
	}
	if s.PTRConfirmed && s.DMARCPass > 0 && s.BaseDomain != "" {
		return "host:" + s.BaseDomain, "servers of " + s.BaseDomain, nil
	}
	name = s.IP
	if s.PTR != "" {
		name += " (" + s.PTR + ")"
	}
	return "ip:" + s.IP, name, nil
}

func firstDomain(lists ...[]string) string {
	for _, l := range lists {
		if len(l) > 0 {
			return l[0]
		}
	}
	return ""
}

// sortedDomains returns the domains of m, the most messages first.
func sortedDomains(m map[string]*AuthDomain) []string {
	counts := make(map[string]int64, len(m))
	for k, v := range m {
		counts[k] = v.Messages
	}
	return sortedKeys(counts)
}

// sortedKeys returns the keys of m, the largest value first, then by name.
func sortedKeys(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return cmp.Compare(m[b], m[a])
		}
		return strings.Compare(a, b)
	})
	return keys
}

// add sums a source into the sender.
func (snd *Sender) add(s *Source, ev *evidence, recent []figures) {
	snd.Messages += s.Messages
	snd.DMARCPass += s.DMARCPass
	snd.DKIMAligned += s.DKIMAligned
	snd.SPFAligned += s.SPFAligned
	snd.FirstDay = min(snd.FirstDay, s.FirstDay)
	snd.LastDay = max(snd.LastDay, s.LastDay)
	if s.FirstFailDay != "" && (snd.FirstFailDay == "" || s.FirstFailDay < snd.FirstFailDay) {
		snd.FirstFailDay = s.FirstFailDay
	}
	for i, f := range recent {
		if snd.RecentFailing == nil {
			snd.RecentFailing = make([]int64, len(recent))
		}
		snd.RecentFailing[i] += f.Messages - f.DMARCPass
	}
	snd.ev.merge(ev)
}

// finish fills the sender's lists and shares once its sources are in.
func (snd *Sender) finish(sources []Source, domain string, w Window, inv *Inventory) {
	days := map[string]bool{}
	snd.IPCount = len(snd.sources)
	for _, i := range snd.sources {
		s := &sources[i]
		if len(snd.IPs) < MaxSenderIPs {
			snd.IPs = append(snd.IPs, s.IP)
		}
		if s.PTRConfirmed && len(snd.PTRs) < MaxSenderPTRs && !slices.Contains(snd.PTRs, s.PTR) {
			snd.PTRs = append(snd.PTRs, s.PTR)
		}
		for _, d := range s.dayList {
			days[d] = true
		}
	}
	snd.Days = len(days)
	// Steady: seen on enough days, and on at least half of the days from
	// its first to the end of the window.
	span := int(day(w.To).Sub(day(snd.FirstDay)).Hours()/24) + 1
	snd.steady = snd.Days >= SteadyMinDays && 2*snd.Days >= span
	snd.Share = ratio(snd.Messages, inv.Messages)
	for i, d := range inv.Recent {
		if i < len(snd.RecentFailing) {
			snd.RecentShare = max(snd.RecentShare, ratio(snd.RecentFailing[i], d.Messages))
		}
	}
	for _, sel := range sortedKeys(snd.ev.alignedSelectors) {
		if len(snd.DKIMDomains) == 0 {
			snd.DKIMDomains = append(snd.DKIMDomains, AuthDomain{Domain: domain, Aligned: true})
		}
		snd.DKIMDomains[0].Selectors = append(snd.DKIMDomains[0].Selectors, sel)
		snd.DKIMDomains[0].Messages += snd.ev.alignedSelectors[sel]
	}
	for _, d := range sortedDomains(snd.ev.dkim) {
		a := *snd.ev.dkim[d]
		slices.Sort(a.Selectors)
		snd.DKIMDomains = append(snd.DKIMDomains, a)
	}
	if snd.SPFAligned > 0 {
		snd.SPFDomains = append(snd.SPFDomains, AuthDomain{Domain: domain, Messages: snd.SPFAligned, Aligned: true})
	}
	for _, d := range sortedKeys(snd.ev.spf) {
		snd.SPFDomains = append(snd.SPFDomains, AuthDomain{Domain: d, Messages: snd.ev.spf[d]})
	}
	snd.OwnEnvelope = snd.ev.ownEnvelope
	snd.Forwarded = snd.ev.forwarded
	snd.Reasons = snd.ev.reasons
}

// classify decides the class of a sender (see Inventory).
func (c *Classifier) classify(snd *Sender, cat *Catalogue, domain string) (Class, string) {
	if why, ok := c.notOurs(snd); ok {
		snd.NotOurs = true
		return Spoofing, why
	}
	ev := &snd.ev
	half := func(n int64) bool { return 2*n >= snd.Messages && n > 0 }
	svc := snd.Service
	authenticatedService := svc != nil && !strings.HasPrefix(snd.ID, "servers:")
	authorized := func(why string) (Class, string) {
		if float64(snd.Failing()) > FailingNoiseShare*float64(snd.Messages) {
			return AuthorizedFailing, fmt.Sprintf("%s, but %d of its %d messages fail DMARC", why, snd.Failing(), snd.Messages)
		}
		return Authorized, why
	}
	switch {
	case strings.HasPrefix(snd.ID, "network:"):
		return authorized("listed as a sender of the domain (" + strings.TrimPrefix(snd.ID, "network:") + ")")
	case ev.knownSelector > 0 && !half(ev.ownEnvelopeFail):
		return authorized("signs with the domain's DKIM selector " + strings.Join(c.knownSelectorsOf(snd), ", "))
	case snd.SPFAligned > 0:
		return authorized("in the domain's SPF record (aligned SPF passes)")
	case authenticatedService && svc.SPFInclude != "" && slices.Contains(lower(c.SPFIncludes), strings.ToLower(svc.SPFInclude)):
		return authorized(fmt.Sprintf("%s, whose include:%s the configuration lists", svc.Name, svc.SPFInclude))
	case authenticatedService && svc.Kind != KindForwarder && snd.DKIMAligned > 0:
		return authorized(fmt.Sprintf("%s signs with d=%s", svc.Name, domain))
	}
	switch {
	case snd.DKIMAligned > 0 && half(ev.thirdParty) && !half(ev.ownEnvelopeFail) && snd.steady:
		return authorized(fmt.Sprintf("signs with d=%s (a key of the domain) and sends with its own envelope domain (%s), steadily", domain, authName(snd)))
	case half(snd.Forwarded):
		return Forwarder, "the reporters' overrides or ARC results, or the domain's signature arriving broken beside the relay's own, say it forwards the domain's mail"
	case half(snd.DKIMAligned):
		return Forwarder, "aligned DKIM passes but SPF does not: forwarded or relayed by a list"
	case svc != nil && svc.Kind == KindForwarder:
		return Forwarder, svc.Name + " forwards or redistributes mail"
	case authenticatedService:
		return Unconfigured, fmt.Sprintf("%s (authenticates as %s), not set up to send as %s", svc.Name, authName(snd), domain)
	case half(ev.thirdParty) && (snd.steady || c.ptrNamesAuth(snd)):
		return Unconfigured, fmt.Sprintf("authenticates as %s, its own domain, on %d days: a service not set up to send as %s", authName(snd), snd.Days, domain)
	case snd.steady:
		return Unconfigured, fmt.Sprintf("sends steadily (%d days since %s) without passing DMARC: a server or service not set up, or mark it as not yours", snd.Days, snd.FirstDay)
	case ev.thirdParty > 0:
		return Spoofing, "authenticates only as " + authName(snd) + ", now and then"
	}
	return Spoofing, "no DKIM or SPF pass, for the domain or any other"
}

// knownSelectorsOf lists the domain's selectors the sender signs with.
func (c *Classifier) knownSelectorsOf(snd *Sender) []string {
	known := lower(c.Selectors)
	var out []string
	for _, sel := range sortedKeys(snd.ev.alignedSelectors) {
		if slices.Contains(known, sel) {
			out = append(out, sel)
		}
	}
	return out
}

// ptrNamesAuth says whether a confirmed reverse DNS name of the sender is
// in an organization it authenticates as: a server named for the domain
// it signs for.
func (c *Classifier) ptrNamesAuth(snd *Sender) bool {
	for _, p := range snd.PTRs {
		org := orgDomain(p)
		for d := range snd.ev.dkim {
			if orgDomain(d) == org {
				return true
			}
		}
		for d := range snd.ev.spf {
			if orgDomain(d) == org {
				return true
			}
		}
	}
	return false
}

// authName names the domains a sender authenticates as, other than the
// policy domain.
func authName(snd *Sender) string {
	var names []string
	for _, d := range sortedDomains(snd.ev.dkim) {
		names = append(names, "d="+d)
	}
	for _, d := range sortedKeys(snd.ev.spf) {
		names = append(names, "SPF "+d)
	}
	if len(names) == 0 {
		return "nothing"
	}
	if len(names) > 3 {
		names = append(names[:3], "...")
	}
	return strings.Join(names, ", ")
}

// notOurs says whether the user marked the sender as not theirs: by
// service ID, by a domain it authenticates as (or its reverse DNS), or by
// the address of one of its sources.
func (c *Classifier) notOurs(snd *Sender) (string, bool) {
	for _, m := range c.NotOurs {
		m = strings.ToLower(strings.TrimSpace(m))
		switch {
		case m == "":
			continue
		case snd.Service != nil && m == snd.Service.ID, m == snd.ID:
			return "marked as not yours (" + m + ")", true
		}
		if p, err := netip.ParsePrefix(m); err == nil {
			if containsAny(p, snd.IPs) {
				return "marked as not yours (" + m + ")", true
			}
			continue
		}
		if a, err := netip.ParseAddr(m); err == nil {
			if slices.Contains(snd.IPs, a.String()) {
				return "marked as not yours (" + m + ")", true
			}
			continue
		}
		under := func(name string) bool { return name == m || strings.HasSuffix(name, "."+m) }
		for d := range snd.ev.dkim {
			if under(d) {
				return "marked as not yours (" + m + ")", true
			}
		}
		for d := range snd.ev.spf {
			if under(d) {
				return "marked as not yours (" + m + ")", true
			}
		}
		for _, p := range snd.PTRs {
			if under(p) {
				return "marked as not yours (" + m + ")", true
			}
		}
	}
	return "", false
}

func containsAny(p netip.Prefix, ips []string) bool {
	for _, s := range ips {
		if a, err := netip.ParseAddr(s); err == nil && p.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

// day parses a YYYY-MM-DD day; the zero time when it does not parse.
func day(s string) time.Time {
	t, _ := time.Parse(time.DateOnly, s)
	return t
}
