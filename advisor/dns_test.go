package advisor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dmarcd/dmarcd/internal/dnsrecord"
	"github.com/dmarcd/dmarcd/internal/testserver"
)

// testZone builds the records a test DNS server serves.
type testZone map[string][]dns.RR

func (z testZone) add(name string, rr dns.RR) testZone {
	key := strings.ToLower(dns.Fqdn(name))
	rr.Header().Name = dns.Fqdn(name)
	rr.Header().Class = dns.ClassINET
	rr.Header().Ttl = 300
	z[key] = append(z[key], rr)
	return z
}

// txt adds one TXT record per value, each split into strings of at most
// 255 octets as a zone would.
func (z testZone) txt(name string, values ...string) testZone {
	for _, v := range values {
		z.add(name, &dns.TXT{Hdr: dns.RR_Header{Rrtype: dns.TypeTXT}, Txt: zoneEscape(dnsrecord.Split(v))})
	}
	return z
}

// txtRR is one TXT record of value.
func txtRR(name, value string) dns.RR {
	return &dns.TXT{Hdr: dns.RR_Header{Name: dns.Fqdn(name), Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 300}, Txt: zoneEscape(dnsrecord.Split(value))}
}

// zoneEscape escapes what miekg/dns would otherwise read as escapes.
func zoneEscape(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
	}
	return out
}

func (z testZone) a(name string, ips ...string) testZone {
	for _, ip := range ips {
		z.add(name, &dns.A{Hdr: dns.RR_Header{Rrtype: dns.TypeA}, A: net.ParseIP(ip)})
	}
	return z
}

func (z testZone) aaaa(name string, ips ...string) testZone {
	for _, ip := range ips {
		z.add(name, &dns.AAAA{Hdr: dns.RR_Header{Rrtype: dns.TypeAAAA}, AAAA: net.ParseIP(ip)})
	}
	return z
}

func (z testZone) mx(name string, hosts ...string) testZone {
	for i, h := range hosts {
		z.add(name, &dns.MX{Hdr: dns.RR_Header{Rrtype: dns.TypeMX}, Preference: uint16(10 * (i + 1)), Mx: dns.Fqdn(h)})
	}
	return z
}

func (z testZone) ptr(ip, host string) testZone {
	arpa, err := dns.ReverseAddr(ip)
	if err != nil {
		panic(err)
	}
	return z.add(arpa, &dns.PTR{Hdr: dns.RR_Header{Rrtype: dns.TypePTR}, Ptr: dns.Fqdn(host)})
}

