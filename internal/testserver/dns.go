package testserver

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Limits of the in-process DNS server.
const (
	dnsStartTimeout = 5 * time.Second
	// dnsStartAttempts covers losing the UDP port's TCP twin to another
	// process between binding one and the other.
	dnsStartAttempts = 5
	// dnsClassicUDPSize is the UDP answer limit without EDNS(0)
	// (RFC 1035 §4.2.1).
	dnsClassicUDPSize = 512
)

// DNSServer is an authoritative DNS server on 127.0.0.1, UDP and TCP on
// one port, answering from a map of names to records. It runs in the
// test's process (github.com/miekg/dns), so it needs no binary.
//
// A name with records answers them (those of the type asked; none is
// NODATA); a name without records that is the parent of one is an empty
// non-terminal (NODATA); "*.PARENT" answers the names below PARENT that are
// not in the map (RFC 4592, simplified); other names are NXDOMAIN. A name
// holding DNSServFail is answered SERVFAIL. Answers over UDP are truncated
// to 512 octets, or to the EDNS(0) size the query offers, with TC set.
type DNSServer struct {
	// Addr is host:port, for UDP and TCP.
	Addr string

	mu      sync.Mutex
	zone    map[string][]dns.RR
	queries []string
}

// DNS starts a DNSServer serving zone (names in any case, with or without
// the final dot) until the test ends, and returns its address.
func DNS(t testing.TB, zone map[string][]dns.RR) (addr string) {
	return StartDNS(t, zone).Addr
}

// StartDNS is DNS returning the server, for tests that change the zone or
// count queries.
func StartDNS(t testing.TB, zone map[string][]dns.RR) *DNSServer {
	t.Helper()
	s := &DNSServer{zone: map[string][]dns.RR{}}
	for name, rrs := range zone {
		s.Set(name, rrs...)
	}
	var err error
	for range dnsStartAttempts {
		if err = s.start(t); err == nil {
			return s
		}
	}
	t.Fatalf("starting the test DNS server: %v", err)
	return nil
}

func (s *DNSServer) start(t testing.TB) error {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		pc.Close()
		return err
	}
	s.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	started := make(chan struct{}, 2)
	udp := &dns.Server{PacketConn: pc, Handler: s, NotifyStartedFunc: func() { started <- struct{}{} }}
	tcp := &dns.Server{Listener: ln, Handler: s, NotifyStartedFunc: func() { started <- struct{}{} }}
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	timeout := time.After(dnsStartTimeout)
	for range 2 {
		select {
		case <-started:
		case <-timeout:
			udp.Shutdown()
			tcp.Shutdown()
			return errors.New("the server did not start in time")
		}
	}
	t.Cleanup(func() {
		udp.Shutdown()
		tcp.Shutdown()
	})
	return nil
}

// DNSServFail returns a marker record: a name holding it is answered
// SERVFAIL.
func DNSServFail(name string) dns.RR {
	return &dns.NULL{Hdr: dns.RR_Header{Name: dns.Fqdn(name), Rrtype: dns.TypeNULL, Class: dns.ClassINET}, Data: "servfail"}
}

// Set replaces the records of name; none removes it.
func (s *DNSServer) Set(name string, rrs ...dns.RR) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := strings.ToLower(dns.Fqdn(name))
	if len(rrs) == 0 {
		delete(s.zone, key)
		return
	}
	s.zone[key] = rrs
}

// Records returns the records of name.
func (s *DNSServer) Records(name string) []dns.RR {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]dns.RR(nil), s.zone[strings.ToLower(dns.Fqdn(name))]...)
}

// Queries returns the questions asked so far, as "NAME TYPE" with the name
// in lower case and without the final dot.
func (s *DNSServer) Queries() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.queries...)
}

// ServeDNS implements dns.Handler.
func (s *DNSServer) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	if len(r.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	name := strings.ToLower(q.Name)
	s.mu.Lock()
	s.queries = append(s.queries, strings.TrimSuffix(name, ".")+" "+dns.TypeToString[q.Qtype])
	rrs, ok := s.zone[name]
	if !ok && !s.nonTerminal(name) {
		rrs, ok = s.wildcard(name)
	}
	s.mu.Unlock()

	switch {
	case ok && servFail(rrs):
		m.Rcode = dns.RcodeServerFailure
	case ok || s.nonTerminalLocked(name):
		for _, rr := range rrs {
			if rr.Header().Rrtype == q.Qtype {
				c := dns.Copy(rr)
				c.Header().Name = q.Name
				m.Answer = append(m.Answer, c)
			}
		}
	default:
		m.Rcode = dns.RcodeNameError
	}
	if _, isUDP := w.RemoteAddr().(*net.UDPAddr); isUDP {
		size := dnsClassicUDPSize
		if opt := r.IsEdns0(); opt != nil {
			size = max(int(opt.UDPSize()), dnsClassicUDPSize)
			m.SetEdns0(uint16(size), false)
		}
		m.Truncate(size)
	}
	w.WriteMsg(m)
}

func servFail(rrs []dns.RR) bool {
	for _, rr := range rrs {
		if n, ok := rr.(*dns.NULL); ok && n.Data == "servfail" {
			return true
		}
	}
	return false
}

// nonTerminal reports whether a name below name has records. The caller
// holds mu.
func (s *DNSServer) nonTerminal(name string) bool {
	for k := range s.zone {
		if strings.HasSuffix(k, "."+name) {
			return true
		}
	}
	return false
}

func (s *DNSServer) nonTerminalLocked(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nonTerminal(name)
}

// wildcard finds "*.PARENT" for the closest PARENT of name. The caller
// holds mu.
func (s *DNSServer) wildcard(name string) ([]dns.RR, bool) {
	for parent := name; ; {
		_, rest, ok := strings.Cut(parent, ".")
		if !ok || rest == "" {
			return nil, false
		}
		if rrs, ok := s.zone["*."+rest]; ok {
			return rrs, true
		}
		if _, exists := s.zone[rest]; exists || s.nonTerminal(rest) {
			return nil, false
		}
		parent = rest
	}
}
