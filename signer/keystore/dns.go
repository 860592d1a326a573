package keystore

import (
	"strings"

	"github.com/dmarcd/dmarcd"
)

// BIND is the key's TXT record in zone file form, its value cut into
// strings of at most 255 characters (RFC 1035 §3.3, RFC 6376 §3.6.2.2):
//
//	s1._domainkey.example.com. IN TXT "v=DKIM1; k=rsa; p=MIIB..." "...IDAQAB"
//
// A revoked key is published with an empty p= (RFC 6376 §3.6.1).
func BIND(k dmarcd.Key) string {
	var b strings.Builder
	b.WriteString(k.RecordName())
	b.WriteString(". IN TXT")
	for _, part := range dmarcd.SplitTXT(k.TXT()) {
		b.WriteString(" \"")
		b.WriteString(part) // base64 and tags: no quote or backslash to escape
		b.WriteString("\"")
	}
	return b.String()
}

// ZoneTXT joins the quoted strings of a TXT record in zone file form, as
// opendkim-genkey writes SEL.txt:
//
//	mail._domainkey	IN	TXT	( "v=DKIM1; h=sha256; k=rsa; "
//		  "p=MIIB..." )  ; ----- DKIM key mail for example.com
func ZoneTXT(zone string) string {
	var b strings.Builder
	in := false
	for i := 0; i < len(zone); i++ {
		c := zone[i]
		switch {
		case c == '"':
			in = !in
		case in && c == '\\' && i+1 < len(zone):
			i++
			b.WriteByte(zone[i])
		case in:
			b.WriteByte(c)
		case c == ';':
			// a comment outside quotes: skip to the end of the line
			for i < len(zone) && zone[i] != '\n' {
				i++
			}
		}
	}
	return b.String()
}
