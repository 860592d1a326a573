// Package keystore keeps DKIM signing keys in a folder: one private key file
// (PKCS#8 PEM, mode 0600) and one metadata file (JSON) per key, under a
// folder per domain:
//
//	DIR/example.com/s202607.pem    the private key, created 0600 with O_EXCL
//	DIR/example.com/s202607.json   domain, selector, algorithm, created, state, state_since, public key
//
// Writers (the keys commands) take an exclusive lock on DIR/.lock. Readers
// (the signer) take none: a private key file is written once before its
// metadata exists and never changes, and metadata is replaced atomically
// (written to a temporary file, then renamed), so a reader sees the old or
// the new file, never half of one.
//
// Private keys leave the store only as a crypto.Signer that signs: no API
// returns their bytes, and the signers print as their name.
package keystore

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/internal/dnsrecord"
)

// Limits of the keys the store makes and accepts.
const (
	// DefaultRSABits is the size of a generated RSA key: 2048 bits, what
	// RFC 8301 §3.2 asks signers to use at least.
	DefaultRSABits = 2048
	// MinRSABits is the smallest RSA key accepted: RFC 8301 §3.2 forbids
	// verifiers to accept less than 1024 bits.
	MinRSABits = 1024
	// MaxRSABits bounds generation time and the TXT record's size.
	MaxRSABits = 4096
	// MaxKeyFileBytes bounds a PEM file read for import.
	MaxKeyFileBytes = 64 << 10
)

// File modes.
const (
	dirMode      = 0o700 // the store and its domain folders
	keyFileMode  = 0o600 // private keys: never wider
	metaFileMode = 0o644 // metadata holds no secret
	lockFileName = ".lock"
)

// Errors callers test for.
var (
	ErrNotFound       = errors.New("no such key")
	ErrExists         = errors.New("the selector is in use for the domain (or was: selectors are not reused)")
	ErrBadTransition  = errors.New("the key cannot move to that state")
	ErrRecordMismatch = errors.New("the published DNS record holds another public key")
)

// TXTLookup returns the TXT records at name, each with its strings joined.
// A name without records gives no records and a nil error.
type TXTLookup func(ctx context.Context, name string) ([]string, error)

// Store is a key store folder. Its methods are safe for concurrent use by
// several processes.
type Store struct {
	dir string
	now func() time.Time
}

// Open opens the store in dir, creating the folder (mode 0700) when missing.
func Open(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("keystore: no folder given (keys.dir)")
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, fmt.Errorf("keystore: creating %s: %w", dir, err)
	}
	return &Store{dir: dir, now: func() time.Time { return time.Now().UTC().Truncate(time.Second) }}, nil
}

// Dir is the store's folder.
func (s *Store) Dir() string { return s.dir }

// SetClock replaces the clock that stamps created and state_since (tests).
func (s *Store) SetClock(now func() time.Time) { s.now = now }

