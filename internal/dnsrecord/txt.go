package dnsrecord

import (
	"fmt"
	"strings"
)

// MaxStringOctets is the longest character-string of a TXT record: one
// length octet, so at most 255 octets (RFC 1035 §3.3, §3.3.14). A longer
// value is published as several strings, which receivers join without a
// separator (RFC 7208 §3.3 for SPF, RFC 6376 §3.6.2.2 for DKIM; DMARC
// receivers do the same).
const MaxStringOctets = 255

// splitSpaceAfter: Split cuts after a space only when the space lies past
// this offset of the chunk, so that a space near the start of a long token
// (the "p=" of a DKIM key) does not leave a short string.
const splitSpaceAfter = MaxStringOctets / 2

// Split cuts a TXT value into character-strings of at most MaxStringOctets
// octets. It cuts after a space when one is near the end of the chunk, so
// that an SPF term stays in one string and the space ends its string; the
// strings join, without separator, back into value (RFC 7208 §3.3). An
// empty value is one empty string.
func Split(value string) []string {
	var out []string
	for len(value) > MaxStringOctets {
		cut := MaxStringOctets
		if i := strings.LastIndexByte(value[:MaxStringOctets], ' '); i > splitSpaceAfter {
			cut = i + 1
		}
		out = append(out, value[:cut])
		value = value[cut:]
	}
	return append(out, value)
}

// Quote writes a TXT value as it goes in a zone file: the strings of Split,
// each in double quotes, separated by a space (RFC 1035 §5.1). A quote or a
// backslash is escaped with a backslash, an octet outside printable ASCII
// as \DDD, its decimal value; the 255-octet limit counts the octets, not
// their escapes.
func Quote(value string) string {
	var b strings.Builder
	for i, s := range Split(value) {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte('"')
		for j := 0; j < len(s); j++ {
			switch c := s[j]; {
			case c == '"' || c == '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case c < 0x20 || c > 0x7e:
				fmt.Fprintf(&b, "\\%03d", c)
			default:
				b.WriteByte(c)
			}
		}
		b.WriteByte('"')
	}
	return b.String()
}
