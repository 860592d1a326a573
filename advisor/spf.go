package advisor

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/miekg/dns"

	"github.com/dmarcd/dmarcd/internal/dnsrecord"
)

// Limits of SPF (RFC 7208) and of the analysis.
const (
	// SPFMaxLookups: the include, a, mx, ptr and exists mechanisms and the
	// redirect modifier cause DNS queries; more than 10 of them in one
	// evaluation, includes counted recursively, is a permerror
	// (RFC 7208 §4.6.4).
	SPFMaxLookups = 10
	// SPFMaxVoidLookups: more than 2 lookups answered NXDOMAIN or with no
	// records is a permerror (RFC 7208 §4.6.4, the recommended default).
	SPFMaxVoidLookups = 2
	// SPFMaxMXHosts: an mx mechanism whose domain has more MX records than
	// this is a permerror (RFC 7208 §4.6.4).
	SPFMaxMXHosts = 10
	// SPFMaxRecordOctets: the DNS name plus the text of its TXT records
	// should stay under 450 octets so that the answer fits a UDP packet
	// (RFC 7208 §3.4).
	SPFMaxRecordOctets = 450
	// spfAnalysisMaxLookups bounds the DNS work of one analysis: past it
	// the record is far over the limit and the rest is not followed.
	spfAnalysisMaxLookups = 3 * SPFMaxLookups
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

// spfLookupMechanisms cause a DNS query (RFC 7208 §4.6.4).
var spfLookupMechanisms = map[string]bool{"include": true, "a": true, "mx": true, "ptr": true, "exists": true}

// causesLookup reports whether the term counts against SPFMaxLookups.
func (t SPFTerm) causesLookup() bool {
	return spfLookupMechanisms[t.Mechanism] || t.Modifier == "redirect"
}

// String writes the record as SPF text.
func (r *SPFRecord) String() string {
	parts := []string{"v=spf1"}
	for _, t := range r.Terms {
		parts = append(parts, t.Text)
	}
	return strings.Join(parts, " ")
}

func (r *SPFRecord) modifier(name string) (SPFTerm, bool) {
	for _, t := range r.Terms {
		if t.Modifier == name {
			return t, true
		}
	}
	return SPFTerm{}, false
}

func (r *SPFRecord) all() (SPFTerm, bool) {
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
				if err := validDomainSpec(value, false); err != nil {
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
		t, err := parseSPFMechanism(text)
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
	all, hasAll := rec.all()
	if _, ok := rec.modifier("redirect"); ok && hasAll {
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

// parseSPFMechanism parses a directive: [qualifier] mechanism (RFC 7208
// §4.6.1, §4.6.2, §5).
func parseSPFMechanism(text string) (SPFTerm, error) {
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
		if err := validDomainSpec(t.Domain, false); err != nil {
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
			if err := validDomainSpec(t.Domain, false); err != nil {
				return t, fmt.Errorf("%q: %v", text, err)
			}
		}
	case "ptr":
		if rest != "" {
			if !strings.HasPrefix(rest, ":") || len(rest) == 1 {
				return t, fmt.Errorf("%q: ptr takes only a domain, ptr:DOMAIN (RFC 7208 §5.5)", text)
			}
			t.Domain = rest[1:]
			if err := validDomainSpec(t.Domain, false); err != nil {
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

// validMacroString checks a macro-string (RFC 7208 §7.1). The macro
// letters c, r and t are allowed only in explanation text (RFC 7208 §7.2
// and §7.3).
func validMacroString(s string, exp bool) error {
	_, err := macroTokens(s, exp)
	return err
}

// macroTokens splits a macro-string into literal runs and macro-expands,
// checking their syntax.
func macroTokens(s string, exp bool) ([]string, error) {
	var toks []string
	lit := 0
	flush := func(i int) {
		if i > lit {
			toks = append(toks, s[lit:i])
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			if c < 0x21 || c > 0x7e {
				return nil, fmt.Errorf("%q holds a character outside visible ASCII", s)
			}
			continue
		}
		flush(i)
		if i+1 >= len(s) {
			return nil, fmt.Errorf("%q ends with a lone %%; write %%%% for a percent sign (RFC 7208 §7.1)", s)
		}
		switch s[i+1] {
		case '%', '_', '-':
			toks = append(toks, s[i:i+2])
			i++
		case '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("%q: macro %s has no closing brace (RFC 7208 §7.1)", s, s[i:])
			}
			body := s[i+2 : i+end]
			if err := validMacroBody(body, exp); err != nil {
				return nil, fmt.Errorf("%q: macro %%{%s}: %v (RFC 7208 §7.1)", s, body, err)
			}
			toks = append(toks, s[i:i+end+1])
			i += end
		default:
			return nil, fmt.Errorf("%q: %%%c is not a macro; write %%%% for a percent sign (RFC 7208 §7.1)", s, s[i+1])
		}
		lit = i + 1
	}
	flush(len(s))
	return toks, nil
}

// expandKnownMacros expands the macros of a domain-spec whose values do not
// depend on the message (RFC 7208 §7.2): %{d}, the domain whose record is
// evaluated, and %{o}, the domain of the envelope sender, which for the
// records of a domain is that domain; with their transformers (%{d2},
// %{dr}, %{d1r-}...) and the escapes %%, %_ and %-. It reports false when
// the spec holds a macro of the message (%{i}, %{s}, %{l}, %{h}, %{p},
// %{v}): its name is then not known before mail arrives.
func expandKnownMacros(spec, d, o string) (string, bool) {
	toks, err := macroTokens(spec, false)
	if err != nil {
		return "", false
	}
	var b strings.Builder
	for _, t := range toks {
		switch {
		case t == "%%":
			b.WriteByte('%')
		case t == "%_":
			b.WriteByte(' ')
		case t == "%-":
			b.WriteString("%20")
		case strings.HasPrefix(t, "%{"):
			body := t[2 : len(t)-1]
			var value string
			switch body[0] | 0x20 {
			case 'd':
				value = d
			case 'o':
				value = o
			default:
				return "", false
			}
			b.WriteString(transformMacro(value, body[1:]))
		default:
			b.WriteString(t)
		}
	}
	return b.String(), true
}

// transformMacro applies a macro's transformers and delimiters (RFC 7208
// §7.3): split on the delimiters (default "."), reverse with r, keep the
// right-most N parts, join with ".".
func transformMacro(value, rest string) string {
	i := 0
	for i < len(rest) && asciiDigit(rest[i]) {
		i++
	}
	n, _ := strconv.Atoi(rest[:i])
	reverse := i < len(rest) && rest[i]|0x20 == 'r'
	if reverse {
		i++
	}
	delims := rest[i:]
	if delims == "" {
		delims = "."
	}
	parts := strings.FieldsFunc(value, func(r rune) bool { return strings.ContainsRune(delims, r) })
	if reverse {
		slices.Reverse(parts)
	}
	if n > 0 && n < len(parts) {
		parts = parts[len(parts)-n:]
	}
	return strings.Join(parts, ".")
}

// validMacroBody checks macro-letter transformers *delimiter.
func validMacroBody(body string, exp bool) error {
	if body == "" {
		return errors.New("no macro letter")
	}
	letter := body[0] | 0x20 // upper case means URL-escaped
	switch {
	case strings.IndexByte("slodiphv", letter) >= 0:
	case strings.IndexByte("crt", letter) >= 0:
		if !exp {
			return fmt.Errorf("%%{%c} is allowed only in exp= text", body[0])
		}
	default:
		return fmt.Errorf("unknown macro letter %q", body[:1])
	}
	rest := body[1:]
	i := 0
	for i < len(rest) && asciiDigit(rest[i]) {
		i++
	}
	if i < len(rest) && (rest[i]|0x20) == 'r' {
		i++
	}
	for ; i < len(rest); i++ {
		if strings.IndexByte(".-+,/_=", rest[i]) < 0 {
			return fmt.Errorf("bad transformer or delimiter %q", rest[i:])
		}
	}
	return nil
}

// validDomainSpec checks domain-spec = macro-string domain-end, where
// domain-end is "." toplabel ["."] or a macro-expand (RFC 7208 §7.1).
func validDomainSpec(s string, exp bool) error {
	if s == "" {
		return errors.New("empty domain")
	}
	toks, err := macroTokens(s, exp)
	if err != nil {
		return err
	}
	last := toks[len(toks)-1]
	if strings.HasPrefix(last, "%") {
		return nil
	}
	if len(toks) == 1 {
		// A plain domain name: it must be one.
		name := strings.TrimSuffix(s, ".")
		if _, ok := dns.IsDomainName(name); !ok || strings.Contains(name, "..") || strings.HasPrefix(name, ".") {
			return fmt.Errorf("%q is not a domain name", s)
		}
	}
	lit := strings.TrimSuffix(last, ".")
	dot := strings.LastIndexByte(lit, '.')
	if dot < 0 {
		return fmt.Errorf("%q is not a fully qualified domain name: it must end with .TOPLABEL (RFC 7208 §7.1)", s)
	}
	if !validTopLabel(lit[dot+1:]) {
		return fmt.Errorf("%q ends with %q, which is not a top-level label (RFC 7208 §7.1)", s, lit[dot+1:])
	}
	return nil
}

// validTopLabel: ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *(
// alphanum / "-" ) alphanum ) (RFC 7208 §7.1, after RFC 3696 §2).
func validTopLabel(l string) bool {
	if l == "" {
		return false
	}
	alpha, hyphen := false, false
	for i := 0; i < len(l); i++ {
		c := l[i] | 0x20
		switch {
		case c >= 'a' && c <= 'z':
			alpha = true
		case asciiDigit(l[i]):
		case l[i] == '-':
			if i == 0 || i == len(l)-1 {
				return false
			}
			hyphen = true
		default:
			return false
		}
	}
	return alpha || hyphen
}

// SPFAnalysis is an SPF record with its cost: the DNS lookups it needs,
// through its includes, when no mechanism matches before the end (the case
// of mail that fails, and of senders listed last).
type SPFAnalysis struct {
	// Domain is the domain the record belongs to.
	Domain string `json:"domain"`
	Record string `json:"record"`
	// Lookups counts the DNS-causing terms, includes and redirects
	// followed recursively; over SPFMaxLookups is a permerror.
	Lookups int `json:"lookups"`
	// VoidLookups counts lookups answered NXDOMAIN or with no record, for
	// a receiver checking an IPv4 client; over SPFMaxVoidLookups is a
	// permerror.
	VoidLookups int `json:"void_lookups"`
	// Costs are the DNS-causing terms of the record with what each costs,
	// includes with their own includes.
	Costs    []*SPFCost `json:"costs"`
	Findings []Finding  `json:"findings"`
}

// SPFCost is what one DNS-causing term of an SPF record costs.
type SPFCost struct {
	// Term is the term as published: "include:_spf.google.com", "mx",
	// "redirect=_spf.example.com".
	Term string `json:"term"`
	// Domain is the domain it queries (for include and redirect, the one
	// whose record it reads).
	Domain string `json:"domain"`
	// Lookups is the term itself plus, for include and redirect,
	// everything in the record it reads, recursively.
	Lookups     int        `json:"lookups"`
	VoidLookups int        `json:"void_lookups"`
	Record      string     `json:"record,omitempty"`
	Includes    []*SPFCost `json:"includes,omitempty"`
	// Problem says what went wrong reading it, if anything.
	Problem string `json:"problem,omitempty"`
}

// spfWalk is the state of one analysis.
type spfWalk struct {
	dns        DNS
	lookups    int
	voids      int
	overAt     string // the chain of the lookup that broke the limit
	voidOverAt string
	findings   []Finding
	truncated  bool
}

// AnalyzeSPF reads the SPF record of domain and analyzes it. It returns
// nil and the findings when there is no single SPF record; err only when
// DNS fails for the domain itself.
func AnalyzeSPF(ctx context.Context, r DNS, domain string) (*SPFAnalysis, []Finding, error) {
	txts, err := r.TXT(ctx, domain)
	if err != nil && !IsNotFound(err) {
		return nil, nil, fmt.Errorf("reading the SPF record of %s: %w", domain, err)
	}
	spfs := SelectSPF(txts)
	switch len(spfs) {
	case 0:
		return nil, []Finding{{Severity: SeverityWarning, Code: "spf-missing", Name: domain,
			Message: fmt.Sprintf("%s publishes no SPF record: SPF never passes for it, and DMARC rests on DKIM alone", domain),
			Advice:  "publish the SPF record that `dmarcd domain add` prints"}}, nil
	case 1:
	default:
		return nil, []Finding{{Severity: SeverityError, Code: "spf-multiple", Name: domain,
			Message: fmt.Sprintf("%s publishes %d SPF records; receivers return permerror and SPF fails for all mail (RFC 7208 §4.5): %s",
				domain, len(spfs), strings.Join(quotedList(spfs), ", ")),
			Advice: "merge them into one record (`dmarcd domain add` prints a merged one) and delete the others"}}, nil
	}
	a := AnalyzeSPFRecord(ctx, r, domain, spfs[0])
	octets := len(domain)
	for _, t := range txts {
		octets += len(t)
	}
	if octets > SPFMaxRecordOctets {
		a.Findings = append(a.Findings, Finding{Severity: SeverityWarning, Code: "spf-size", Name: domain,
			Message: fmt.Sprintf("the name and the TXT records of %s take %d octets, over %d: the answer may not fit a UDP packet (RFC 7208 §3.4)", domain, octets, SPFMaxRecordOctets),
			Advice:  "shorten the record: merge ip4: networks, drop unused includes, or move TXT records that are not SPF elsewhere"})
	}
	return a, a.Findings, nil
}

// AnalyzeSPFRecord analyzes the SPF record txt as if published at domain:
// its syntax, and the lookups and void lookups through its includes, read
// from DNS. DNS failures below the record are findings, not errors.
func AnalyzeSPFRecord(ctx context.Context, r DNS, domain, txt string) *SPFAnalysis {
	a := &SPFAnalysis{Domain: domain, Record: txt}
	w := &spfWalk{dns: r}
	rec, fs := ParseSPF(txt)
	w.findings = append(w.findings, findingsAt(fs, domain)...)
	if rec != nil {
		a.Costs = w.record(ctx, domain, rec, []string{domain})
	}
	a.Lookups, a.VoidLookups = w.lookups, w.voids
	if w.lookups > SPFMaxLookups {
		w.findings = append(w.findings, Finding{Severity: SeverityError, Code: "spf-lookups", Name: domain,
			Message: fmt.Sprintf("the SPF record of %s needs %s DNS lookups, over the limit of %d: receivers return permerror and SPF fails (RFC 7208 §4.6.4). The lookup over the limit is %s. Costs: %s",
				domain, w.count(), SPFMaxLookups, w.overAt, CostSummary(a.Costs)),
			Advice: "drop includes of services you no longer use; replace a costly include by the ip4:/ip6: networks it lists (flattening: you must then follow its changes); or send that mail from a subdomain with its own SPF record"})
	}
	if w.voids > SPFMaxVoidLookups {
		w.findings = append(w.findings, Finding{Severity: SeverityError, Code: "spf-void-lookups", Name: domain,
			Message: fmt.Sprintf("the SPF record of %s makes %d void lookups (answered NXDOMAIN or empty), over the limit of %d: receivers return permerror (RFC 7208 §4.6.4). The void lookup over the limit is %s",
				domain, w.voids, SPFMaxVoidLookups, w.voidOverAt),
			Advice: "remove the mechanisms that name domains without records (a:, mx:, include: of names that no longer exist)"})
	}
	if rec != nil {
		if _, ok := rec.all(); !ok {
			if _, ok := rec.modifier("redirect"); !ok {
				w.findings = append(w.findings, Finding{Severity: SeverityInfo, Code: "spf-no-all", Name: domain,
					Message: fmt.Sprintf("the SPF record of %s ends without all or redirect=: hosts not listed get neutral (RFC 7208 §4.7)", domain),
					Advice:  "end it with ~all (or -all)"})
			}
		}
	}
	a.Findings = w.findings
	return a
}

func (w *spfWalk) count() string {
	if w.truncated {
		return fmt.Sprintf("at least %d", w.lookups)
	}
	return strconv.Itoa(w.lookups)
}

// lookup counts one DNS-causing term and notes where the limit broke.
func (w *spfWalk) lookup(chain []string, term string) bool {
	if w.lookups >= spfAnalysisMaxLookups {
		w.truncated = true
		return false
	}
	w.lookups++
	if w.lookups == SPFMaxLookups+1 {
		w.overAt = chainText(chain, term)
	}
	return true
}

func (w *spfWalk) void(chain []string, term string, c *SPFCost) {
	w.voids++
	c.VoidLookups++
	if w.voids == SPFMaxVoidLookups+1 {
		w.voidOverAt = chainText(chain, term)
	}
}

// chainText names a term by the includes it is reached through:
// "include:_spf.b.example in the record of _spf.a.example, reached from
// example.com through include:_spf.a.example".
func chainText(chain []string, term string) string {
	if len(chain) == 1 {
		return fmt.Sprintf("%s in the record of %s", term, chain[0])
	}
	return fmt.Sprintf("%s in the record of %s, reached from %s", term, chain[len(chain)-1], strings.Join(chain[:len(chain)-1], " -> "))
}

// record walks the DNS-causing terms of rec (published at domain) in
// evaluation order: the mechanisms, then redirect= when there is no all
// (RFC 7208 §6.1). chain names how the walk got here.
func (w *spfWalk) record(ctx context.Context, domain string, rec *SPFRecord, chain []string) []*SPFCost {
	var costs []*SPFCost
	_, hasAll := rec.all()
	var redirect *SPFTerm
	for i := range rec.Terms {
		t := rec.Terms[i]
		if t.Modifier == "redirect" && !hasAll {
			redirect = &rec.Terms[i]
		}
		if t.Mechanism == "" || !t.causesLookup() {
			continue
		}
		if c := w.term(ctx, domain, t, chain); c != nil {
			costs = append(costs, c)
		}
	}
	if redirect != nil {
		if c := w.term(ctx, domain, *redirect, chain); c != nil {
			costs = append(costs, c)
		}
	}
	return costs
}

// term counts one DNS-causing term and what it brings in.
func (w *spfWalk) term(ctx context.Context, domain string, t SPFTerm, chain []string) *SPFCost {
	if !w.lookup(chain, t.Text) {
		return nil
	}
	target := t.Domain
	if target == "" {
		target = domain
	}
	c := &SPFCost{Term: t.Text, Domain: target, Lookups: 1}
	if strings.Contains(target, "%") {
		name, ok := expandKnownMacros(target, domain, chain[0])
		if !ok {
			// A macro of the message: the name depends on the mail;
			// nothing to look up here.
			c.Problem = "the name depends on each message (a macro of RFC 7208 §7): counted as one lookup"
			return c
		}
		target, c.Domain = name, name
		t.Domain = name
	}
	switch {
	case t.Mechanism == "include" || t.Modifier == "redirect":
		w.follow(ctx, t, c, chain)
	case t.Mechanism == "a" || t.Mechanism == "exists":
		// An IPv4 client: a queries A; exists always queries A
		// (RFC 7208 §5.3, §5.7).
		addrs, err := w.dns.A(ctx, target)
		if w.dnsProblem(err, c, chain, t.Text) {
			return c
		}
		if len(addrs) == 0 {
			w.void(chain, t.Text, c)
			c.Problem = fmt.Sprintf("%s has no A record (a void lookup)", target)
		}
	case t.Mechanism == "mx":
		mxs, err := w.dns.MX(ctx, target)
		if w.dnsProblem(err, c, chain, t.Text) {
			return c
		}
		if len(mxs) == 0 {
			w.void(chain, t.Text, c)
			c.Problem = fmt.Sprintf("%s has no MX record (a void lookup)", target)
		}
		if len(mxs) > SPFMaxMXHosts {
			w.findings = append(w.findings, Finding{Severity: SeverityError, Code: "spf-mx-hosts", Name: target,
				Message: fmt.Sprintf("%s: %s has %d MX records, over %d: receivers return permerror (RFC 7208 §4.6.4)", chainText(chain, t.Text), target, len(mxs), SPFMaxMXHosts),
				Advice:  "replace mx by ip4:/ip6: networks of the hosts that send"})
		}
	}
	return c
}

// dnsProblem records a DNS failure of a term; NXDOMAIN is a void lookup.
// It reports whether the term is finished.
func (w *spfWalk) dnsProblem(err error, c *SPFCost, chain []string, term string) bool {
	switch {
	case err == nil:
		return false
	case IsNotFound(err):
		w.void(chain, term, c)
		c.Problem = fmt.Sprintf("%s does not exist (a void lookup)", c.Domain)
	default:
		c.Problem = err.Error()
		w.findings = append(w.findings, Finding{Severity: SeverityWarning, Code: "spf-dns", Name: c.Domain,
			Message: fmt.Sprintf("%s: %v; receivers would return temperror (RFC 7208 §2.6.6), and the lookups below it are not counted", chainText(chain, term), err),
			Advice:  "check again later; if it persists, the name servers of " + c.Domain + " are broken"})
	}
	return true
}

// follow reads the record an include or redirect points to and walks it.
func (w *spfWalk) follow(ctx context.Context, t SPFTerm, c *SPFCost, chain []string) {
	what := "include"
	if t.Modifier == "redirect" {
		what = "redirect"
	}
	for _, d := range chain {
		if strings.EqualFold(d, c.Domain) {
			c.Problem = "loop: " + c.Domain + " is already on the way here"
			w.findings = append(w.findings, Finding{Severity: SeverityError, Code: "spf-loop", Name: c.Domain,
				Message: fmt.Sprintf("%s makes a loop (%s): receivers run into the lookup limit and return permerror", chainText(chain, t.Text), strings.Join(append(chain, c.Domain), " -> ")),
				Advice:  "remove the " + what + " that points back"})
			return
		}
	}
	txts, err := w.dns.TXT(ctx, c.Domain)
	if w.dnsProblem(err, c, chain, t.Text) {
		if IsNotFound(err) {
			w.noRecord(chain, t, c, what)
		}
		return
	}
	if len(txts) == 0 {
		w.void(chain, t.Text, c)
	}
	spfs := SelectSPF(txts)
	switch len(spfs) {
	case 0:
		w.noRecord(chain, t, c, what)
		return
	case 1:
	default:
		c.Problem = fmt.Sprintf("%d SPF records", len(spfs))
		w.findings = append(w.findings, Finding{Severity: SeverityError, Code: "spf-multiple", Name: c.Domain,
			Message: fmt.Sprintf("%s: %s publishes %d SPF records; receivers return permerror (RFC 7208 §4.5)", chainText(chain, t.Text), c.Domain, len(spfs)),
			Advice:  "tell the owner of " + c.Domain + ", or stop using it"})
		return
	}
	c.Record = spfs[0]
	rec, fs := ParseSPF(spfs[0])
	for _, f := range fs {
		if f.Severity == SeverityError {
			f.Message = chainText(chain, t.Text) + ": " + f.Message
			f.Advice = "tell the owner of " + c.Domain + ", or stop using it"
			f.Name = c.Domain
			w.findings = append(w.findings, f)
		}
	}
	if rec == nil {
		return
	}
	before, beforeVoid := w.lookups, w.voids
	c.Includes = w.record(ctx, c.Domain, rec, append(slices.Clone(chain), c.Domain))
	c.Lookups += w.lookups - before
	c.VoidLookups += w.voids - beforeVoid
}

func (w *spfWalk) noRecord(chain []string, t SPFTerm, c *SPFCost, what string) {
	if c.Problem == "" {
		c.Problem = "no SPF record"
	}
	// RFC 7208 §5.2: include of a domain without SPF record is
	// permerror; §6.1: so is redirect.
	w.findings = append(w.findings, Finding{Severity: SeverityError, Code: "spf-" + what + "-none", Name: c.Domain,
		Message: fmt.Sprintf("%s: %s publishes no SPF record; receivers return permerror (RFC 7208 §5.2, §6.1)", chainText(chain, t.Text), c.Domain),
		Advice:  "remove the " + what + ", or fix the name"})
}

// CostSummary writes the costs of the top-level terms, costliest first:
// "include:_spf.google.com 4, include:spf.protection.outlook.com 2, mx 1".
func CostSummary(costs []*SPFCost) string {
	sorted := slices.Clone(costs)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Lookups > sorted[j].Lookups })
	parts := make([]string, len(sorted))
	for i, c := range sorted {
		parts[i] = fmt.Sprintf("%s %d", c.Term, c.Lookups)
	}
	return strings.Join(parts, ", ")
}

func quotedList(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}

// SPFAdditions are what a merged SPF record must allow besides what the
// live record allows.
type SPFAdditions struct {
	// IPs are addresses or networks (CIDR), IPv4 or IPv6.
	IPs []string `json:"ips,omitempty"`
	// Includes are domains whose SPF records to include.
	Includes []string `json:"includes,omitempty"`
}

// SPFMerge is the record MergeSPF wrote, with what it did.
type SPFMerge struct {
	Domain string `json:"domain"`
	// Live is the record published now, "" when none.
	Live string `json:"live,omitempty"`
	// Record is the merged record; Strings the same split into TXT
	// character-strings of at most dnsrecord.MaxStringOctets.
	Record  string   `json:"record"`
	Strings []string `json:"strings"`
	// Added are the terms the merge added; Duplicates the additions (or
	// repeated live terms) dropped as exact duplicates; Dropped the live
	// terms after all, which receivers never evaluate.
	Added      []string `json:"added,omitempty"`
	Duplicates []string `json:"duplicates,omitempty"`
	Dropped    []string `json:"dropped,omitempty"`
	// Lookups and Costs are the cost of the merged record (see
	// SPFAnalysis).
	Lookups  int        `json:"lookups"`
	Costs    []*SPFCost `json:"costs"`
	Findings []Finding  `json:"findings,omitempty"`
}

// SPFLimitError is a merged record that would break an SPF limit.
type SPFLimitError struct {
	Domain  string
	Record  string
	Lookups int
	Octets  int
	Costs   []*SPFCost
}

func (e *SPFLimitError) Error() string {
	if e.Lookups > SPFMaxLookups {
		return fmt.Sprintf("the merged SPF record of %s would need %d DNS lookups, over the limit of %d (RFC 7208 §4.6.4); costs: %s. "+
			"Drop includes you no longer need, replace the costliest include by the ip4:/ip6: networks it lists (flattening: you must then follow its changes), "+
			"or send from a subdomain (--mode subdomain) with its own SPF record",
			e.Domain, e.Lookups, SPFMaxLookups, CostSummary(e.Costs))
	}
	return fmt.Sprintf("the merged SPF record of %s would take %d octets with its name, over %d (RFC 7208 §3.4): "+
		"list networks instead of single addresses, drop includes you no longer need, or send from a subdomain (--mode subdomain)",
		e.Domain, e.Octets, SPFMaxRecordOctets)
}

// MergeSPF merges add into live, the SPF record domain publishes now (""
// when none): the live mechanisms in their order (those after all are
// dropped: they never match), then the added ip4:/ip6: networks and
// includes that are not already there, then the live record's all (its
// qualifier kept, ~all when there was none) or its redirect=, then its
// other modifiers. The lookups of the result are counted through DNS; a
// record over SPFMaxLookups or SPFMaxRecordOctets is an *SPFLimitError
// naming what each term costs.
func MergeSPF(ctx context.Context, r DNS, domain, live string, add SPFAdditions) (*SPFMerge, error) {
	m := &SPFMerge{Domain: domain, Live: live}
	var liveRec *SPFRecord
	if live != "" {
		rec, fs := ParseSPF(live)
		if HasErrors(fs) {
			var msgs []string
			for _, f := range fs {
				if f.Severity == SeverityError {
					msgs = append(msgs, f.Message)
				}
			}
			return nil, fmt.Errorf("the live SPF record of %s (%q) has errors, so it cannot be merged: %s; correct it first, or use --mode subdomain",
				domain, live, strings.Join(msgs, "; "))
		}
		liveRec = rec
	} else {
		liveRec = &SPFRecord{}
	}

	var mechs, tail []SPFTerm
	var final *SPFTerm
	seen := map[string]bool{}
	liveAll, hasAll := liveRec.all()
	afterAll := false
	for _, t := range liveRec.Terms {
		switch {
		case afterAll && t.Mechanism != "":
			m.Dropped = append(m.Dropped, t.Text)
		case t.Mechanism == "all":
			afterAll = true
		case t.Modifier == "redirect" && hasAll:
			// Ignored next to all (RFC 7208 §6.1).
			m.Dropped = append(m.Dropped, t.Text)
		case t.Modifier == "redirect":
			tt := t
			final = &tt
		case t.Modifier != "":
			tail = append(tail, t)
		default:
			k := spfTermKey(t)
			if seen[k] {
				m.Duplicates = append(m.Duplicates, t.Text)
				continue
			}
			seen[k] = true
			mechs = append(mechs, t)
		}
	}
	switch {
	case hasAll:
		final = &liveAll
	case final == nil:
		final = &SPFTerm{Text: "~all", Qualifier: "~", Mechanism: "all"}
	}

	var additions []string
	for _, ip := range add.IPs {
		term, err := spfNetworkTerm(ip)
		if err != nil {
			return nil, err
		}
		additions = append(additions, term)
	}
	for _, inc := range add.Includes {
		inc = strings.TrimSpace(inc)
		inc = strings.TrimPrefix(strings.TrimPrefix(inc, "+"), "include:")
		if err := validDomainSpec(inc, false); err != nil {
			return nil, fmt.Errorf("SPF include %q: %v", inc, err)
		}
		additions = append(additions, "include:"+inc)
	}
	for _, text := range additions {
		t, err := parseSPFMechanism(text)
		if err != nil {
			return nil, fmt.Errorf("SPF addition: %v", err)
		}
		k := spfTermKey(t)
		if seen[k] {
			m.Duplicates = append(m.Duplicates, text)
			continue
		}
		seen[k] = true
		mechs = append(mechs, t)
		m.Added = append(m.Added, text)
	}

	merged := &SPFRecord{Terms: append(append(mechs, *final), tail...)}
	m.Record = merged.String()
	m.Strings = dnsrecord.Split(m.Record)
	a := AnalyzeSPFRecord(ctx, r, domain, m.Record)
	m.Lookups, m.Costs, m.Findings = a.Lookups, a.Costs, a.Findings
	if a.Lookups > SPFMaxLookups {
		return m, &SPFLimitError{Domain: domain, Record: m.Record, Lookups: a.Lookups, Costs: a.Costs}
	}
	if n := len(domain) + len(m.Record); n > SPFMaxRecordOctets {
		return m, &SPFLimitError{Domain: domain, Record: m.Record, Lookups: a.Lookups, Octets: n, Costs: a.Costs}
	}
	return m, nil
}

// spfNetworkTerm writes an address or network as ip4:/ip6:.
func spfNetworkTerm(s string) (string, error) {
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

// spfTermKey is what makes two terms exact duplicates: the same qualifier
// ("+" written or not), mechanism, and argument (networks compared as
// networks, domains without case or final dot).
func spfTermKey(t SPFTerm) string {
	switch t.Mechanism {
	case "ip4", "ip6":
		return t.Qualifier + t.Mechanism + ":" + t.Prefix.String()
	}
	text := strings.ToLower(strings.TrimLeft(t.Text, "+-~?"))
	if t.Domain != "" {
		text = strings.Replace(text, strings.ToLower(t.Domain), strings.TrimSuffix(strings.ToLower(t.Domain), "."), 1)
	}
	return t.Qualifier + text
}