var (
	// A selector is a dot-separated list of labels (RFC 6376 §3.1).
	selectorRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?)*$`)
	domainRE   = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// CheckName validates a domain and a selector: lower case host names, which
// also keeps them from escaping the store's folder.
func CheckName(domain, selector string) error {
	if len(domain) > 253 || !domainRE.MatchString(domain) {
		return fmt.Errorf("keystore: %q is not a domain name (lower case, with a dot)", domain)
	}
	if len(selector) > 63 || !selectorRE.MatchString(selector) {
		return fmt.Errorf("keystore: %q is not a selector (lower case letters, digits, '-', '_', '.')", selector)
	}
	return nil
}

func (s *Store) metaPath(domain, selector string) string {
	return filepath.Join(s.dir, domain, selector+".json")
}

func (s *Store) keyPath(domain, selector string) string {
	return filepath.Join(s.dir, domain, selector+".pem")
}

// lock takes the writers' lock; the returned function releases it.
func (s *Store) lock() (func(), error) {
	f, err := os.OpenFile(filepath.Join(s.dir, lockFileName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("keystore: opening the lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("keystore: locking %s: %w", s.dir, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// List returns every key, deleted ones too, by domain and selector. A key
// whose metadata cannot be read fails the listing: the keys commands
// change nothing on a store they cannot read whole. The signer reads with
// Scan instead, which leaves such a key out alone.
func (s *Store) List() ([]dmarcd.Key, error) {
	keys, problems, err := s.Scan()
	if err != nil {
		return nil, err
	}
	if len(problems) > 0 {
		return nil, problems[0].Err
	}
	return keys, nil
}

// KeyProblem is a key the store holds but cannot use: its metadata or its
// private key file cannot be read, does not parse, or do not match.
type KeyProblem struct {
	// ID is SELECTOR._domainkey.DOMAIN.
	ID  string
	Err error
}

// Scan returns every key whose metadata reads, by domain and selector, and
// a problem for each one that does not. The error is for a store that
// cannot be listed at all (its folder or a domain's folder unreadable).
func (s *Store) Scan() ([]dmarcd.Key, []KeyProblem, error) {
	domains, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, nil, fmt.Errorf("keystore: %w", err)
	}
	var keys []dmarcd.Key
	var problems []KeyProblem
	for _, d := range domains {
		if !d.IsDir() {
			continue
		}
		files, err := os.ReadDir(filepath.Join(s.dir, d.Name()))
		if err != nil {
			return nil, nil, fmt.Errorf("keystore: %w", err)
		}
		for _, f := range files {
			name := f.Name()
			if !strings.HasSuffix(name, ".json") || strings.HasPrefix(name, ".") {
				continue
			}
			selector := strings.TrimSuffix(name, ".json")
			k, err := s.Get(d.Name(), selector)
			if err != nil {
				problems = append(problems, KeyProblem{ID: selector + "._domainkey." + d.Name(), Err: err})
				continue
			}
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Domain != keys[j].Domain {
			return keys[i].Domain < keys[j].Domain
		}
		return keys[i].Selector < keys[j].Selector
	})
	return keys, problems, nil
}

// Get returns the metadata of one key.
func (s *Store) Get(domain, selector string) (dmarcd.Key, error) {
	var k dmarcd.Key
	if err := CheckName(domain, selector); err != nil {
		return k, err
	}
	b, err := os.ReadFile(s.metaPath(domain, selector))
	if errors.Is(err, fs.ErrNotExist) {
		return k, fmt.Errorf("keystore: %s._domainkey.%s: %w", selector, domain, ErrNotFound)
	}
	if err != nil {
		return k, fmt.Errorf("keystore: %w", err)
	}
	if err := json.Unmarshal(b, &k); err != nil {
		return k, fmt.Errorf("keystore: reading %s: %w", s.metaPath(domain, selector), err)
	}
	if k.Domain != domain || k.Selector != selector || !k.State.Valid() {
		return k, fmt.Errorf("keystore: %s does not describe %s._domainkey.%s in a known state", s.metaPath(domain, selector), selector, domain)
	}
	return k, nil
}

// GenerateOptions say which key to make.
type GenerateOptions struct {
	Domain, Selector string
	// Algorithm is dmarcd.AlgorithmRSA (the default) or dmarcd.AlgorithmEd25519.
	Algorithm string
	// Bits is the RSA key size: DefaultRSABits when 0, at least MinRSABits.
	Bits int
}

// Generate makes a new key in state created.
func (s *Store) Generate(o GenerateOptions) (dmarcd.Key, error) {
	var priv crypto.Signer
	switch o.Algorithm {
	case "", dmarcd.AlgorithmRSA, "rsa":
		bits := o.Bits
		if bits == 0 {
			bits = DefaultRSABits
		}
		if bits < MinRSABits || bits > MaxRSABits {
			return dmarcd.Key{}, fmt.Errorf("keystore: an RSA key of %d bits: want %d to %d (RFC 8301 §3.2)", bits, MinRSABits, MaxRSABits)
		}
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			return dmarcd.Key{}, fmt.Errorf("keystore: generating an RSA key: %w", err)
		}
		priv = k
	case dmarcd.AlgorithmEd25519, "ed25519":
		if o.Bits != 0 && o.Bits != 256 {
			return dmarcd.Key{}, errors.New("keystore: Ed25519 keys have no size to choose")
		}
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return dmarcd.Key{}, fmt.Errorf("keystore: generating an Ed25519 key: %w", err)
		}
		priv = k
	default:
		return dmarcd.Key{}, fmt.Errorf("keystore: algorithm %q: want rsa or ed25519", o.Algorithm)
	}
	return s.add(o.Domain, o.Selector, priv, dmarcd.KeyCreated)
}

// ImportOptions say which key to import and how to check it.
type ImportOptions struct {
	Domain, Selector string
	// PEM is the private key: PKCS#1 ("RSA PRIVATE KEY") or PKCS#8
	// ("PRIVATE KEY", RSA or Ed25519) PEM, as opendkim-genkey and openssl
	// write them, or an Ed25519 seed in base64 (RFC 8463 Appendix A, dkimpy).
	PEM []byte
	// Lookup, when set, reads the selector's record: an import whose record
	// is published with another key is refused, and a key whose record is
	// published is imported in state published.
	Lookup TXTLookup
}

// Import adds an existing private key.
func (s *Store) Import(ctx context.Context, o ImportOptions) (dmarcd.Key, error) {
	if err := CheckName(o.Domain, o.Selector); err != nil {
		return dmarcd.Key{}, err
	}
	priv, err := ParsePrivateKey(o.PEM)
	if err != nil {
		return dmarcd.Key{}, err
	}
	state := dmarcd.KeyCreated
	if o.Lookup != nil {
		probe, err := describe(o.Domain, o.Selector, priv)
		if err != nil {
			return dmarcd.Key{}, err
		}
		published, err := RecordPublished(ctx, o.Lookup, probe)
		if err != nil {
			return dmarcd.Key{}, err
		}
		if published {
			state = dmarcd.KeyPublished
		}
	}
	return s.add(o.Domain, o.Selector, priv, state)
}

// RecordPublished says whether k's record is published with k's public key.
// It returns ErrRecordMismatch when the selector's record holds another key
// or is revoked.
func RecordPublished(ctx context.Context, lookup TXTLookup, k dmarcd.Key) (bool, error) {
	txts, err := lookup(ctx, k.RecordName())
	if err != nil {
		return false, fmt.Errorf("keystore: looking up %s: %w", k.RecordName(), err)
	}
	other := false
	for _, txt := range txts {
		r, err := dnsrecord.ParseKey(txt)
		if err != nil {
			// Another kind of TXT record at the name, or a key record
			// verifiers refuse: neither publishes a key.
			continue
		}
		if r.Matches(k) {
			return true, nil
		}
		other = true
	}
	if other {
		return false, fmt.Errorf("keystore: %s: %w", k.RecordName(), ErrRecordMismatch)
	}
	return false, nil
}

// ParsePrivateKey reads a private key from PEM (PKCS#1 or PKCS#8) or a
// base64 Ed25519 seed. Its errors never quote the input.
func ParsePrivateKey(data []byte) (crypto.Signer, error) {
	if len(data) > MaxKeyFileBytes {
		return nil, fmt.Errorf("keystore: the key file is larger than %d bytes", MaxKeyFileBytes)
	}
	var found crypto.Signer
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		var (
			k   any
			err error
		)
		switch block.Type {
		case "RSA PRIVATE KEY":
			if _, encrypted := block.Headers["DEK-Info"]; encrypted {
				return nil, errors.New("keystore: the key is encrypted; decrypt it first (openssl pkey -in FILE)")
			}
			k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("keystore: the key is encrypted; decrypt it first (openssl pkey -in FILE)")
		default:
			continue // certificates, public keys, parameters
		}
		if err != nil {
			return nil, fmt.Errorf("keystore: parsing the %s block: %w", block.Type, err)
		}
		if found != nil {
			return nil, errors.New("keystore: the file holds more than one private key")
		}
		switch k := k.(type) {
		case *rsa.PrivateKey:
			if err := k.Validate(); err != nil {
				return nil, fmt.Errorf("keystore: the RSA key is not valid: %w", err)
			}
			if bits := k.N.BitLen(); bits < MinRSABits {
				return nil, fmt.Errorf("keystore: the RSA key has %d bits, fewer than %d (RFC 8301 §3.2)", bits, MinRSABits)
			}
			found = k
		case ed25519.PrivateKey:
			found = k
		default:
			return nil, fmt.Errorf("keystore: a %T key: DKIM signs with RSA or Ed25519", k)
		}
	}
	if found != nil {
		return found, nil
	}
	// An Ed25519 seed in base64, as RFC 8463 Appendix A and dkimpy write it.
	if seed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data))); err == nil && len(seed) == ed25519.SeedSize {
		return ed25519.NewKeyFromSeed(seed), nil
	}
	return nil, errors.New("keystore: no private key found: want PEM (PKCS#1 or PKCS#8) or a base64 Ed25519 seed")
}

// describe makes the metadata of a private key.
func describe(domain, selector string, priv crypto.Signer) (dmarcd.Key, error) {
	k := dmarcd.Key{Domain: domain, Selector: selector}
	switch pub := priv.Public().(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return k, fmt.Errorf("keystore: %w", err)
		}
		k.Algorithm, k.Bits, k.PublicKey = dmarcd.AlgorithmRSA, pub.N.BitLen(), der
	case ed25519.PublicKey:
		// RFC 8463 §4: p= is the raw key, not a SubjectPublicKeyInfo.
		k.Algorithm, k.Bits, k.PublicKey = dmarcd.AlgorithmEd25519, 256, []byte(pub)
	default:
		return k, fmt.Errorf("keystore: a %T key: DKIM signs with RSA or Ed25519", pub)
	}
	return k, nil
}

// add writes a new key: the private key file first (O_EXCL, 0600), then its
// metadata, which makes it visible.
func (s *Store) add(domain, selector string, priv crypto.Signer, state dmarcd.KeyState) (dmarcd.Key, error) {
	if err := CheckName(domain, selector); err != nil {
		return dmarcd.Key{}, err
	}
	k, err := describe(domain, selector, priv)
	if err != nil {
		return k, err
	}
	k.Created = s.now()
	k.State, k.StateSince = state, k.Created

	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return k, fmt.Errorf("keystore: encoding the private key: %w", err)
	}
	unlock, err := s.lock()
	if err != nil {
		return k, err
	}
	defer unlock()
	if err := os.MkdirAll(filepath.Join(s.dir, domain), dirMode); err != nil {
		return k, fmt.Errorf("keystore: %w", err)
	}
	if _, err := os.Stat(s.metaPath(domain, selector)); err == nil {
		return k, fmt.Errorf("keystore: %s._domainkey.%s: %w", selector, domain, ErrExists)
	}
	keyPath := s.keyPath(domain, selector)
	if err := writeNewFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), keyFileMode); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return k, fmt.Errorf("keystore: %s exists without metadata; move it away first: %w", keyPath, ErrExists)
		}
		return k, fmt.Errorf("keystore: writing the private key: %w", err)
	}
	if err := s.writeMeta(k); err != nil {
		os.Remove(keyPath)
		return k, err
	}
	return k, nil
}

// writeNewFile creates path with O_EXCL and mode perm (never chmod-ed
// later) and writes data, or removes what it created.
func writeNewFile(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

// writeMeta replaces a key's metadata atomically: a temporary file in the
// same folder, synced, then renamed over the old one.
func (s *Store) writeMeta(k dmarcd.Key) error {
	b, err := json.MarshalIndent(k, "", "  ")
	if err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	b = append(b, '\n')
	final := s.metaPath(k.Domain, k.Selector)
	tmp, err := os.CreateTemp(filepath.Dir(final), ".tmp-*.json")
	if err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	if _, err = tmp.Write(b); err == nil {
		err = tmp.Chmod(metaFileMode) // CreateTemp makes 0600; metadata is public
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), final)
	}
	if err != nil {
		return fmt.Errorf("keystore: writing %s: %w", final, err)
	}
	return nil
}

// Move is one state change made by Transition.
type Move struct {
	Key      dmarcd.Key // after the move
	From, To dmarcd.KeyState
}

// Transition moves a key to the state to, if its life allows it
// (dmarcd.KeyState.CanMove). A key that becomes current retires the
// domain's current key of the same algorithm in the same step, so that a
// domain has one current key per algorithm. A deleted key's private key
// file is removed. The checks that say when a move is safe are the
// advisor's; Transition only keeps the order.
func (s *Store) Transition(domain, selector string, to dmarcd.KeyState) ([]Move, error) {
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	k, err := s.Get(domain, selector)
	if err != nil {
		return nil, err
	}
	if !k.State.CanMove(to) {
		return nil, fmt.Errorf("keystore: %s is %s: %w %s (allowed: %s)", k.ID(), k.State, ErrBadTransition, to, allowed(k.State))
	}
	var moves []Move
	now := s.now()
	if to == dmarcd.KeyCurrent {
		all, err := s.List()
		if err != nil {
			return nil, err
		}
		for _, old := range all {
			if old.Domain == domain && old.Algorithm == k.Algorithm && old.State == dmarcd.KeyCurrent {
				old.State, old.StateSince = dmarcd.KeyRetired, now
				if err := s.writeMeta(old); err != nil {
					return moves, err
				}
				moves = append(moves, Move{Key: old, From: dmarcd.KeyCurrent, To: dmarcd.KeyRetired})
			}
		}
	}
	from := k.State
	k.State, k.StateSince = to, now
	if err := s.writeMeta(k); err != nil {
		return moves, err
	}
	if to == dmarcd.KeyDeleted {
		if err := os.Remove(s.keyPath(domain, selector)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return moves, fmt.Errorf("keystore: removing the private key of %s: %w", k.ID(), err)
		}
	}
	return append(moves, Move{Key: k, From: from, To: to}), nil
}

func allowed(s dmarcd.KeyState) string {
	var names []string
	for _, t := range dmarcd.KeyStates {
		if s.CanMove(t) {
			names = append(names, string(t))
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// SigningKey is a key that signs: its metadata and its signer.
type SigningKey struct {
	Key    dmarcd.Key
	Signer crypto.Signer
}

// SigningKeys returns the keys in state signing or current, by domain. A
// key that cannot sign (metadata or private key file unreadable, broken or
// not matching) is left out and named in the problems: one bad file
// disables its key and nothing else. A key whose metadata cannot be read
// is left out whatever its state: a signer cannot tell whether it was
// retired. The error is for a store that cannot be listed at all.
func (s *Store) SigningKeys() (map[string][]SigningKey, []KeyProblem, error) {
	keys, problems, err := s.Scan()
	if err != nil {
		return nil, nil, err
	}
	out := make(map[string][]SigningKey)
	for _, k := range keys {
		if !k.State.Signs() {
			continue
		}
		signer, err := s.Signer(k.Domain, k.Selector)
		if err != nil {
			problems = append(problems, KeyProblem{ID: k.ID(), Err: err})
			continue
		}
		out[k.Domain] = append(out[k.Domain], SigningKey{Key: k, Signer: signer})
	}
	return out, problems, nil
}

// Signer returns a crypto.Signer for the key, which checks that the private
// key file still matches the metadata's public key.
func (s *Store) Signer(domain, selector string) (crypto.Signer, error) {
	k, err := s.Get(domain, selector)
	if err != nil {
		return nil, err
	}
	b, err := readBounded(s.keyPath(domain, selector))
	if err != nil {
		return nil, fmt.Errorf("keystore: reading the private key of %s: %w", k.ID(), err)
	}
	priv, err := ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("keystore: the private key file of %s: %w", k.ID(), err)
	}
	got, err := describe(domain, selector, priv)
	if err != nil {
		return nil, err
	}
	if got.Algorithm != k.Algorithm || string(got.PublicKey) != string(k.PublicKey) {
		return nil, fmt.Errorf("keystore: the private key file of %s does not match its metadata", k.ID())
	}
	return &keySigner{name: k.ID(), priv: priv}, nil
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, MaxKeyFileBytes+1))
}

// keySigner hides a private key behind crypto.Signer: it signs, and prints,
// formats and logs as the key's name only.
type keySigner struct {
	name string
	priv crypto.Signer
}

func (k *keySigner) Public() crypto.PublicKey { return k.priv.Public() }

func (k *keySigner) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return k.priv.Sign(rand, digest, opts)
}

func (k *keySigner) String() string             { return "dkim-key(" + k.name + ")" }
func (k *keySigner) GoString() string           { return k.String() }
func (k *keySigner) LogValue() slog.Value       { return slog.StringValue(k.String()) }
func (k *keySigner) Format(f fmt.State, _ rune) { io.WriteString(f, k.String()) }

// Stamp changes whenever a key is added, removed or changes state, or its
// private key file changes: a reader that caches keys compares stamps to
// know when to read them again. It reads the folder listing and file
// times only.
func (s *Store) Stamp() (string, error) {
	h := sha256.New()
	domains, err := os.ReadDir(s.dir)
	if err != nil {
		return "", fmt.Errorf("keystore: %w", err)
	}
	for _, d := range domains {
		if !d.IsDir() {
			continue
		}
		files, err := os.ReadDir(filepath.Join(s.dir, d.Name()))
		if err != nil {
			return "", fmt.Errorf("keystore: %w", err)
		}
		for _, f := range files {
			if !(strings.HasSuffix(f.Name(), ".json") || strings.HasSuffix(f.Name(), ".pem")) || strings.HasPrefix(f.Name(), ".") {
				continue
			}
			info, err := f.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // replaced while listing: the next stamp sees it
			}
			if err != nil {
				return "", fmt.Errorf("keystore: %w", err)
			}
			fmt.Fprintf(h, "%s/%s %d %d\n", d.Name(), f.Name(), info.ModTime().UnixNano(), info.Size())
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// NextSelector names a new key of alg ("rsa" or "ed25519") for domain: r
// or e, then the year and month (r202612), and a letter after it when the
// domain has that selector already (r202612b): a selector says which key
// and when, and never names two keys.
func NextSelector(alg string, keys []dmarcd.Key, domain string, now time.Time) string {
	base := "r" + now.UTC().Format("200601")
	if alg == "ed25519" {
		base = "e" + now.UTC().Format("200601")
	}
	taken := map[string]bool{}
	for _, k := range keys {
		if k.Domain == domain {
			taken[k.Selector] = true
		}
	}
	sel := base
	for c := 'b'; taken[sel] && c <= 'z'; c++ {
		sel = base + string(c)
	}
	return sel
}
