package dnsrecord_test

import (
	"errors"
	"fmt"

	"github.com/dmarcd/dmarcd/internal/dnsrecord"
)

func ExampleParseDMARC() {
	rec, findings, err := dnsrecord.ParseDMARC("v=DMARC1; p=quarantine; pct=10; rua=mailto:dmarc@example.com; ri=3600")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(rec.Step())
	for _, f := range findings {
		fmt.Println(f.Severity, f.Code)
	}
	// Output:
	// quarantine 10%
	// warning dmarc-removed-ri
	// warning dmarc-pct-without-t
}

func ExampleParseKey() {
	for _, txt := range []string{
		"v=DKIM1; k=rsa; p=",
		"v=DKIM1; k=rsa; k=ed25519; p=",
		"v=DKIM1; k=dsa; p=",
	} {
		rec, err := dnsrecord.ParseKey(txt)
		switch {
		case errors.Is(err, dnsrecord.ErrNotKeyRecord):
			fmt.Println("not a key record:", err)
		case errors.Is(err, dnsrecord.ErrUnusableKey):
			fmt.Println("unusable:", err)
		case rec.Revoked:
			fmt.Println("revoked", rec.KeyType, "key")
		}
	}
	// Output:
	// revoked rsa key
	// not a key record: the tag k appears twice, which makes the record invalid (RFC 6376 §3.2)
	// unusable: key type k=dsa is not rsa or ed25519: verifiers ignore the record (RFC 6376 §3.6.1, §6.1.2; RFC 8463 §4)
}

func ExampleQuote() {
	fmt.Println(dnsrecord.Quote(`v=spf1 exp=%{d}._exp "quoted" -all`))
	// Output:
	// "v=spf1 exp=%{d}._exp \"quoted\" -all"
}
