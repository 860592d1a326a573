package aggregate

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"hash/maphash"
	"net/netip"
	"time"

	"github.com/dmarcd/dmarcd"
)

// An enumeration is the set of values the schema allows for an element,
// each mapped to itself so that a value read is looked up without
// allocating.
type enumeration map[string]string

func enum(values ...string) enumeration {
	e := enumeration{}
	for _, v := range values {
		e[v] = v
	}
	return e
}

// The enumerations of RFC 9990 §3 and RFC 7489 Appendix C.
var (
	alignmentModes   = enum("r", "s")                               // AlignmentType
	policyValues     = enum("none", "quarantine", "reject")         // DispositionType
	dispositions     = enum("none", "quarantine", "reject", "pass") // ActionDispositionType: RFC 9990 adds pass
	alignedResults   = enum("pass", "fail")                         // DMARCResultType
	testingValues    = enum("n", "y")                               // TestingType
	discoveryMethods = enum("psl", "treewalk")                      // DiscoveryType
	spfScopes        = enum("mfrom", "helo")                        // SPFDomainScope; RFC 9990 keeps only mfrom
	dkimResults      = enum("none", "pass", "fail", "policy", "neutral", "temperror", "permerror")
	spfResults       = enum("none", "neutral", "pass", "fail", "softfail", "temperror", "permerror", "policy")
	overrideTypes    = enum("forwarded", "sampled_out", "trusted_forwarder", "mailing_list", "local_policy", "other",
		"policy_test_mode") // PolicyOverrideType; RFC 9990 adds policy_test_mode and drops forwarded and sampled_out
)

// enum reads a value of an enumeration. The schema's values are lower
// case; "PASS" or "Reject" is taken in lower case and noted as
// "uppercase-values". A value outside the enumeration is kept, in lower
// case, and noted as "unknown-value:<element>".
func (d *Decoder) enum(el xml.StartElement, values enumeration) (string, error) {
	v, err := d.text(el)
	if err != nil || len(v) == 0 {
		return "", err
	}
	if s, ok := values[string(v)]; ok {
		return s, nil
	}
	lower := bytes.ToLower(v)
	if !bytes.Equal(lower, v) {
		d.tolerate("uppercase-values")
	}
	if s, ok := values[string(lower)]; ok {
		return s, nil
	}
	d.tolerate2("unknown-value:", local(el))
	if err := d.account(len(lower)); err != nil {
		return "", err
	}
	return string(lower), nil
}

// pct reads the RFC 7489 §6.3 pct= of the published policy, 0 to 100. A
// value that is not one is noted as "invalid:pct" and taken as absent.
func (d *Decoder) pct(el xml.StartElement) (int, error) {
	v, err := d.text(el)
	if err != nil {
		return 0, err
	}
	if len(v) == 0 {
		d.tolerate("empty:pct")
		return dmarcd.PctAbsent, nil
	}
	n, ok := parseUint(v)
	if !ok || n > 100 {
		d.tolerate("invalid:pct")
		return dmarcd.PctAbsent, nil
	}
	return int(n), nil
}

// count reads the message count of a row (RFC 9990 §3.1.3, xs:integer). An
// empty count is taken as 0 and noted as "empty:count"; one that is not a
// number is an error: the report would misstate how much mail there was.
func (d *Decoder) count(v []byte) (int64, error) {
	if len(v) == 0 {
		d.tolerate("empty:count")
		return 0, nil
	}
	n, ok := parseUint(v)
	if !ok {
		return 0, fmt.Errorf("not a number of messages: %q", truncate(string(v)))
	}
	return n, nil
}

// maxUnixSeconds is 9999-12-31T23:59:59Z, the last second a report's date
// range can sensibly name.
const maxUnixSeconds = 253402300799

var errNoTime = errors.New("not seconds since the epoch")

// unixTime reads a time of the date range: seconds since 1970-01-01 UTC
// (RFC 9990 §3.1.1). A fraction of a second is dropped and noted as
// "fraction-in:<element>"; an RFC 3339 date is taken and noted as
// "rfc3339-in:<element>".
func (d *Decoder) unixTime(name string, v []byte) (time.Time, error) {
	if len(v) == 0 {
		return time.Time{}, fmt.Errorf("empty")
	}
	whole := v
	if i := bytes.IndexByte(v, '.'); i >= 0 {
		frac := v[i+1:]
		if _, ok := parseUint(frac); !ok && len(frac) > 0 {
			return time.Time{}, fmt.Errorf("%w: %q", errNoTime, truncate(string(v)))
		}
		whole = v[:i]
		d.tolerate2("fraction-in:", name)
	}
	n, ok := parseUint(whole)
	if !ok {
		if t, err := time.Parse(time.RFC3339, string(v)); err == nil {
			d.tolerate2("rfc3339-in:", name)
			return t.UTC(), nil
		}
		return time.Time{}, fmt.Errorf("%w: %q", errNoTime, truncate(string(v)))
	}
	if n > maxUnixSeconds {
		return time.Time{}, fmt.Errorf("%d seconds since the epoch is after the year 9999", n)
	}
	return time.Unix(n, 0).UTC(), nil
}

// parseUint parses decimal digits into a non-negative int64.
func parseUint(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 { // 18 digits cannot overflow int64
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// sourceIP returns the address of a row in canonical text form (RFC 5952
// for IPv6; an IPv4-mapped IPv6 address as IPv4, noted "ipv4-mapped"). Text
// that is not an address is kept as written and noted as "invalid-ip".
func (d *Decoder) sourceIP(v []byte) string {
	if len(v) == 0 {
		d.tolerate("empty:source_ip")
		return ""
	}
	s := string(v)
	a, err := netip.ParseAddr(s)
	if err != nil {
		d.tolerate("invalid-ip")
		return s
	}
	if a.Is4In6() {
		d.tolerate("ipv4-mapped")
		return a.Unmap().String()
	}
	if a.Is4() {
		// netip takes only the canonical dotted-decimal form.
		return s
	}
	if c := a.String(); c != s {
		return c
	}
	return s
}

// valueSlots is the size of a valueCache, a power of two.
const valueSlots = 128

// maxCachedValueBytes bounds the values a valueCache keeps: longer ones
// seldom recur (comments, human_result) and would hold memory.
const maxCachedValueBytes = 64

var valueSeed = maphash.MakeSeed()

// A valueCache keeps the strings of recent short values, so that a value
// that recurs from record to record (the header_from domain, a DKIM domain
// and selector, an SPF domain) is one string rather than a new one in each
// record: fewer allocations, less work for the garbage collector, and the
// records of a report share their memory.
type valueCache [valueSlots]string

// string returns v as a string.
func (c *valueCache) string(v []byte) string {
	if len(v) == 0 || len(v) > maxCachedValueBytes {
		return string(v)
	}
	h := maphash.Bytes(valueSeed, v) % valueSlots
	if s := c[h]; s == string(v) {
		return s
	}
	s := string(v)
	c[h] = s
	return s
}
