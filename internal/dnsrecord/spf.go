package dnsrecord

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// SPFRecord is a parsed SPF record: its terms (mechanisms and modifiers)
// in record order.
type SPFRecord struct {
	Terms []SPFTerm
}

// SPFTerm is one mechanism or modifier of an SPF record.
type SPFTerm struct {
	// Text is the term as published.
	Text string
	// Qualifier is "+", "-", "~" or "?" for a mechanism ("+" when none is
	// written), "" for a modifier.
	Qualifier string
	// Mechanism is the lower-case mechanism name (all, include, a, mx,
	// ptr, ip4, ip6, exists), "" for a modifier.
	Mechanism string
	// Modifier is the lower-case modifier name (redirect, exp, or one
	// that SPF ignores), "" for a mechanism.
	Modifier string
	// Domain is the domain-spec of include, a, mx, ptr and exists, and the
	// value of redirect and exp; "" when the mechanism has none (a, mx and
	// ptr then use the domain being checked).
	Domain string
	// Prefix is the network of ip4 and ip6.
	Prefix netip.Prefix
}

// String writes the record as SPF text.
func (r *SPFRecord) String() string {
	parts := []string{"v=spf1"}
	for _, t := range r.Terms {
		parts = append(parts, t.Text)
	}
	return strings.Join(parts, " ")
}

// Modifier returns the first modifier of the record named name (lower
// case).
func (r *SPFRecord) Modifier(name string) (SPFTerm, bool) {
	for _, t := range r.Terms {
		if t.Modifier == name {
			return t, true
		}
	}
	return SPFTerm{}, false
}

// All returns the record's all mechanism, if it has one.
func (r *SPFRecord) All() (SPFTerm, bool) {
	for _, t := range r.Terms {
		if t.Mechanism == "all" {
			return t, true
		}
	}
	return SPFTerm{}, false
}

// IsSPF reports whether a TXT record is an SPF record: "v=spf1" alone or
// followed by a space, in any case (RFC 7208 §4.5).
func IsSPF(txt string) bool {
	return len(txt) >= 6 && strings.EqualFold(txt[:6], "v=spf1") && (len(txt) == 6 || txt[6] == ' ')
}

// SelectSPF returns the SPF records among the TXT records of a name. More
// than one is a permerror (RFC 7208 §4.5).
func SelectSPF(txts []string) []string {
	var out []string
	for _, t := range txts {
		if IsSPF(t) {
			out = append(out, t)
		}
	}
	return out
}

var (
	spfModifierRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9._-]*=`)
	// dual-cidr-length at the end of a and mx (RFC 7208 §5.6).
	spfDualCIDRRE = regexp.MustCompile(`(?:/([0-9]+))?(?://([0-9]+))?$`)
)

