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

// Class says who a sending source is to a domain. RFC 9990 dropped the
// "forwarded" override reason that RFC 7489 receivers sometimes gave, so the
// class is inferred from the results the reports carry.
type Class string

const (
	// Authorized: the domain's own servers or a service it authorized:
	// the source is in its SPF record (aligned SPF passes), signs with its
	// DKIM selectors (aligned DKIM passes with a known selector), or is
	// listed in the configuration.
	Authorized Class = "authorized"
	// Forwarder: a forwarder or a mailing list relaying the domain's mail:
	// aligned DKIM passes (the signature survived) but SPF fails, or the
	// source's reverse DNS is a known forwarder.
	Forwarder Class = "forwarder"
	// Unknown: neither; mostly spoofing, sometimes a sender the domain
	// forgot to authorize.
	Unknown Class = "unknown"
)

// Source is one sending IP address for a domain over a window.
type Source struct {
	IP          string
	Messages    int64
	DMARCPass   int64
	DKIMAligned int64
	SPFAligned  int64
	FirstDay    string
	LastDay     string
	// FirstFailDay is the first day in the window on which some of its
	// mail failed DMARC; empty when none did.
	FirstFailDay string
	// PTR is the reverse DNS name; BaseDomain its registrable domain
	// (public suffix list), the name a postmaster recognises.
	PTR        string
	BaseDomain string
	Class      Class
	// Why explains the class.
	Why string
}

// Failing is the number of messages from the source that failed DMARC.
func (s Source) Failing() int64 { return s.Messages - s.DMARCPass }

// PassRate is the share of its messages that passed DMARC.
func (s Source) PassRate() float64 { return ratio(s.DMARCPass, s.Messages) }

// DKIMRate and SPFRate are the shares of its messages with aligned,
// passing DKIM and SPF.
func (s Source) DKIMRate() float64 { return ratio(s.DKIMAligned, s.Messages) }
func (s Source) SPFRate() float64  { return ratio(s.SPFAligned, s.Messages) }

// PTRResolver looks up reverse DNS. The advisor's DNS client is one.
type PTRResolver interface {
	PTR(ctx context.Context, ip string) ([]string, error)
}

// Classifier decides the class of sources of one domain.
type Classifier struct {
	// Networks are the addresses and CIDRs that send for the domain (our
	// servers and the ones the configuration lists).
	Networks []netip.Prefix
	// Selectors are the DKIM selectors of the domain (ours and the
	// configured ones); a source whose aligned DKIM passes with one of
	// them is authorized.
	Selectors []string
	// Forwarders are registrable domains of known forwarders and list
	// servers; DefaultForwarders when nil.
	Forwarders []string
	// Resolver looks up reverse DNS; none when nil.
	Resolver PTRResolver
	// PTRTimeout bounds one reverse lookup; DefaultPTRTimeout when zero.
	PTRTimeout time.Duration
}

// DefaultPTRTimeout bounds one reverse DNS lookup.
const DefaultPTRTimeout = 2 * time.Second

// MaxPTRLookups bounds the reverse lookups of one Sources call: the sources
// beyond it, the least mail, are left without a name.
const MaxPTRLookups = 500

// ptrConcurrency is how many reverse lookups run at once.
const ptrConcurrency = 16

