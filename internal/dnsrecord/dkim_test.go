package dnsrecord

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"

	"github.com/dmarcd/dmarcd"
)

// testKeys are the public keys of the tests, base64 as in p=, made once.
var testKeys = sync.OnceValue(func() map[string]string {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	pkix, err := x509.MarshalPKIXPublicKey(&rk.PublicKey)
	if err != nil {
		panic(err)
	}
	// An RSA modulus of 512 bits: no factors needed to publish it, and Go
	// no longer generates such keys.
	n := new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), 511), big.NewInt(12345))
	small, err := x509.MarshalPKIXPublicKey(&rsa.PublicKey{N: n, E: 65537})
	if err != nil {
		panic(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	ec, err := x509.MarshalPKIXPublicKey(&ek.PublicKey)
	if err != nil {
		panic(err)
	}
	ed, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	b64 := base64.StdEncoding.EncodeToString
	return map[string]string{
		"rsa":     b64(pkix),
		"pkcs1":   b64(x509.MarshalPKCS1PublicKey(&rk.PublicKey)),
		"rsa512":  b64(small),
		"ecdsa":   b64(ec),
		"ed25519": b64(ed),
	}
})

// keyText replaces RSA, PKCS1, RSA512, ECDSA and ED25519 in a record by
// the test keys.
func keyText(txt string) string {
	k := testKeys()
	return strings.NewReplacer("RSA512", k["rsa512"], "RSA", k["rsa"], "PKCS1", k["pkcs1"], "ECDSA", k["ecdsa"], "ED25519", k["ed25519"]).Replace(txt)
}

func TestParseKey(t *testing.T) {
	valid := []struct {
		txt     string
		keyType string
		bits    int
		revoked bool
	}{
		{"v=DKIM1; k=rsa; p=RSA", "rsa", 2048, false},
		{"v=DKIM1; k=rsa; p=PKCS1", "rsa", 2048, false}, // RSAPublicKey, as RFC 6376 §3.6.1 says
		{"p=RSA", "rsa", 2048, false},                   // k= defaults to rsa, v= is optional
		{"v=DKIM1; k=ed25519; p=ED25519", "ed25519", 256, false},
		{"v=DKIM1; p=", "rsa", 0, true},
		{"v=DKIM1; k=ed25519; p=", "ed25519", 0, true},
		{"v=DKIM1;k=rsa;p=RSA;", "rsa", 2048, false},        // one final ";" is allowed
		{"v=DKIM1; k=rsa; p=RSA; ", "rsa", 2048, false},     // and white space after it, as verifiers take it
		{" v = DKIM1 ;\tk=rsa ; p=RSA", "rsa", 2048, false}, // white space around tags
		{"v=DKIM1; h=sha1:sha256; s=email; t=y:s; n=a note; x=whatever; p=RSA", "rsa", 2048, false},
		{"v=DKIM1; h=sha256; s=*; p=RSA", "rsa", 2048, false},
		{"v=DKIM1; K=foo; p=RSA", "rsa", 2048, false}, // tags are case-sensitive: K= is unknown, ignored
	}
	for _, c := range valid {
		txt := keyText(c.txt)
		r, err := ParseKey(txt)
		if err != nil || r.KeyType != c.keyType || r.Bits != c.bits || r.Revoked != c.revoked || (r.PublicKey == nil) != c.revoked {
			t.Errorf("ParseKey(%.60q) = %+v, %v; want k=%s, %d bits, revoked %v", txt, r, err, c.keyType, c.bits, c.revoked)
		}
	}
	// Folding white space anywhere in p= (RFC 6376 §3.6.1 base64string).
	p := testKeys()["rsa"]
	folded := "v=DKIM1; p=" + p[:40] + " \t" + p[40:100] + "\r\n " + p[100:]
	if r, err := ParseKey(folded); err != nil || r.Bits != 2048 {
		t.Errorf("folded p=: %v", err)
	}
	if r, _ := ParseKey(keyText("v=DKIM1; t=y:s; h=sha256; s=email; n=x; p=RSA")); !r.Testing() || strings.Join(r.Flags, ",") != "y,s" || r.HashAlgorithms[0] != "sha256" || r.ServiceTypes[0] != "email" || r.Notes != "x" {
		t.Errorf("t=, h=, s=, n=: %+v", r)
	}

	invalid := []struct {
		txt  string
		kind error
		says string
	}{
		// The tag-list (RFC 6376 §3.2).
		{"", ErrNotKeyRecord, "empty"},
		{"v=DKIM1; junk; p=RSA", ErrNotKeyRecord, "tag=value"},
		{"v=DKIM1; p=RSA; p=RSA", ErrNotKeyRecord, "twice"},
		// The old key-advice parser took the last k=; the check refused it.
		{"v=DKIM1; k=rsa; k=ed25519; p=ED25519", ErrNotKeyRecord, "the tag k appears twice"},
		// The old key-advice parser read a revoked key, then a key.
		{"v=DKIM1; p=; p=RSA", ErrNotKeyRecord, "the tag p appears twice"},
		// A tag-list starts with a tag-spec: a leading ";" is an empty one.
		// The old key-advice parser refused it only when v= followed; the
		// check skipped it.
		{"; v=DKIM1; p=RSA", ErrNotKeyRecord, "tag-spec 1 is empty"},
		{"; p=RSA", ErrNotKeyRecord, "tag-spec 1 is empty"},
		{"v=DKIM1;; p=RSA", ErrNotKeyRecord, "tag-spec 2 is empty"},
		{"v=DKIM1; 1k=rsa; p=RSA", ErrNotKeyRecord, "not a tag name"},
		{"v=DKIM1; n=caf\u00e9; p=RSA", ErrNotKeyRecord, "may not hold"},
		// v= (RFC 6376 §3.6.1).
		{"k=rsa; v=DKIM1; p=RSA", ErrNotKeyRecord, "first tag"},
		{"v=DKIM2; p=RSA", ErrNotKeyRecord, "first tag and be DKIM1"},
		{"v=spf1 -all", ErrNotKeyRecord, "first tag and be DKIM1"},
		// p= (RFC 6376 §3.6.1).
		{"v=DKIM1; k=rsa", ErrNotKeyRecord, "no p="},
		{"v=DKIM1; p=!!!", ErrUnusableKey, "base64"},
		{"v=DKIM1; k=rsa; p=" + strings.Repeat("A", 40), ErrUnusableKey, "not an RSA public key"},
		{"v=DKIM1; k=rsa; p=ECDSA", ErrUnusableKey, "not RSA"},
		{"v=DKIM1; k=rsa; p=RSA512", ErrUnusableKey, "512 bits; verifiers refuse keys under 1024"},
		{"v=DKIM1; k=ed25519; p=AAAA", ErrUnusableKey, "32 octets"},
		{"v=DKIM1; k=ed25519; p=RSA", ErrUnusableKey, "32 octets"},
		// k= (RFC 6376 §3.6.1, §6.1.2; RFC 8463): the old key-advice
		// parser took any key type and compared keys.
		{"v=DKIM1; k=foo; p=RSA", ErrUnusableKey, "k=foo is not rsa or ed25519"},
		{"v=DKIM1; k=dsa; p=", ErrUnusableKey, "not rsa or ed25519"},
		{"v=DKIM1; k=RSA; p=RSA", ErrUnusableKey, "not rsa or ed25519"},
		// h= and s= that exclude mail signatures.
		{"v=DKIM1; h=sha1; p=RSA", ErrUnusableKey, "does not allow sha256"},
		{"v=DKIM1; s=tlsrpt; p=RSA", ErrUnusableKey, "neither email nor *"},
	}
	for _, c := range invalid {
		txt := keyText(c.txt)
		r, err := ParseKey(txt)
		if err == nil || !errors.Is(err, c.kind) || !strings.Contains(err.Error(), c.says) || r != nil {
			t.Errorf("ParseKey(%.60q) = %+v, %v; want %v saying %q", txt, r, err, c.kind, c.says)
		}
	}
}