// ParseSPF parses an SPF record (RFC 7208 §4.5, §12). It returns the terms
// it understood and the findings: a syntax error makes receivers return
// permerror for the whole record (RFC 7208 §4.6), and is an error finding.
// The findings' Name is empty: the caller knows where the record lives.
func ParseSPF(txt string) (*SPFRecord, []Finding) {
	var fs []Finding
	syntax := func(format string, args ...any) {
		fs = append(fs, Finding{Severity: SeverityError, Code: "spf-syntax",
			Message: "SPF syntax error: " + fmt.Sprintf(format, args...) + "; receivers return permerror and SPF fails for all mail (RFC 7208 §4.6)",
			Advice:  "correct the term (RFC 7208 §5 lists the mechanisms, §6 the modifiers)"})
	}
	if !IsSPF(txt) {
		syntax("the record does not start with \"v=spf1\" (RFC 7208 §4.5)")
		return nil, fs
	}
	rec := &SPFRecord{}
	seen := map[string]bool{}
	for _, text := range strings.Split(txt[6:], " ") {
		if text == "" {
			continue
		}
		if strings.ContainsAny(text, "\t\r\n") {
			syntax("%q holds a tab or line break; terms are separated by spaces only (RFC 7208 §12)", text)
			continue
		}
		if spfModifierRE.MatchString(text) {
			name, value, _ := strings.Cut(text, "=")
			name = strings.ToLower(name)
			t := SPFTerm{Text: text, Modifier: name, Domain: value}
			switch name {
			case "redirect", "exp":
				if seen[name] {
					syntax("%s= appears more than once (RFC 7208 §6)", name)
				}
				seen[name] = true
				if err := CheckDomainSpec(value); err != nil {
					syntax("%s: %v", text, err)
				}
			default:
				// Unknown modifiers are ignored (RFC 7208 §6), but their
				// value must still be a macro-string.
				if err := validMacroString(value, false); err != nil {
					syntax("%s: %v", text, err)
				}
				fs = append(fs, Finding{Severity: SeverityInfo, Code: "spf-unknown-modifier",
					Message: fmt.Sprintf("receivers ignore the unknown modifier %q (RFC 7208 §6)", text)})
			}
			rec.Terms = append(rec.Terms, t)
			continue
		}
		t, err := ParseSPFMechanism(text)
		if err != nil {
			syntax("%v", err)
			continue
		}
		rec.Terms = append(rec.Terms, t)
		switch {
		case t.Mechanism == "ptr":
			fs = append(fs, Finding{Severity: SeverityWarning, Code: "spf-ptr",
				Message: fmt.Sprintf("%q: the ptr mechanism SHOULD NOT be used (RFC 7208 §5.5): it is slow, unreliable, and some receivers skip it", text),
				Advice:  "replace it by ip4:/ip6: networks or a: names of the sending hosts"})
		case t.Mechanism == "all" && t.Qualifier == "+":
			fs = append(fs, Finding{Severity: SeverityWarning, Code: "spf-all-pass",
				Message: fmt.Sprintf("%q lets every host on the Internet pass SPF for the domain (RFC 7208 §5.1)", text),
				Advice:  "end the record with ~all (or -all once every sender is listed)"})
		case t.Mechanism == "all" && t.Qualifier == "?":
			fs = append(fs, Finding{Severity: SeverityWarning, Code: "spf-all-neutral",
				Message: fmt.Sprintf("%q says nothing about hosts not listed (neutral, RFC 7208 §2.6.2): SPF protects nothing", text),
				Advice:  "end the record with ~all (or -all once every sender is listed)"})
		}
	}
	all, hasAll := rec.All()
	if _, ok := rec.Modifier("redirect"); ok && hasAll {
		fs = append(fs, Finding{Severity: SeverityWarning, Code: "spf-redirect-ignored",
			Message: fmt.Sprintf("redirect= is ignored because the record has %q (RFC 7208 §6.1)", all.Text),
			Advice:  "remove one of them"})
	}
	if hasAll {
		i := slices.IndexFunc(rec.Terms, func(t SPFTerm) bool { return t.Mechanism == "all" })
		for _, t := range rec.Terms[i+1:] {
			if t.Mechanism != "" {
				fs = append(fs, Finding{Severity: SeverityWarning, Code: "spf-after-all",
					Message: fmt.Sprintf("%q comes after %q and is never evaluated (RFC 7208 §5.1)", t.Text, all.Text),
					Advice:  "move it before the all mechanism, or remove it"})
			}
		}
	}
	return rec, fs
}

var spfMechanismNames = map[string]bool{"all": true, "include": true, "a": true, "mx": true, "ptr": true, "ip4": true, "ip6": true, "exists": true}