// DefaultForwarders are registrable domains of large mailbox providers and
// list services whose servers forward mail on behalf of their users.
var DefaultForwarders = []string{
	"google.com", "googlemail.com", "outlook.com", "hotmail.com", "yahoo.com", "icloud.com",
	"me.com", "gmx.net", "web.de", "mail.ru", "yandex.net", "fastmail.com", "messagingengine.com",
	"pobox.com", "groups.io", "freelists.org", "lists.debian.org", "apache.org",
}

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
// most mail first, each with its class.
func (c *Classifier) Sources(ctx context.Context, q Querier, domain string, w Window) ([]Source, error) {
	rows, err := q.Query(ctx, `
SELECT source_ip, SUM(messages), SUM(dmarc_pass), SUM(dkim_aligned), SUM(spf_aligned), MIN(day), MAX(day)
FROM daily_sources
WHERE domain = ? AND day >= ? AND day <= ?
GROUP BY source_ip
ORDER BY SUM(messages) DESC, source_ip`, domain, w.From, w.To)
	if err != nil {
		return nil, fmt.Errorf("reading the sources of %s: %w", domain, err)
	}
	var out []Source
	for rows.Next() {
		var s Source
		var first, last DayText
		if err := rows.Scan(&s.IP, &s.Messages, &s.DMARCPass, &s.DKIMAligned, &s.SPFAligned, &first, &last); err != nil {
			rows.Close()
			return nil, fmt.Errorf("reading the sources of %s: %w", domain, err)
		}
		s.FirstDay, s.LastDay = string(first), string(last)
		out = append(out, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if err := c.firstFailures(ctx, q, domain, w, out); err != nil {
		return nil, err
	}
	signers, err := c.selectorSources(ctx, q, domain, w)
	if err != nil {
		return nil, err
	}
	c.reverse(ctx, out)
	for i := range out {
		out[i].Class, out[i].Why = c.classify(&out[i], signers[out[i].IP])
	}
	return out, nil
}

// firstFailures sets the first day each source failed DMARC.
func (c *Classifier) firstFailures(ctx context.Context, q Querier, domain string, w Window, sources []Source) error {
	rows, err := q.Query(ctx, `
SELECT source_ip, MIN(day)
FROM daily_sources
WHERE domain = ? AND day >= ? AND day <= ? AND dmarc_pass < messages
GROUP BY source_ip`, domain, w.From, w.To)
	if err != nil {
		return fmt.Errorf("reading the failures of %s: %w", domain, err)
	}
	defer rows.Close()
	first := map[string]string{}
	for rows.Next() {
		var ip string
		var day DayText
		if err := rows.Scan(&ip, &day); err != nil {
			return err
		}
		first[ip] = string(day)
	}
	for i := range sources {
		sources[i].FirstFailDay = first[sources[i].IP]
	}
	return rows.Err()
}

// selectorSources returns, per source, the selectors of passing DKIM
// signatures aligned with domain (the signing domain is domain or a
// subdomain of it, or its parent: relaxed alignment, RFC 9989 §4.4.1).
func (c *Classifier) selectorSources(ctx context.Context, q Querier, domain string, w Window) (map[string][]string, error) {
	rows, err := q.Query(ctx, `
SELECT source_ip, dkim_domain, selector
FROM dkim_signatures
WHERE domain = ? AND day >= ? AND day <= ? AND result = 'pass'
GROUP BY source_ip, dkim_domain, selector
ORDER BY source_ip, dkim_domain, selector`, domain, w.From, w.To)
	if err != nil {
		return nil, fmt.Errorf("reading the DKIM selectors of %s: %w", domain, err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var ip, dkimDomain, selector string
		if err := rows.Scan(&ip, &dkimDomain, &selector); err != nil {
			return nil, err
		}
		if relaxedAligned(dkimDomain, domain) {
			out[ip] = append(out[ip], strings.ToLower(selector))
		}
	}
	return out, rows.Err()
}

func (c *Classifier) classify(s *Source, selectors []string) (Class, string) {
	if addr, err := netip.ParseAddr(s.IP); err == nil {
		for _, p := range c.Networks {
			if p.Contains(addr.Unmap()) {
				return Authorized, "listed as a sender of the domain (" + p.String() + ")"
			}
		}
	}
	known := lower(c.Selectors)
	for _, sel := range selectors {
		if slices.Contains(known, sel) {
			return Authorized, "signs with the domain's DKIM selector " + sel
		}
	}
	if s.SPFAligned > 0 {
		return Authorized, "in the domain's SPF record (aligned SPF passes)"
	}
	forwarders := c.Forwarders
	if forwarders == nil {
		forwarders = DefaultForwarders
	}
	if s.BaseDomain != "" && slices.Contains(forwarders, s.BaseDomain) {
		return Forwarder, "reverse DNS in " + s.BaseDomain + ", a known forwarder"
	}
	if s.DKIMAligned > 0 {
		return Forwarder, "aligned DKIM passes but SPF does not: forwarded or relayed by a list"
	}
	return Unknown, "neither in SPF nor signed with the domain's keys"
}

// reverse fills PTR and BaseDomain of the sources with the most mail.
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
		wg.Add(1)
		sem <- struct{}{}
		go func(s *Source) {
			defer wg.Done()
			defer func() { <-sem }()
			lctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			names, err := c.Resolver.PTR(lctx, s.IP)
			if err != nil || len(names) == 0 {
				return
			}
			s.PTR = strings.TrimSuffix(strings.ToLower(names[0]), ".")
			if base, err := publicsuffix.EffectiveTLDPlusOne(s.PTR); err == nil {
				s.BaseDomain = base
			}
		}(&sources[i])
	}
	wg.Wait()
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

func lower(s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = strings.ToLower(x)
	}
	return out
}
