package dnsrecord

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dmarcd/dmarcd"
)

// Values of the tags of a DKIM key record (RFC 6376 §3.6.1, RFC 8463 §4).
const (
	// DKIMVersion is the only v= a key record may carry.
	DKIMVersion = "DKIM1"
	// KeyTypeRSA is k=rsa, the default key type.
	KeyTypeRSA = "rsa"
	// KeyTypeEd25519 is k=ed25519 (RFC 8463 §4).
	KeyTypeEd25519 = "ed25519"
	// KeyFlagTesting is t=y: the domain is testing DKIM.
	KeyFlagTesting = "y"
	// KeyFlagStrict is t=s: the i= of a signature must be in d= itself,
	// not a subdomain.
	KeyFlagStrict = "s"
	// hashSHA256 is the hash of both signing algorithms in use: rsa-sha256
	// and ed25519-sha256 (RFC 8301 §3.1 forbids sha1).
	hashSHA256 = "sha256"
	// serviceEmail and serviceAll are the service types (s=) under which
	// a key verifies mail.
	serviceEmail = "email"
	serviceAll   = "*"
)

// MinRSABits is the smallest RSA key verifiers accept: signatures with a
// shorter key are not valid (RFC 8301 §3.2).
const MinRSABits = 1024

// KeyRecord is a DKIM key record, the TXT record at
// SELECTOR._domainkey.DOMAIN (RFC 6376 §3.6.1).
type KeyRecord struct {
	// Version is v=: "DKIM1", or "" when the record has no v=.
	Version string
	// KeyType is k=: KeyTypeRSA (also when absent) or KeyTypeEd25519.
	KeyType string
	// PublicKey is p= decoded: a DER SubjectPublicKeyInfo or RSAPublicKey
	// for RSA, the raw 32 octets for Ed25519. Nil when Revoked.
	PublicKey []byte
	// Revoked says p= is empty: the key was revoked, and signatures with
	// it fail (RFC 6376 §3.6.1).
	Revoked bool
	// Bits is the size of the RSA modulus; 256 for Ed25519; 0 when
	// Revoked.
	Bits int
	// Flags are the t= flags (KeyFlagTesting, KeyFlagStrict and unknown
	// ones, which verifiers ignore).
	Flags []string
	// HashAlgorithms are h=, nil when absent (all hashes allowed).
	HashAlgorithms []string
	// ServiceTypes are s=, nil when absent ("*", all services).
	ServiceTypes []string
	// Notes is n=, for people.
	Notes string
}

// Testing says whether the record carries t=y.
func (r *KeyRecord) Testing() bool { return slices.Contains(r.Flags, KeyFlagTesting) }

// Matches says whether the record publishes k's public key, not revoked.
func (r *KeyRecord) Matches(k dmarcd.Key) bool {
	return !r.Revoked && r.KeyType == k.KeyType() && bytes.Equal(r.PublicKey, k.PublicKey)
}

// The kinds of ParseKey errors; errors.Is tells them apart.
var (
	// ErrNotKeyRecord: the text is not a DKIM key record: its tag-list
	// is invalid, its v= is not DKIM1 or not first, or it has no p=.
	ErrNotKeyRecord = errors.New("not a DKIM key record")
	// ErrUnusableKey: a DKIM key record whose key verifiers cannot use:
	// an unknown key type, a p= that is not a key of its type, an RSA key
	// under MinRSABits, or h= or s= that exclude DKIM signatures of mail.
	ErrUnusableKey = errors.New("unusable DKIM key")
)

// keyError is a ParseKey error: its message says what is wrong and cites
// the rule; it wraps ErrNotKeyRecord or ErrUnusableKey without saying so.
type keyError struct {
	kind error
	msg  string
}

func (e *keyError) Error() string { return e.msg }
func (e *keyError) Unwrap() error { return e.kind }

func notKeyRecord(format string, args ...any) error {
	return &keyError{ErrNotKeyRecord, fmt.Sprintf(format, args...)}
}

func unusableKey(format string, args ...any) error {
	return &keyError{ErrUnusableKey, fmt.Sprintf(format, args...)}
}