// serve starts a test DNS server for z and returns it with a resolver
// asking it.
func serve(t *testing.T, z testZone) (*testserver.DNSServer, *Resolver) {
	t.Helper()
	srv := testserver.StartDNS(t, z)
	r, err := NewResolver(srv.Addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return srv, r
}

// publish puts the records of a plan into the server's zone, as a user
// following the wizard would: the TXT record of the same kind is replaced,
// other records stay.
func publish(srv *testserver.DNSServer, p *Plan) {
	for _, pr := range p.Records {
		var keep []dns.RR
		for _, rr := range srv.Records(pr.Name) {
			if t, ok := rr.(*dns.TXT); ok && sameKind(pr.Purpose, strings.Join(t.Txt, "")) {
				continue
			}
			keep = append(keep, rr)
		}
		rr := &dns.TXT{Hdr: dns.RR_Header{Name: dns.Fqdn(pr.Name), Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: uint32(pr.TTL)}, Txt: zoneEscape(pr.Strings)}
		srv.Set(pr.Name, append(keep, rr)...)
	}
}

func sameKind(purpose, txt string) bool {
	switch purpose {
	case PurposeSPF:
		return dnsrecord.IsSPF(txt)
	case PurposeDMARC, PurposeReportAuthorization:
		return dnsrecord.IsDMARC(txt)
	}
	return true
}

// needTool skips the test when a peer program is missing, and fails it
// when CI=true, so that CI never passes by skipping.
func needTool(t *testing.T, path, pkg string) { t.Helper(); testserver.Need(t, path, pkg) }

func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestResolverAnswers(t *testing.T) {
	z := testZone{}
	z.txt("example.com", "v=spf1 ip4:192.0.2.1 -all", "other=yes")
	// One record of several strings, joined without separator.
	z.add("multi.example.com", &dns.TXT{Hdr: dns.RR_Header{Rrtype: dns.TypeTXT}, Txt: []string{"v=spf1 ip4:192.0.2.1 ", "ip4:192.0.2.2 ", "-all"}})
	z.add("quote.example.com", &dns.TXT{Hdr: dns.RR_Header{Rrtype: dns.TypeTXT}, Txt: []string{`say \"hi\" \\ \059`}})
	z.a("a.example.com", "192.0.2.7")
	z.aaaa("a.example.com", "2001:db8::7")
	z.mx("example.com", "mx1.example.com", "mx2.example.com")
	z.add("broken.example.com", testserver.DNSServFail("broken.example.com"))
	z.a("host.deep.example.com", "192.0.2.8")
	_, r := serve(t, z)
	ctx := context.Background()

	txts, err := r.TXT(ctx, "example.com")
	if err != nil || len(txts) != 2 || txts[0] != "v=spf1 ip4:192.0.2.1 -all" {
		t.Errorf("TXT example.com = %q, %v", txts, err)
	}
	txts, err = r.TXT(ctx, "multi.example.com.")
	if err != nil || len(txts) != 1 || txts[0] != "v=spf1 ip4:192.0.2.1 ip4:192.0.2.2 -all" {
		t.Errorf("TXT multi = %q, %v; want the strings joined", txts, err)
	}
	txts, err = r.TXT(ctx, "quote.example.com")
	if err != nil || len(txts) != 1 || txts[0] != `say "hi" \ ;` {
		t.Errorf("TXT quote = %q, %v; want escapes undone", txts, err)
	}
	addrs, err := r.A(ctx, "a.example.com")
	if err != nil || len(addrs) != 1 || addrs[0] != netip.MustParseAddr("192.0.2.7") {
		t.Errorf("A = %v, %v", addrs, err)
	}
	addrs, err = r.AAAA(ctx, "a.example.com")
	if err != nil || len(addrs) != 1 || addrs[0] != netip.MustParseAddr("2001:db8::7") {
		t.Errorf("AAAA = %v, %v", addrs, err)
	}
	mxs, err := r.MX(ctx, "example.com")
	if err != nil || len(mxs) != 2 || mxs[0].Host != "mx1.example.com" || mxs[1].Preference != 20 {
		t.Errorf("MX = %v, %v", mxs, err)
	}

	// NODATA: the name exists, without records of the type.
	if txts, err := r.TXT(ctx, "a.example.com"); err != nil || len(txts) != 0 {
		t.Errorf("TXT of a name with only A = %q, %v; want NODATA (empty, no error)", txts, err)
	}
	// An empty non-terminal is NODATA too.
	if txts, err := r.TXT(ctx, "deep.example.com"); err != nil || len(txts) != 0 {
		t.Errorf("TXT of an empty non-terminal = %q, %v; want NODATA", txts, err)
	}
	// NXDOMAIN.
	_, err = r.TXT(ctx, "nothing.example.com")
	var qe *QueryError
	if !errors.Is(err, ErrNXDomain) || !IsNotFound(err) || errors.Is(err, ErrTemporary) || !errors.As(err, &qe) || qe.Name != "nothing.example.com" {
		t.Errorf("TXT of a missing name: %v; want ErrNXDomain", err)
	}
	// SERVFAIL is temporary, not NXDOMAIN.
	_, err = r.TXT(ctx, "broken.example.com")
	if !errors.Is(err, ErrTemporary) || IsNotFound(err) || !strings.Contains(err.Error(), "SERVFAIL") {
		t.Errorf("TXT of a SERVFAIL name: %v; want ErrTemporary naming SERVFAIL", err)
	}
}

func TestResolverTimeout(t *testing.T) {
	// A UDP socket that never answers.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	r, err := NewResolver(pc.LocalAddr().String(), 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = r.TXT(context.Background(), "example.com")
	if !errors.Is(err, ErrTemporary) || IsNotFound(err) {
		t.Errorf("a resolver that does not answer: %v; want ErrTemporary", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the timeout took %v; want about %d × 100ms", took, DefaultUDPAttempts)
	}
}

func TestResolverTCPOnTruncation(t *testing.T) {
	z := testZone{}
	var want []string
	for i := range 12 {
		v := fmt.Sprintf("record %02d %s", i, strings.Repeat("x", 200))
		want = append(want, v)
		z.txt("big.example.com", v)
	}
	srv, r := serve(t, z)
	txts, err := r.TXT(context.Background(), "big.example.com")
	if err != nil || len(txts) != len(want) {
		t.Fatalf("TXT of a %d-octet answer: %d records, %v; want all %d (over TCP)", 12*210, len(txts), err, len(want))
	}
	if q := srv.Queries(); len(q) != 2 {
		t.Errorf("queries %q; want one over UDP (truncated) and one over TCP", q)
	}
}

func TestResolverPTRCache(t *testing.T) {
	z := testZone{}
	z.ptr("192.0.2.25", "mail.example.com")
	z.ptr("2001:db8::25", "mail6.example.com")
	srv, r := serve(t, z)
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r.now = func() time.Time { return clock }
	ctx := context.Background()

	for range 3 {
		names, err := r.PTR(ctx, netip.MustParseAddr("192.0.2.25"))
		if err != nil || len(names) != 1 || names[0] != "mail.example.com" {
			t.Fatalf("PTR = %q, %v", names, err)
		}
	}
	if n := len(srv.Queries()); n != 1 {
		t.Errorf("%d queries for 3 PTR lookups of one address; want 1 (cached)", n)
	}
	names, err := r.PTR(ctx, netip.MustParseAddr("2001:db8::25"))
	if err != nil || len(names) != 1 || names[0] != "mail6.example.com" {
		t.Errorf("PTR of IPv6 = %q, %v", names, err)
	}
	// No PTR: cached as empty, not an error.
	for range 2 {
		if names, err := r.PTR(ctx, netip.MustParseAddr("192.0.2.99")); err != nil || len(names) != 0 {
			t.Errorf("PTR of an address without name = %q, %v; want empty", names, err)
		}
	}
	if n := len(srv.Queries()); n != 3 {
		t.Errorf("%d queries; want 3 (the missing name cached too)", n)
	}
	// The TTL (300 s, clamped to at least PTRCacheMinTTL) expires.
	clock = clock.Add(301 * time.Second)
	r.PTR(ctx, netip.MustParseAddr("192.0.2.25"))
	if n := len(srv.Queries()); n != 4 {
		t.Errorf("%d queries after the TTL; want 4 (asked again)", n)
	}

	// The cache is bounded, least recently used out first.
	c := newPTRCache(2)
	far := clock.Add(time.Hour)
	a1, a2, a3 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")
	c.put(a1, []string{"one"}, far)
	c.put(a2, []string{"two"}, far)
	c.get(a1, clock)
	c.put(a3, []string{"three"}, far)
	if _, ok := c.get(a2, clock); ok || c.len() != 2 {
		t.Errorf("after 3 puts into a cache of 2: %d entries, a2 kept %v; want a2 (least recently used) gone", c.len(), ok)
	}
	if _, ok := c.get(a1, clock); !ok {
		t.Error("a1, used recently, was evicted")
	}
}

func TestNewResolverAddress(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1":      "127.0.0.1:53",
		"127.0.0.1:5353": "127.0.0.1:5353",
		"[::1]":          "[::1]:53",
		"::1":            "[::1]:53",
		"[::1]:53":       "[::1]:53",
	} {
		r, err := NewResolver(in, 0)
		if err != nil || r.Server != want || r.Timeout != DefaultDNSTimeout {
			t.Errorf("NewResolver(%q) = %v, %v; want %s with the default timeout", in, r, err, want)
		}
	}
}