// ParseSPFMechanism parses a directive: [qualifier] mechanism (RFC 7208
// §4.6.1, §4.6.2, §5).
func ParseSPFMechanism(text string) (SPFTerm, error) {
	t := SPFTerm{Text: text, Qualifier: "+"}
	s := text
	if s != "" && strings.ContainsRune("+-~?", rune(s[0])) {
		t.Qualifier, s = s[:1], s[1:]
	}
	end := strings.IndexAny(s, ":/")
	if end < 0 {
		end = len(s)
	}
	name, rest := strings.ToLower(s[:end]), s[end:]
	if !spfMechanismNames[name] {
		if len(name) > 1 && spfMechanismNames[name[1:]] {
			return t, fmt.Errorf("%q: unknown qualifier %q; use +, -, ~ or ? (RFC 7208 §4.6.2)", text, name[:1])
		}
		return t, fmt.Errorf("unknown mechanism %q (RFC 7208 §5 defines all, include, a, mx, ptr, ip4, ip6, exists)", text)
	}
	t.Mechanism = name
	switch name {
	case "all":
		if rest != "" {
			return t, fmt.Errorf("%q: all takes no argument (RFC 7208 §5.1)", text)
		}
	case "include", "exists":
		if !strings.HasPrefix(rest, ":") || len(rest) == 1 {
			return t, fmt.Errorf("%q: %s needs a domain, %s:DOMAIN (RFC 7208 §5.2, §5.7)", text, name, name)
		}
		t.Domain = rest[1:]
		if err := CheckDomainSpec(t.Domain); err != nil {
			return t, fmt.Errorf("%q: %v", text, err)
		}
	case "a", "mx":
		// The dual-cidr-length is at the end; the pattern matches there,
		// possibly empty.
		m := spfDualCIDRRE.FindStringSubmatch(rest)
		v4, v6 := m[1], m[2]
		rest = rest[:len(rest)-len(m[0])]
		if v4 != "" && !validCIDRLength(v4, 32) {
			return t, fmt.Errorf("%q: bad IPv4 prefix length /%s (0..32, RFC 7208 §5.6)", text, v4)
		}
		if v6 != "" && !validCIDRLength(v6, 128) {
			return t, fmt.Errorf("%q: bad IPv6 prefix length //%s (0..128, RFC 7208 §5.6)", text, v6)
		}
		if rest != "" {
			if !strings.HasPrefix(rest, ":") || len(rest) == 1 {
				return t, fmt.Errorf("%q: unknown mechanism or bad argument (RFC 7208 §5.3, §5.4)", text)
			}
			t.Domain = rest[1:]
			if err := CheckDomainSpec(t.Domain); err != nil {
				return t, fmt.Errorf("%q: %v", text, err)
			}
		}
	case "ptr":
		if rest != "" {
			if !strings.HasPrefix(rest, ":") || len(rest) == 1 {
				return t, fmt.Errorf("%q: ptr takes only a domain, ptr:DOMAIN (RFC 7208 §5.5)", text)
			}
			t.Domain = rest[1:]
			if err := CheckDomainSpec(t.Domain); err != nil {
				return t, fmt.Errorf("%q: %v", text, err)
			}
		}
	case "ip4", "ip6":
		if !strings.HasPrefix(rest, ":") {
			return t, fmt.Errorf("%q: %s needs an address, %s:ADDRESS[/LENGTH] (RFC 7208 §5.6)", text, name, name)
		}
		p, err := parseSPFNetwork(name, rest[1:])
		if err != nil {
			return t, fmt.Errorf("%q: %v (RFC 7208 §5.6)", text, err)
		}
		t.Prefix = p
	}
	return t, nil
}

// validCIDRLength: no leading zeros, at most max (RFC 7208 §12,
// ip4-cidr-length and ip6-cidr-length).
func validCIDRLength(s string, maxBits int) bool {
	if len(s) > 1 && s[0] == '0' {
		return false
	}
	n, err := strconv.Atoi(s)
	return err == nil && n >= 0 && n <= maxBits
}

// parseSPFNetwork parses the argument of ip4: or ip6:.
func parseSPFNetwork(mech, arg string) (netip.Prefix, error) {
	addrText, length, hasLength := strings.Cut(arg, "/")
	addr, err := netip.ParseAddr(addrText)
	if err != nil || addr.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address", addrText)
	}
	bits := 32
	if mech == "ip4" {
		if !addr.Is4() {
			return netip.Prefix{}, fmt.Errorf("%q is not an IPv4 address; use ip6: for IPv6", addrText)
		}
	} else {
		if !addr.Is6() {
			return netip.Prefix{}, fmt.Errorf("%q is not an IPv6 address; use ip4: for IPv4", addrText)
		}
		bits = 128
	}
	n := bits
	if hasLength {
		if !validCIDRLength(length, bits) {
			return netip.Prefix{}, fmt.Errorf("bad prefix length /%s (0..%d)", length, bits)
		}
		n, _ = strconv.Atoi(length)
	}
	return netip.PrefixFrom(addr, n), nil
}

// SPFNetworkTerm writes an address or network, with or without its ip4: or
// ip6:, as the mechanism that matches it (RFC 7208 §5.6): a single address
// without a prefix length, a network masked to its length, an IPv4-mapped
// IPv6 address as IPv4.
func SPFNetworkTerm(s string) (string, error) {
	s = strings.TrimSpace(s)
	for _, p := range []string{"ip4:", "ip6:", "+ip4:", "+ip6:"} {
		s = strings.TrimPrefix(s, p)
	}
	var pfx netip.Prefix
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return "", fmt.Errorf("%q is not an IP network (ADDRESS/LENGTH): %v", s, err)
		}
		pfx = p.Masked()
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return "", fmt.Errorf("%q is not an IP address", s)
		}
		pfx = netip.PrefixFrom(a, a.BitLen())
	}
	addr := pfx.Addr().Unmap()
	mech := "ip4:"
	if addr.Is6() {
		mech = "ip6:"
	}
	if pfx.Bits() == addr.BitLen() || (pfx.Addr().Is4In6() && pfx.Bits() == 128) {
		return mech + addr.String(), nil
	}
	bits := pfx.Bits()
	if pfx.Addr().Is4In6() {
		bits -= 96
	}
	return fmt.Sprintf("%s%s/%d", mech, addr, bits), nil
}
