package advisor

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// DNS is what the checks, the wizard and the analysis ask of DNS. Resolver
// implements it over the network; tests substitute their own.
//
// An answer without records of the type (NODATA) is an empty slice and a
// nil error. A name that does not exist is an error wrapping ErrNXDomain.
// Any other failure (SERVFAIL, REFUSED, a timeout, the network) wraps
// ErrTemporary. SPF counts the first two as void lookups and turns the
// third into temperror (RFC 7208 §4.6.4, §2.6.6); the DMARC tree walk
// stops on the third (RFC 9989 §4.10).
type DNS interface {
	// TXT returns the TXT records at name, the strings of each record
	// joined without separator (RFC 7208 §3.3, RFC 6376 §3.6.2.2).
	TXT(ctx context.Context, name string) ([]string, error)
	A(ctx context.Context, name string) ([]netip.Addr, error)
	AAAA(ctx context.Context, name string) ([]netip.Addr, error)
	MX(ctx context.Context, name string) ([]MX, error)
	// PTR returns the names of addr (reverse DNS), without the final dot.
	PTR(ctx context.Context, addr netip.Addr) ([]string, error)
}

// MX is one mail exchanger of a domain.
type MX struct {
	Host       string `json:"host"` // without the final dot
	Preference uint16 `json:"preference"`
}

// The kinds of DNS failure; a *QueryError wraps one of them.
var (
	// ErrNXDomain: the name does not exist (RCODE 3, "Name Error").
	ErrNXDomain = errors.New("the name does not exist (NXDOMAIN)")
	// ErrTemporary: the resolver failed to answer (SERVFAIL, REFUSED and
	// other RCODEs, a timeout, a network error). Asking again later may
	// succeed.
	ErrTemporary = errors.New("DNS failure (temporary)")
)

// QueryError is a failed DNS query: which name and type, at which server,
// and why.
type QueryError struct {
	Name   string // the name asked, without the final dot
	Type   string // "TXT", "A", ...
	Server string // host:port of the resolver
	Rcode  int    // the RCODE answered; -1 when there was no answer
	Kind   error  // ErrNXDomain or ErrTemporary
	Err    error  // the network error, if any
}

func (e *QueryError) Error() string {
	var what string
	switch {
	case e.Kind == ErrNXDomain:
		what = "the name does not exist (NXDOMAIN)"
	case e.Rcode >= 0:
		what = dns.RcodeToString[e.Rcode]
		if what == "" {
			what = "RCODE " + strconv.Itoa(e.Rcode)
		}
		what = "the resolver answered " + what + "; try again later, or check the zone's name servers"
	default:
		what = fmt.Sprintf("no answer: %v; check the resolver address ([dns] resolver) and the network", e.Err)
	}
	return fmt.Sprintf("DNS %s %s at %s: %s", e.Type, e.Name, e.Server, what)
}

// Unwrap lets errors.Is find the kind (ErrNXDomain, ErrTemporary) and the
// network error.
func (e *QueryError) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Kind, e.Err}
	}
	return []error{e.Kind}
}

// IsNotFound reports whether err says that the name does not exist.
// NODATA is not an error at all (an empty answer).
func IsNotFound(err error) bool { return errors.Is(err, ErrNXDomain) }

// Limits of the resolver.
const (
	// DefaultDNSTimeout bounds one attempt of one query (the [dns]
	// timeout_seconds default is the same).
	DefaultDNSTimeout = 5 * time.Second
	// DefaultUDPAttempts is how many times a query is sent over UDP before
	// a timeout is an error. A truncated answer is asked again over TCP
	// once, not counted here.
	DefaultUDPAttempts = 2
	// ednsUDPSize is the EDNS(0) buffer size offered: 1232 octets avoids IP
	// fragmentation (DNS Flag Day 2020). Larger answers come truncated and
	// are asked again over TCP.
	ednsUDPSize = 1232
	// ResolvConf is where the default resolver is read from.
	ResolvConf = "/etc/resolv.conf"
)

// Limits of the PTR cache: reverse DNS of report sources repeats across
// reports, days and domains.
const (
	// PTRCacheMaxEntries bounds the cache; past it the least recently
	// used address goes.
	PTRCacheMaxEntries = 10000
	// PTRCacheMinTTL and PTRCacheMaxTTL clamp the TTL of the answer.
	PTRCacheMinTTL = time.Minute
	PTRCacheMaxTTL = 24 * time.Hour
	// PTRCacheNegativeTTL is how long "no PTR" (NXDOMAIN or NODATA) is
	// kept. Temporary failures are not cached.
	PTRCacheNegativeTTL = time.Hour
)

