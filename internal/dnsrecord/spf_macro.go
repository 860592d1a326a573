package dnsrecord

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

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

// ExpandMacros expands the macros of a domain-spec whose values do not
// depend on the message (RFC 7208 §7.2): %{d}, the domain whose record is
// evaluated, and %{o}, the domain of the envelope sender, which for the
// records of a domain is that domain; with their transformers (%{d2},
// %{dr}, %{d1r-}...) and the escapes %%, %_ and %-. It reports false when
// the spec holds a macro of the message (%{i}, %{s}, %{l}, %{h}, %{p},
// %{v}): its name is then not known before mail arrives.
func ExpandMacros(spec, d, o string) (string, bool) {
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
	for i < len(rest) && isDigit(rest[i]) {
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
	for i < len(rest) && isDigit(rest[i]) {
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

// CheckDomainSpec checks domain-spec = macro-string domain-end, where
// domain-end is "." toplabel ["."] or a macro-expand (RFC 7208 §7.1): the
// argument of include, a, mx, ptr and exists, and the value of redirect
// and exp. The macro letters of explanation text (c, r, t) are refused.
func CheckDomainSpec(s string) error {
	if s == "" {
		return errors.New("empty domain")
	}
	toks, err := macroTokens(s, false)
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
		case isDigit(l[i]):
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
