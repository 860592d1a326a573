package dmarcd

import (
	"encoding/base64"
	"time"
)

// DKIM signing algorithms (the a= tag of a signature): RSA with SHA-256
// (RFC 6376 §3.3) and Ed25519 with SHA-256 (RFC 8463 §3).
const (
	AlgorithmRSA     = "rsa-sha256"
	AlgorithmEd25519 = "ed25519-sha256"
)

// KeyState is where a DKIM key stands in its life. A key moves one way:
//
//	created -> published -> signing -> current -> retired -> revoked -> deleted
//
// A rotation runs two keys of a domain side by side: the new key signs
// beside the current one until the large mailbox providers see it pass,
// then it becomes current and the old key is retired in the same step. A
// key that never became current may be retired early (an abandoned
// rotation), and a created key that was never published may be deleted.
type KeyState string

const (
	// KeyCreated: generated or imported; its record is not yet seen in DNS.
	KeyCreated KeyState = "created"
	// KeyPublished: its record is in DNS, but caches may still hold the
	// answer "no such record": it does not sign yet.
	KeyPublished KeyState = "published"
	// KeySigning: signs beside the domain's current key (a rotation).
	KeySigning KeyState = "signing"
	// KeyCurrent: the domain's key; it signs every message.
	KeyCurrent KeyState = "current"
	// KeyRetired: no longer signs; its record stays published for a grace
	// period, so that mail in flight and in queues still verifies.
	KeyRetired KeyState = "retired"
	// KeyRevoked: its record is published with an empty p= tag, which says
	// the key was revoked (RFC 6376 §3.6.1): signatures made with it fail
	// instead of being mistaken for a missing record.
	KeyRevoked KeyState = "revoked"
	// KeyDeleted: the private key is gone and the record may be removed.
	KeyDeleted KeyState = "deleted"
)

// KeyStates are the states in their order.
var KeyStates = []KeyState{KeyCreated, KeyPublished, KeySigning, KeyCurrent, KeyRetired, KeyRevoked, KeyDeleted}

// Valid says whether s is one of KeyStates.
func (s KeyState) Valid() bool {
	for _, k := range KeyStates {
		if s == k {
			return true
		}
	}
	return false
}

// Signs says whether a key in state s signs mail.
func (s KeyState) Signs() bool { return s == KeySigning || s == KeyCurrent }

// Published says whether a key in state s has its public key in DNS.
func (s KeyState) Published() bool {
	return s == KeyPublished || s == KeySigning || s == KeyCurrent || s == KeyRetired
}

// CanMove says whether a key may move from state s to next.
func (s KeyState) CanMove(next KeyState) bool {
	switch s {
	case KeyCreated:
		return next == KeyPublished || next == KeyDeleted
	case KeyPublished:
		return next == KeySigning || next == KeyRetired
	case KeySigning:
		return next == KeyCurrent || next == KeyRetired
	case KeyCurrent:
		return next == KeyRetired
	case KeyRetired:
		return next == KeyRevoked
	case KeyRevoked:
		return next == KeyDeleted
	}
	return false
}

// Next is the state a key in state s normally moves to, or "" for none.
func (s KeyState) Next() KeyState {
	for i, k := range KeyStates {
		if k == s && i+1 < len(KeyStates) {
			return KeyStates[i+1]
		}
	}
	return ""
}

// Key describes a DKIM signing key: everything but the private key, which
// only the key store holds.
type Key struct {
	// Domain is the signing domain, the d= tag (RFC 6376 §3.5).
	Domain string `json:"domain"`
	// Selector is the s= tag: the record is at Selector._domainkey.Domain.
	Selector string `json:"selector"`
	// Algorithm is AlgorithmRSA or AlgorithmEd25519.
	Algorithm string `json:"algorithm"`
	// Bits is the size of an RSA modulus; 256 for Ed25519.
	Bits int `json:"bits"`
	// Created is when the key was generated or imported.
	Created time.Time `json:"created"`
	// State is where the key stands, since StateSince.
	State      KeyState  `json:"state"`
	StateSince time.Time `json:"state_since"`
	// PublicKey is the p= value decoded: a DER SubjectPublicKeyInfo for
	// RSA (RFC 6376 §3.6.1), the raw 32-byte key for Ed25519 (RFC 8463 §4).
	PublicKey []byte `json:"public_key"`
}

// ID names the key: its DNS record name, Selector._domainkey.Domain.
func (k Key) ID() string { return k.RecordName() }

// RecordName is the owner name of the key's TXT record (RFC 6376 §3.6.2.1),
// without the trailing dot.
func (k Key) RecordName() string { return k.Selector + "._domainkey." + k.Domain }

// KeyType is the k= tag of the record: "rsa" or "ed25519".
func (k Key) KeyType() string {
	if k.Algorithm == AlgorithmEd25519 {
		return "ed25519"
	}
	return "rsa"
}

// TXT is the value of the key's TXT record (RFC 6376 §3.6.1): the public
// key for every state, and an empty p= once the key is revoked or deleted.
func (k Key) TXT() string {
	p := ""
	if k.State != KeyRevoked && k.State != KeyDeleted {
		p = base64.StdEncoding.EncodeToString(k.PublicKey)
	}
	return "v=DKIM1; k=" + k.KeyType() + "; p=" + p
}

// RotationPolicy holds the durations of a key rotation.
type RotationPolicy struct {
	// RotationPeriod is how long a key stays current before a new one
	// should replace it (M3AAWG recommends at least twice a year).
	RotationPeriod time.Duration
	// GracePeriod is how long a retired key's record stays published:
	// longer than mail waits in queues and than DNS caches hold the record.
	GracePeriod time.Duration
	// PublishedWait is how long a new record must be seen in DNS before
	// the key signs: resolvers that cached "no such record" (negative
	// caching, RFC 2308) must have forgotten it.
	PublishedWait time.Duration
}

// DefaultRotationPolicy: rotate every 180 days, keep a retired record for 7
// days, sign with a new key 2 days after its record is seen.
var DefaultRotationPolicy = RotationPolicy{
	RotationPeriod: 180 * 24 * time.Hour,
	GracePeriod:    7 * 24 * time.Hour,
	PublishedWait:  2 * 24 * time.Hour,
}
