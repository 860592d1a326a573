package keystore

import (
	"strings"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/internal/dnsrecord"
)

// BIND is the key's TXT record in zone file form, its value cut into
// strings of at most 255 characters (RFC 1035 §3.3, RFC 6376 §3.6.2.2) by
// dnsrecord.Quote:
//
//	s1._domainkey.example.com. IN TXT "v=DKIM1; k=rsa; p=MIIB..." "...IDAQAB"
//
// A revoked key is published with an empty p= (RFC 6376 §3.6.1).
func BIND(k dmarcd.Key) string {
	return k.RecordName() + ". IN TXT " + dnsrecord.Quote(k.TXT())
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