// Resolver asks a recursive resolver over UDP, and over TCP when the
// answer is truncated. Its zero value is not usable: use NewResolver. It is
// safe for concurrent use.
type Resolver struct {
	// Server is the resolver's address, host:port.
	Server string
	// Timeout bounds one attempt of one query.
	Timeout time.Duration
	// UDPAttempts is how many times a query is sent over UDP before a
	// timeout is an error.
	UDPAttempts int

	ptr *ptrCache
	now func() time.Time // tests
}

// NewResolver returns a resolver asking server (host:port, or a host for
// port 53). An empty server is the first nameserver of /etc/resolv.conf; a
// zero timeout is DefaultDNSTimeout.
func NewResolver(server string, timeout time.Duration) (*Resolver, error) {
	if server == "" {
		conf, err := dns.ClientConfigFromFile(ResolvConf)
		if err != nil {
			return nil, fmt.Errorf("reading the resolver from %s: %w; set [dns] resolver = \"HOST:PORT\" in the config", ResolvConf, err)
		}
		if len(conf.Servers) == 0 {
			return nil, fmt.Errorf("%s names no nameserver; set [dns] resolver = \"HOST:PORT\" in the config", ResolvConf)
		}
		server = net.JoinHostPort(conf.Servers[0], conf.Port)
	} else if _, _, err := net.SplitHostPort(server); err != nil {
		// A bare host or IPv6 address: port 53.
		server = net.JoinHostPort(strings.Trim(server, "[]"), "53")
	}
	if timeout <= 0 {
		timeout = DefaultDNSTimeout
	}
	return &Resolver{
		Server:      server,
		Timeout:     timeout,
		UDPAttempts: DefaultUDPAttempts,
		ptr:         newPTRCache(PTRCacheMaxEntries),
		now:         time.Now,
	}, nil
}

// query asks for name and type, retrying over UDP on timeouts and over TCP
// on truncation, and returns the answer section.
func (r *Resolver) query(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	name = strings.TrimSuffix(name, ".")
	qerr := func(rcode int, kind, err error) *QueryError {
		return &QueryError{Name: name, Type: dns.TypeToString[qtype], Server: r.Server, Rcode: rcode, Kind: kind, Err: err}
	}
	if _, ok := dns.IsDomainName(name); !ok || name == "" {
		return nil, fmt.Errorf("DNS %s %q: not a valid domain name", dns.TypeToString[qtype], name)
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = true
	m.SetEdns0(ednsUDPSize, false)

	attempts := max(r.UDPAttempts, 1)
	var resp *dns.Msg
	var err error
	udp := &dns.Client{Net: "udp", Timeout: r.Timeout, UDPSize: ednsUDPSize}
	for i := 0; i < attempts; i++ {
		resp, _, err = udp.ExchangeContext(ctx, m, r.Server)
		if err == nil || ctx.Err() != nil {
			break
		}
	}
	if err == nil && resp.Truncated {
		tcp := &dns.Client{Net: "tcp", Timeout: r.Timeout}
		resp, _, err = tcp.ExchangeContext(ctx, m, r.Server)
	}
	if err != nil {
		return nil, qerr(-1, ErrTemporary, err)
	}
	switch resp.Rcode {
	case dns.RcodeSuccess:
		return resp.Answer, nil
	case dns.RcodeNameError:
		return nil, qerr(resp.Rcode, ErrNXDomain, nil)
	default:
		return nil, qerr(resp.Rcode, ErrTemporary, nil)
	}
}

// TXT implements DNS.
func (r *Resolver) TXT(ctx context.Context, name string) ([]string, error) {
	rrs, err := r.query(ctx, name, dns.TypeTXT)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, rr := range rrs {
		if t, ok := rr.(*dns.TXT); ok {
			out = append(out, joinTXT(t.Txt))
		}
	}
	return out, nil
}

// joinTXT joins the character-strings of one TXT record without a
// separator (RFC 7208 §3.3, RFC 6376 §3.6.2.2), undoing the escapes
// miekg/dns adds for '"', '\' and unprintable octets.
func joinTXT(parts []string) string {
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(unescapeTXT(p))
	}
	return b.String()
}

func unescapeTXT(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		if i+3 < len(s) && asciiDigit(s[i+1]) && asciiDigit(s[i+2]) && asciiDigit(s[i+3]) {
			n, _ := strconv.Atoi(s[i+1 : i+4])
			b.WriteByte(byte(n))
			i += 3
			continue
		}
		b.WriteByte(s[i+1])
		i++
	}
	return b.String()
}