// ParseKey reads a DKIM key record, the strings of its TXT record joined
// (RFC 6376 §3.6.2.2). It is as strict as a verifier must be:
//
//   - the record is a tag-list (RFC 6376 §3.2): a duplicated tag or an
//     empty tag-spec (a leading ";") makes it invalid;
//   - v=, if present, is the first tag and is DKIM1 (RFC 6376 §3.6.1);
//   - k= is rsa (the default) or ed25519 (RFC 8463 §4); verifiers ignore
//     a record of another type (RFC 6376 §6.1.2), so it is unusable;
//   - p= is required; empty, the key is revoked; otherwise base64, with
//     white space allowed anywhere: for RSA a SubjectPublicKeyInfo or an
//     RSAPublicKey of at least MinRSABits (RFC 8301 §3.2), for Ed25519
//     exactly 32 octets (RFC 8463 §4.2);
//   - h=, when present, allows sha256, and s=, when present, holds email
//     or *: otherwise no DKIM signature of mail verifies with the key
//     (RFC 6376 §3.6.1, §6.1.2; RFC 8301 §3.1);
//   - t= flags and n= are kept, and unknown tags are ignored (§3.2).
//
// The error wraps ErrNotKeyRecord or ErrUnusableKey.
func ParseKey(txt string) (*KeyRecord, error) {
	tags, err := ParseTags(txt)
	if err != nil {
		return nil, &keyError{ErrNotKeyRecord, err.Error()}
	}
	r := &KeyRecord{KeyType: KeyTypeRSA}
	p, hasP := "", false
	for i, t := range tags {
		switch t.Name {
		case "v":
			// Records starting with another v= must be discarded
			// (RFC 6376 §3.6.1).
			if i != 0 || t.Value != DKIMVersion {
				return nil, notKeyRecord("v= must be the first tag and be DKIM1, not v=%s (RFC 6376 §3.6.1)", t.Value)
			}
			r.Version = t.Value
		case "k":
			r.KeyType = t.Value
		case "p":
			p, hasP = removeFWS(t.Value), true
		case "h":
			r.HashAlgorithms = colonList(t.Value)
		case "s":
			r.ServiceTypes = colonList(t.Value)
		case "t":
			r.Flags = colonList(t.Value)
		case "n":
			r.Notes = t.Value
		}
	}
	if !hasP {
		return nil, notKeyRecord("no p= tag: the record carries no key (RFC 6376 §3.6.1)")
	}
	if r.KeyType != KeyTypeRSA && r.KeyType != KeyTypeEd25519 {
		return nil, unusableKey("key type k=%s is not rsa or ed25519: verifiers ignore the record (RFC 6376 §3.6.1, §6.1.2; RFC 8463 §4)", r.KeyType)
	}
	if r.HashAlgorithms != nil && !slices.Contains(r.HashAlgorithms, hashSHA256) {
		return nil, unusableKey("h=%s does not allow sha256, the only hash verifiers accept (RFC 6376 §3.6.1, RFC 8301 §3.1)", strings.Join(r.HashAlgorithms, ":"))
	}
	if r.ServiceTypes != nil && !slices.Contains(r.ServiceTypes, serviceEmail) && !slices.Contains(r.ServiceTypes, serviceAll) {
		return nil, unusableKey("s=%s holds neither email nor *: verifiers of mail ignore the record (RFC 6376 §3.6.1)", strings.Join(r.ServiceTypes, ":"))
	}
	if p == "" {
		r.Revoked = true
		return r, nil
	}
	der, err := base64.StdEncoding.DecodeString(p)
	if err != nil {
		return nil, unusableKey("p= is not base64: %v (RFC 6376 §3.6.1)", err)
	}
	switch r.KeyType {
	case KeyTypeEd25519:
		// The raw key, not DER (RFC 8463 §4.2).
		if len(der) != ed25519.PublicKeySize {
			return nil, unusableKey("an ed25519 key is %d octets, p= has %d (RFC 8463 §4.2)", ed25519.PublicKeySize, len(der))
		}
		r.Bits = 8 * ed25519.PublicKeySize
	default:
		// RFC 6376 §3.6.1 names RSAPublicKey, but signers publish the
		// SubjectPublicKeyInfo that openssl writes; verifiers take both.
		var pub *rsa.PublicKey
		if key, err := x509.ParsePKIXPublicKey(der); err == nil {
			rk, ok := key.(*rsa.PublicKey)
			if !ok {
				return nil, unusableKey("p= holds a %T key, not RSA (RFC 6376 §3.6.1)", key)
			}
			pub = rk
		} else if rk, err2 := x509.ParsePKCS1PublicKey(der); err2 == nil {
			pub = rk
		} else {
			return nil, unusableKey("p= is not an RSA public key: %v (RFC 6376 §3.6.1)", err)
		}
		r.Bits = pub.N.BitLen()
		if r.Bits < MinRSABits {
			return nil, unusableKey("the RSA key has %d bits; verifiers refuse keys under %d (RFC 8301 §3.2)", r.Bits, MinRSABits)
		}
	}
	r.PublicKey = der
	return r, nil
}

// colonList splits a colon-separated tag value, white space around the
// colons allowed (RFC 6376 §3.6.1: h=, s=, t=).
func colonList(v string) []string {
	return strings.Split(removeFWS(v), ":")
}