func TestKeyRecordMatches(t *testing.T) {
	k := dmarcd.Key{Domain: "example.com", Selector: "s1", Algorithm: dmarcd.AlgorithmEd25519, State: dmarcd.KeyCurrent}
	k.PublicKey, _ = base64.StdEncoding.DecodeString(testKeys()["ed25519"])
	r, err := ParseKey(k.TXT())
	if err != nil || !r.Matches(k) {
		t.Fatalf("own record: %v %+v", err, r)
	}
	k.State = dmarcd.KeyRevoked
	if k.TXT() != "v=DKIM1; k=ed25519; p=" {
		t.Fatalf("revoked: %q", k.TXT())
	}
	if r, err := ParseKey(k.TXT()); err != nil || !r.Revoked || r.Matches(k) {
		t.Fatalf("revoked record: %v %+v", err, r)
	}
	k.State = dmarcd.KeyCurrent
	if r, err := ParseKey(keyText("v=DKIM1; k=rsa; p=RSA")); err != nil || r.Matches(k) {
		t.Fatalf("another key matches: %v", err)
	}
}

func FuzzParseKey(f *testing.F) {
	for _, s := range []string{
		"v=DKIM1; k=rsa; p=", "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", "k=rsa; t=y:s; p=MIIBIjAN",
		"; v=DKIM1; p=", "v=DKIM1; p=; p=AAAA", "k=rsa; k=ed25519; p=", "k=foo; p=", "v=DKIM1; h=sha1:sha256; s=email; n=x; p=",
		keyText("v=DKIM1; p=RSA"), keyText("p=PKCS1"),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, txt string) {
		r, err := ParseKey(txt)
		if err != nil {
			if r != nil || !errors.Is(err, ErrNotKeyRecord) && !errors.Is(err, ErrUnusableKey) {
				t.Fatalf("%q: %+v, %v", txt, r, err)
			}
			return
		}
		switch {
		case r.KeyType != KeyTypeRSA && r.KeyType != KeyTypeEd25519:
			t.Fatalf("%q: k=%s accepted", txt, r.KeyType)
		case r.Revoked != (r.PublicKey == nil):
			t.Fatalf("%q: revoked %v with a key of %d octets", txt, r.Revoked, len(r.PublicKey))
		case !r.Revoked && r.KeyType == KeyTypeRSA && r.Bits < MinRSABits:
			t.Fatalf("%q: an RSA key of %d bits accepted", txt, r.Bits)
		case !r.Revoked && r.KeyType == KeyTypeEd25519 && len(r.PublicKey) != ed25519.PublicKeySize:
			t.Fatalf("%q: an Ed25519 key of %d octets accepted", txt, len(r.PublicKey))
		}
		// The record dmarcd writes for the key reads back to the same key.
		again, err := ParseKey("v=DKIM1; k=" + r.KeyType + "; p=" + base64.StdEncoding.EncodeToString(r.PublicKey))
		if err != nil || again.KeyType != r.KeyType || again.Revoked != r.Revoked || string(again.PublicKey) != string(r.PublicKey) || again.Bits != r.Bits {
			t.Fatalf("%q: written back, %+v, %v", txt, again, err)
		}
	})
}
