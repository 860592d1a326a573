package analyze

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/publicsuffix"
)

// Class says who a sender is to a domain, from the evidence of the
// aggregate reports (Inventory explains how each is decided).
type Class string

const (
	// Authorized: the domain authorized the sender (its servers are
	// listed in the configuration or pass SPF for the domain, or it signs
	// with the domain's DKIM selectors) and its mail passes DMARC.
	Authorized Class = "authorized"
	// AuthorizedFailing: authorized, but part of its mail fails DMARC.
	AuthorizedFailing Class = "authorized-failing"
	// Unconfigured: legitimate but not set up: a known sending service,
	// a sender that authenticates for its own domain, or one that sends
	// steadily; its mail fails DMARC because the domain has not
	// authorized it (yet).
	Unconfigured Class = "unconfigured"
	// Forwarder: a forwarder or a mailing list relaying the domain's
	// mail, on evidence: aligned DKIM passes while SPF fails, the
	// reporter says forwarded, mailing_list, trusted_forwarder or (with
	// ARC) local_policy, the domain's own signature arrives broken beside
	// the relay's, or a known forwarding service.
	Forwarder Class = "forwarder"
	// Spoofing: no authentication, or only for unrelated domains now and
	// then; or a sender the user marked as not theirs.
	Spoofing Class = "spoofing"
)

// Legitimate says whether mail of the class is the domain's own: a policy
// must not block it.
func (c Class) Legitimate() bool {
	return c == Authorized || c == AuthorizedFailing || c == Unconfigured
}

// Source is one sending IP address for a domain over a window.
type Source struct {
	IP          string
	Messages    int64
	DMARCPass   int64
	DKIMAligned int64
	SPFAligned  int64
	FirstDay    string
	LastDay     string
	// Days is the number of days of the window it sent on.
	Days int
	// FirstFailDay is the first day in the window on which some of its
	// mail failed DMARC; empty when none did.
	FirstFailDay string
	// PTR is the reverse DNS name; PTRConfirmed says whether it is
	// forward-confirmed (its A or AAAA records hold IP): only then is it
	// evidence of who sends. BaseDomain is its registrable domain (public
	// suffix list), the name a postmaster recognises.
	PTR          string
	PTRConfirmed bool
	BaseDomain   string
	// Sender is the ID of the sender the source belongs to (Inventory);
	// Class and Why are the sender's.
	Sender string
	Class  Class
	Why    string

	dayList []string // the days it sent on
}

// Failing is the number of messages from the source that failed DMARC.
func (s Source) Failing() int64 { return s.Messages - s.DMARCPass }

// PassRate is the share of its messages that passed DMARC.
func (s Source) PassRate() float64 { return ratio(s.DMARCPass, s.Messages) }

// DKIMRate and SPFRate are the shares of its messages with aligned,
// passing DKIM and SPF.
func (s Source) DKIMRate() float64 { return ratio(s.DKIMAligned, s.Messages) }
func (s Source) SPFRate() float64  { return ratio(s.SPFAligned, s.Messages) }

// Resolver looks up reverse DNS and the addresses of a name, for
// forward-confirmed reverse DNS. The advisor's DNS client is one.
type Resolver interface {
	PTR(ctx context.Context, addr netip.Addr) ([]string, error)
	Addrs(ctx context.Context, host string) ([]netip.Addr, error)
}

// Classifier decides the senders of one domain and their class.
type Classifier struct {
	// Networks are the addresses and CIDRs that send for the domain (our
	// servers and the ones the configuration lists).
	Networks []netip.Prefix
	// Selectors are the DKIM selectors of the domain (ours and the
	// configured ones); a sender whose aligned DKIM passes with one of
	// them is authorized.
	Selectors []string
	// SPFIncludes are the SPF includes the configuration lists for the
	// domain: a catalogue service with one of them is authorized.
	SPFIncludes []string
	// Catalogue recognises sending services; DefaultCatalogue when nil.
	Catalogue *Catalogue
	// NotOurs are senders the user says are not theirs: service IDs,
	// domains (with the names below them), addresses or CIDR prefixes.
	// They are spoofing, whatever their evidence.
	NotOurs []string
	// Resolver looks up reverse DNS; none when nil.
	Resolver Resolver
	// PTRTimeout bounds one reverse lookup with its confirmation;
	// DefaultPTRTimeout when zero.
	PTRTimeout time.Duration
	// RecentDays is the span at the end of the window that the recent
	// figures cover, day by day; DefaultRecentDays when zero.
	RecentDays int
}

// DefaultPTRTimeout bounds one reverse DNS lookup with its confirmation.
const DefaultPTRTimeout = 2 * time.Second

// MaxPTRLookups bounds the reverse lookups of one inventory: the sources
// beyond it, the least mail, are left without a name.
const MaxPTRLookups = 500

// ptrConcurrency is how many reverse lookups run at once.
const ptrConcurrency = 16

// maxPTRNames is how many names of one PTR answer are tried for
// confirmation.
const maxPTRNames = 3

