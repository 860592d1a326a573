package dnsrecord

import (
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestSplit(t *testing.T) {
	long := "v=spf1 " + strings.Repeat("ip4:192.0.2.123 ", 30) + "~all"
	cases := []struct {
		value string
		sizes []int
	}{
		{"", []int{0}},
		{"short", []int{5}},
		{strings.Repeat("x", 255), []int{255}},
		{strings.Repeat("x", 256), []int{255, 1}},
		{strings.Repeat("A", 600), []int{255, 255, 90}},
		// A space in the first half of the chunk is not a cut: a DKIM
		// record cuts at 255 octets.
		{"v=DKIM1; k=rsa; p=" + strings.Repeat("A", 400), []int{255, 163}},
		// SPF terms stay whole; the space ends its string.
		{long, []int{247, 244}},
	}
	for _, c := range cases {
		parts := Split(c.value)
		var sizes []int
		for _, p := range parts {
			sizes = append(sizes, len(p))
		}
		if strings.Join(parts, "") != c.value || len(sizes) != len(c.sizes) {
			t.Errorf("Split(%.20q...) = sizes %v; want %v", c.value, sizes, c.sizes)
			continue
		}
		for i := range sizes {
			if sizes[i] != c.sizes[i] {
				t.Errorf("Split(%.20q...) = sizes %v; want %v", c.value, sizes, c.sizes)
				break
			}
		}
	}
	if parts := Split(long); !strings.HasSuffix(parts[0], " ") || !strings.HasPrefix(parts[1], "ip4:") {
		t.Errorf("the SPF record is not cut after a space: %q", parts[:2])
	}
}

func TestQuote(t *testing.T) {
	for value, want := range map[string]string{
		"":                                `""`,
		"v=DMARC1; p=none":                `"v=DMARC1; p=none"`,
		`say "hi" \o/`:                    `"say \"hi\" \\o/"`,
		"tab\there\x00\xff":               `"tab\009here\000\255"`,
		strings.Repeat("x", 256):          `"` + strings.Repeat("x", 255) + `" "x"`,
		strings.Repeat("\"", 255) + "end": `"` + strings.Repeat(`\"`, 255) + `" "end"`,
	} {
		if got := Quote(value); got != want {
			t.Errorf("Quote(%.20q...) = %.40s...; want %.40s...", value, got, want)
		}
		if got, err := zoneTXT(Quote(value)); err != nil || got != value {
			t.Errorf("Quote(%.20q...) reads back as %.20q..., %v", value, got, err)
		}
	}
}

// zoneTXT reads quoted character-strings with the zone file parser of
// miekg/dns and returns their octets joined, as a receiver joins them.
func zoneTXT(quoted string) (string, error) {
	const owner = "example.com."
	rr, err := dns.NewRR(owner + " 300 IN TXT " + quoted)
	if err != nil {
		return "", err
	}
	buf := make([]byte, dns.Len(rr)+dns.MaxMsgSize)
	off, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		return "", err
	}
	// The owner name packs to len(owner)+1 octets, then TYPE, CLASS, TTL
	// and RDLENGTH take 10, then come the strings, each a length octet and
	// that many octets (RFC 1035 §3.2.1, §3.3.14).
	rdata := buf[len(owner)+1+10 : off]
	var b strings.Builder
	for len(rdata) > 0 {
		n := int(rdata[0])
		b.Write(rdata[1 : 1+n])
		rdata = rdata[1+n:]
	}
	return b.String(), nil
}

func FuzzSplit(f *testing.F) {
	for _, s := range []string{"", "v=spf1 -all", strings.Repeat("ip4:192.0.2.1 ", 40), "say \"hi\" \\ \x00\xff", strings.Repeat("x", 511)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		parts := Split(value)
		if strings.Join(parts, "") != value {
			t.Fatalf("%q: parts %q do not join into it", value, parts)
		}
		for _, p := range parts {
			if len(p) > MaxStringOctets || len(p) == 0 && len(parts) > 1 {
				t.Fatalf("%q: a string of %d octets", value, len(p))
			}
		}
		// A TXT record holds at most 65535 octets of RDATA.
		if len(value)+len(parts) > dns.MaxMsgSize {
			return
		}
		got, err := zoneTXT(Quote(value))
		if err != nil || got != value {
			t.Fatalf("%q: Quote %s reads back as %q, %v", value, Quote(value), got, err)
		}
	})
}