func asciiDigit(c byte) bool { return c >= '0' && c <= '9' }

// A implements DNS.
func (r *Resolver) A(ctx context.Context, name string) ([]netip.Addr, error) {
	rrs, err := r.query(ctx, name, dns.TypeA)
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, rr := range rrs {
		if a, ok := rr.(*dns.A); ok {
			if ip, ok := netip.AddrFromSlice(a.A.To4()); ok {
				out = append(out, ip)
			}
		}
	}
	return out, nil
}

// AAAA implements DNS.
func (r *Resolver) AAAA(ctx context.Context, name string) ([]netip.Addr, error) {
	rrs, err := r.query(ctx, name, dns.TypeAAAA)
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, rr := range rrs {
		if a, ok := rr.(*dns.AAAA); ok {
			if ip, ok := netip.AddrFromSlice(a.AAAA.To16()); ok {
				out = append(out, ip)
			}
		}
	}
	return out, nil
}

// Addrs returns the A and AAAA addresses of host, for forward-confirmed
// reverse DNS (analyze.Resolver); an error only when both lookups fail.
func (r *Resolver) Addrs(ctx context.Context, host string) ([]netip.Addr, error) {
	v4, err4 := r.A(ctx, host)
	v6, err6 := r.AAAA(ctx, host)
	if err4 != nil && err6 != nil {
		return nil, err4
	}
	return append(v4, v6...), nil
}

// MX implements DNS.
func (r *Resolver) MX(ctx context.Context, name string) ([]MX, error) {
	rrs, err := r.query(ctx, name, dns.TypeMX)
	if err != nil {
		return nil, err
	}
	var out []MX
	for _, rr := range rrs {
		if m, ok := rr.(*dns.MX); ok {
			out = append(out, MX{Host: strings.TrimSuffix(m.Mx, "."), Preference: m.Preference})
		}
	}
	return out, nil
}

// PTR implements DNS, through a cache: see PTRCacheMaxEntries.
func (r *Resolver) PTR(ctx context.Context, addr netip.Addr) ([]string, error) {
	now := r.now()
	if names, ok := r.ptr.get(addr, now); ok {
		return names, nil
	}
	arpa, err := dns.ReverseAddr(addr.Unmap().String())
	if err != nil {
		return nil, fmt.Errorf("reverse DNS of %s: %w", addr, err)
	}
	rrs, err := r.query(ctx, arpa, dns.TypePTR)
	if err != nil && !IsNotFound(err) {
		return nil, err
	}
	var names []string
	ttl := PTRCacheNegativeTTL
	for _, rr := range rrs {
		if p, ok := rr.(*dns.PTR); ok {
			names = append(names, strings.TrimSuffix(p.Ptr, "."))
			ttl = min(max(time.Duration(rr.Header().Ttl)*time.Second, PTRCacheMinTTL), PTRCacheMaxTTL)
		}
	}
	r.ptr.put(addr, names, now.Add(ttl))
	return names, nil
}

// ptrCache is a bounded LRU cache of PTR answers with their expiry.
type ptrCache struct {
	mu      sync.Mutex
	max     int
	entries map[netip.Addr]*list.Element
	order   *list.List // front: most recently used
}

type ptrEntry struct {
	addr    netip.Addr
	names   []string
	expires time.Time
}

func newPTRCache(maxEntries int) *ptrCache {
	return &ptrCache{max: maxEntries, entries: map[netip.Addr]*list.Element{}, order: list.New()}
}

func (c *ptrCache) get(addr netip.Addr, now time.Time) ([]string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[addr]
	if !ok {
		return nil, false
	}
	e := el.Value.(*ptrEntry)
	if !now.Before(e.expires) {
		c.order.Remove(el)
		delete(c.entries, addr)
		return nil, false
	}
	c.order.MoveToFront(el)
	return e.names, true
}

func (c *ptrCache) put(addr netip.Addr, names []string, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[addr]; ok {
		e := el.Value.(*ptrEntry)
		e.names, e.expires = names, expires
		c.order.MoveToFront(el)
		return
	}
	for len(c.entries) >= c.max && c.order.Len() > 0 {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.entries, last.Value.(*ptrEntry).addr)
	}
	c.entries[addr] = c.order.PushFront(&ptrEntry{addr: addr, names: names, expires: expires})
}

func (c *ptrCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
