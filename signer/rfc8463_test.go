package signer

import (
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"regexp"
	"strings"
	"testing"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/signer/keystore"
)

// The example of RFC 8463 Appendix A: the Ed25519 key (A.1), the DNS
// records (A.2) and the message signed with both keys, relaxed/relaxed
// (A.3). The RFC's own text could not be fetched here; the values were taken
// from several independent implementations' copies of Appendix A (OpenDKIM's
// and dkimpy's test data among them), and the tests below check them against
// each other: the seed gives the published public key, both signatures
// verify with go-msgauth and with dkimpy, and signing again reproduces the
// RFC's bh= and (Ed25519 is deterministic) its b=.
const (
	rfc8463Seed       = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A="
	rfc8463Ed25519Pub = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
	rfc8463RSARecord  = "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB"

	rfc8463Ed25519Sig = "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n" +
		" d=football.example.com; i=@football.example.com;\r\n" +
		" q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n" +
		" subject : date : message-id : from : subject : date;\r\n" +
		" bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n" +
		" b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus\r\n" +
		" Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==\r\n"
	rfc8463RSASig = "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n" +
		" d=football.example.com; i=@football.example.com;\r\n" +
		" q=dns/txt; s=test; t=1528637909; h=from : to : subject :\r\n" +
		" date : message-id : from : subject : date;\r\n" +
		" bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n" +
		" b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3\r\n" +
		" DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz\r\n" +
		" dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=\r\n"
	rfc8463Message = "From: Joe SixPack <joe@football.example.com>\r\n" +
		"To: Suzie Q <suzie@shopping.example.net>\r\n" +
		"Subject: Is dinner ready?\r\n" +
		"Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n" +
		"Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n" +
		"\r\n" +
		"Hi.\r\n" +
		"\r\n" +
		"We lost the game.  Are you hungry yet?\r\n" +
		"\r\n" +
		"Joe.\r\n"
)

var rfc8463Records = map[string]string{
	"brisbane._domainkey.football.example.com": "v=DKIM1; k=ed25519; p=" + rfc8463Ed25519Pub,
	"test._domainkey.football.example.com":     rfc8463RSARecord,
}

func TestRFC8463Vectors(t *testing.T) {
	// A.1: the seed is the private key of the published public key; the
	// key store reads it (as dkimpy writes it) and describes it as A.2 does.
	priv, err := keystore.ParsePrivateKey([]byte(rfc8463Seed))
	if err != nil {
		t.Fatal(err)
	}
	if got := base64.StdEncoding.EncodeToString(priv.Public().(ed25519.PublicKey)); got != rfc8463Ed25519Pub {
		t.Fatalf("public key of the A.1 seed: %s, want %s", got, rfc8463Ed25519Pub)
	}
	k := dmarcd.Key{Domain: "football.example.com", Selector: "brisbane", Algorithm: dmarcd.AlgorithmEd25519, PublicKey: priv.Public().(ed25519.PublicKey), State: dmarcd.KeyCurrent}
	if got, want := k.TXT(), rfc8463Records[k.RecordName()]; got != want {
		t.Errorf("TXT %q, want A.2's %q", got, want)
	}

	// A.3: both signatures verify with both implementations.
	msg := []byte(rfc8463Ed25519Sig + rfc8463RSASig + rfc8463Message)
	for i, err := range goVerify(t, msg, rfc8463Records) {
		if err != nil {
			t.Errorf("go-msgauth: A.3 signature %d: %v", i, err)
		}
	}
	needDKIMPy(t)
	res := dkimpyVerify(t, msg, rfc8463Records)
	if len(res) != 2 || !res[0] || !res[1] {
		t.Errorf("dkimpy: A.3 signatures: %v, want [true true]", res)
	}
	bad := []byte(strings.Replace(string(msg), "hungry yet", "hungry now", 1))
	for i, err := range goVerify(t, bad, rfc8463Records) {
		if err == nil {
			t.Errorf("go-msgauth: A.3 signature %d verifies a changed body", i)
		}
	}
	if res := dkimpyVerify(t, bad, rfc8463Records); res[0] || res[1] {
		t.Errorf("dkimpy: A.3 signatures verify a changed body: %v", res)
	}
}

// TestRFC8463Reproduce signs the A.3 message again with the A.1 key, as
// RFC 8463 §3 says (Ed25519 over the SHA-256 hash of the canonical header),
// and gets the RFC's bh= and b= values exactly.
func TestRFC8463Reproduce(t *testing.T) {
	priv, err := keystore.ParsePrivateKey([]byte(rfc8463Seed))
	if err != nil {
		t.Fatal(err)
	}
	hdr, body, _ := strings.Cut(rfc8463Message, "\r\n\r\n")
	bh := sha256.Sum256([]byte(relaxedBody(body)))
	if got, want := base64.StdEncoding.EncodeToString(bh[:]), "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8="; got != want {
		t.Fatalf("bh=%s, want %s", got, want)
	}
	fields := map[string][]string{}
	for _, f := range parseHeaderRaw(hdr) {
		name, _, _ := strings.Cut(f, ":")
		fields[strings.ToLower(strings.TrimSpace(name))] = append(fields[strings.ToLower(strings.TrimSpace(name))], f)
	}
	// h= from : to : subject : date : message-id : from : subject : date;
	// the second from, subject and date are absent and hash nothing.
	var data strings.Builder
	used := map[string]int{}
	for _, name := range []string{"from", "to", "subject", "date", "message-id", "from", "subject", "date"} {
		// RFC 6376 §5.4.2: the instances are taken from the bottom up.
		list := fields[name]
		if n := used[name]; n < len(list) {
			data.WriteString(relaxedHeader(list[len(list)-1-n]) + "\r\n")
		}
		used[name]++
	}
	sigField := strings.TrimSuffix(rfc8463Ed25519Sig, "\r\n")
	sigField = regexp.MustCompile(`b=[^;]*$`).ReplaceAllString(sigField, "b=") // b= empty, RFC 6376 §3.7
	data.WriteString(relaxedHeader(sigField))                                  // without a trailing CRLF
	hash := sha256.Sum256([]byte(data.String()))
	sig, err := priv.Sign(nil, hash[:], crypto.Hash(0))
	if err != nil {
		t.Fatal(err)
	}
	want := "/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11BusFa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw=="
	if got := base64.StdEncoding.EncodeToString(sig); got != want {
		t.Fatalf("b=%s\nwant %s", got, want)
	}
}

// parseHeaderRaw splits a header block into its fields as written.
func parseHeaderRaw(hdr string) []string {
	var out []string
	for _, line := range strings.Split(hdr, "\r\n") {
		if len(out) > 0 && (strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")) {
			out[len(out)-1] += "\r\n" + line
			continue
		}
		out = append(out, line)
	}
	return out
}

var wsp = regexp.MustCompile(`[ \t]+`)

// relaxedHeader is the "relaxed" header canonicalization of RFC 6376
// §3.4.2, written here from the RFC so as not to test go-msgauth with itself.
func relaxedHeader(field string) string {
	name, value, _ := strings.Cut(field, ":")
	value = strings.ReplaceAll(value, "\r\n", "")
	value = strings.TrimSpace(wsp.ReplaceAllString(value, " "))
	return strings.ToLower(strings.TrimSpace(name)) + ":" + value
}

// relaxedBody is the "relaxed" body canonicalization of RFC 6376 §3.4.4.
func relaxedBody(body string) string {
	lines := strings.Split(body, "\r\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(wsp.ReplaceAllString(l, " "), " ")
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) == 0 {
		return ""
	}
	return strings.Join(lines, "\r\n") + "\r\n"
}