// ParseNetworks reads addresses and CIDR prefixes; a bare address is a
// prefix of its full length.
func ParseNetworks(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an IP address nor a CIDR prefix", s)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// Sources returns the sources that sent mail as domain in the window, the
// most mail first, each with the class of its sender.
func (c *Classifier) Sources(ctx context.Context, q Querier, domain string, w Window) ([]Source, error) {
	inv, err := c.Inventory(ctx, q, domain, w)
	if err != nil {
		return nil, err
	}
	return inv.Sources, nil
}

// sourceDays reads the sources of the window day by day from the
// daily_sources view and sums them per source: volume, results, the days
// sent on, the first failing day; and, per source, the figures of each day
// of recent (indexes of recent).
func sourceDays(ctx context.Context, q Querier, domain string, w Window, recent []string) ([]Source, map[string][]figures, error) {
	rows, err := q.Query(ctx, `
SELECT source_ip, day, SUM(messages), SUM(dmarc_pass), SUM(dkim_aligned), SUM(spf_aligned)
FROM daily_sources
WHERE domain = ? AND day >= ? AND day <= ?
GROUP BY source_ip, day
ORDER BY source_ip, day`, domain, w.From, w.To)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the sources of %s: %w", domain, err)
	}
	defer rows.Close()
	var out []Source
	recentFigures := map[string][]figures{}
	for rows.Next() {
		var ip string
		var day DayText
		var m, p, dk, sp Count
		if err := rows.Scan(&ip, &day, &m, &p, &dk, &sp); err != nil {
			return nil, nil, fmt.Errorf("reading the sources of %s: %w", domain, err)
		}
		if n := len(out); n == 0 || out[n-1].IP != ip {
			out = append(out, Source{IP: ip, FirstDay: string(day)})
		}
		s := &out[len(out)-1]
		s.Messages += int64(m)
		s.DMARCPass += int64(p)
		s.DKIMAligned += int64(dk)
		s.SPFAligned += int64(sp)
		s.LastDay = string(day)
		s.Days++
		s.dayList = append(s.dayList, string(day))
		if p < m && s.FirstFailDay == "" {
			s.FirstFailDay = string(day)
		}
		if i := slices.Index(recent, string(day)); i >= 0 {
			f := recentFigures[ip]
			if f == nil {
				f = make([]figures, len(recent))
				recentFigures[ip] = f
			}
			f[i].Messages += int64(m)
			f[i].DMARCPass += int64(p)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("reading the sources of %s: %w", domain, err)
	}
	slices.SortStableFunc(out, func(a, b Source) int {
		if a.Messages != b.Messages {
			return int(b.Messages - a.Messages)
		}
		return strings.Compare(a.IP, b.IP)
	})
	return out, recentFigures, nil
}

// reverse fills PTR, PTRConfirmed and BaseDomain of the sources with the
// most mail. A PTR name is confirmed when one of its A or AAAA records is
// the source's address (forward-confirmed reverse DNS): anyone can write
// any name into the PTR record of an address they hold, so an unconfirmed
// name is shown but never trusted.
func (c *Classifier) reverse(ctx context.Context, sources []Source) {
	if c.Resolver == nil {
		return
	}
	timeout := c.PTRTimeout
	if timeout == 0 {
		timeout = DefaultPTRTimeout
	}
	n := min(len(sources), MaxPTRLookups)
	sem := make(chan struct{}, ptrConcurrency)
	var wg sync.WaitGroup
	for i := range sources[:n] {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c.reverseOne(ctx, &sources[i], timeout)
		})
	}
	wg.Wait()
}

func (c *Classifier) reverseOne(ctx context.Context, s *Source, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	addr, err := netip.ParseAddr(s.IP)
	if err != nil {
		return
	}
	names, err := c.Resolver.PTR(ctx, addr)
	if err != nil || len(names) == 0 {
		return
	}
	for i, name := range names[:min(len(names), maxPTRNames)] {
		name = strings.TrimSuffix(strings.ToLower(name), ".")
		if i == 0 {
			s.PTR = name
		}
		addrs, err := c.Resolver.Addrs(ctx, name)
		if err != nil {
			continue
		}
		if slices.Contains(addrs, addr.Unmap()) || slices.Contains(addrs, addr) {
			s.PTR, s.PTRConfirmed = name, true
			break
		}
	}
	if base, err := publicsuffix.EffectiveTLDPlusOne(s.PTR); err == nil {
		s.BaseDomain = base
	}
}

// relaxedAligned says whether two domains align in relaxed mode: they share
// an organizational domain (RFC 9989 §4.4). The public suffix list gives
// the organizational domain here; the RFC 9989 tree walk asks DNS, which a
// report analysis cannot do for every signature.
func relaxedAligned(a, b string) bool {
	a, b = strings.ToLower(strings.TrimSuffix(a, ".")), strings.ToLower(strings.TrimSuffix(b, "."))
	if a == b {
		return true
	}
	oa, err1 := publicsuffix.EffectiveTLDPlusOne(a)
	ob, err2 := publicsuffix.EffectiveTLDPlusOne(b)
	return err1 == nil && err2 == nil && oa == ob
}

// orgDomain is the registrable domain of name (public suffix list), or name
// itself when it has none.
func orgDomain(name string) string {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if o, err := publicsuffix.EffectiveTLDPlusOne(name); err == nil {
		return o
	}
	return name
}

func lower(s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = strings.ToLower(x)
	}
	return out
}

// FailingSources returns the sources of domain with mail that failed DMARC
// on some day of the window, in the order of their addresses' text.
func FailingSources(ctx context.Context, q Querier, domain string, w Window) ([]string, error) {
	rows, err := q.Query(ctx, `
SELECT DISTINCT source_ip
FROM daily_sources
WHERE domain = ? AND day >= ? AND day <= ? AND dmarc_pass < messages
ORDER BY source_ip`, domain, w.From, w.To)
	if err != nil {
		return nil, fmt.Errorf("reading the failing sources of %s: %w", domain, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var ip string
		if err := rows.Scan(&ip); err != nil {
			return nil, fmt.Errorf("reading the failing sources of %s: %w", domain, err)
		}
		out = append(out, ip)
	}
	return out, rows.Err()
}
