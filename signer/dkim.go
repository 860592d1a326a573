// Package signer signs outbound mail with the DKIM keys of a key store
// (signer/keystore). It has two front ends: an SMTP relay that accepts mail
// from configured networks or authenticated users, signs it and passes it
// to a next hop (relay.go), and a milter for Postfix and Sendmail
// (milter.go).
//
// Every message is signed with every signing key of its From domain (two
// signatures during a rotation; RSA and Ed25519 side by side where both
// are configured), relaxed/relaxed, over the header fields of RFC 6376
// §5.4.1, oversigned so that none can be added after signing, never with
// l= (RFC 6376 §8.2). Key store changes are picked up without a restart.
package signer

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/dmarcd/dmarcd/signer/keystore"
)

// DefaultReloadInterval is how often the signer looks for key store
// changes (a listing of the folder and file times, not a read of the keys).
const DefaultReloadInterval = 5 * time.Second

// ErrKeysUnavailable is the error of Keyring.For while the key store
// cannot be read: the signer then signs nothing rather than sign with keys
// that may have been retired since, and the front ends answer "try again
// later".
var ErrKeysUnavailable = errors.New("the key store cannot be read")

// Keyring holds the signing keys of a key store and reads them again when
// the store changes. Each key is loaded on its own: a key whose file is
// broken is left out (logged once, and shown by the metrics), and the
// others sign. A key retired, deleted or removed from the store stops
// signing at the next check, at most the reload interval later.
type Keyring struct {
	store    *keystore.Store
	interval time.Duration
	log      *slog.Logger

	mu       sync.Mutex
	checked  time.Time
	stamp    string
	loaded   bool
	keys     map[string][]keystore.SigningKey
	problems map[string]string // key ID -> why it cannot sign
	broken   error             // why the store could not be read at the last check
	metrics  *Metrics
}

// NewKeyring reads the signing keys of store. It looks for changes at most
// every interval (0: before every message). A store that cannot be listed
// at all is an error; keys that cannot be loaded are logged and left out.
func NewKeyring(store *keystore.Store, interval time.Duration, log *slog.Logger) (*Keyring, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Keyring{store: store, interval: interval, log: log}
	r.reload()
	if r.broken != nil {
		return nil, r.broken
	}
	return r, nil
}

// Instrument makes the keyring report its state in m: the usable keys,
// each unusable key, and whether the store could be read.
func (r *Keyring) Instrument(m *Metrics) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.metrics = m
	r.publish()
}

// reload reads the store again when it changed. Called with r.mu held.
func (r *Keyring) reload() {
	r.checked = time.Now()
	stamp, err := r.store.Stamp()
	if err == nil && stamp == r.stamp && r.loaded {
		return
	}
	var keys map[string][]keystore.SigningKey
	var problems []keystore.KeyProblem
	if err == nil {
		keys, problems, err = r.store.SigningKeys()
	}
	if err != nil {
		// Sign nothing: the keys read before may have been retired.
		if r.broken == nil || r.broken.Error() != err.Error() {
			r.log.Error("reading the key store failed: nothing is signed until it can be read again (mail is deferred with a temporary error)", "dir", r.store.Dir(), "err", err)
		}
		r.broken = fmt.Errorf("%w: %v", ErrKeysUnavailable, err)
		r.keys, r.stamp, r.loaded = nil, "", false
		r.publish()
		return
	}
	if r.broken != nil {
		r.log.Info("the key store can be read again", "dir", r.store.Dir())
	}
	now := make(map[string]string, len(problems))
	for _, p := range problems {
		now[p.ID] = p.Err.Error()
		if r.problems[p.ID] != now[p.ID] {
			r.log.Error("a signing key cannot be used and is left out; the other keys sign", "key", p.ID, "err", p.Err)
		}
	}
	for id := range r.problems {
		if _, ok := now[id]; !ok {
			r.log.Info("a key that could not be used no longer has a problem", "key", id)
		}
	}
	r.keys, r.problems, r.broken, r.stamp, r.loaded = keys, now, nil, stamp, true
	n := 0
	for _, ks := range keys {
		n += len(ks)
	}
	r.log.Info("signing keys loaded", "dir", r.store.Dir(), "domains", len(keys), "keys", n, "unusable", len(problems))
	r.publish()
}

// publish sets the metrics from the state. Called with r.mu held.
func (r *Keyring) publish() {
	m := r.metrics
	if m == nil {
		return
	}
	n := 0
	for _, ks := range r.keys {
		n += len(ks)
	}
	m.KeysUsable.Set(float64(n))
	m.KeyUnusable.Reset()
	for id := range r.problems {
		m.KeyUnusable.WithLabelValues(id).Set(1)
	}
	if r.broken != nil {
		m.KeystoreReadable.Set(0)
	} else {
		m.KeystoreReadable.Set(1)
	}
}

// Problems returns the keys that should sign and cannot, with why, by key
// ID (SELECTOR._domainkey.DOMAIN).
func (r *Keyring) Problems() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]string, len(r.problems))
	for id, why := range r.problems {
		out[id] = why
	}
	return out
}

// For returns the signing domain and keys for mail from fromDomain: the
// domain's own keys, else, with parents, those of its nearest parent
// domain that has keys (d= aligns with the From domain under relaxed DKIM
// alignment, RFC 7489 §3.1.1, and not under adkim=s). While the store
// cannot be read it returns an error wrapping ErrKeysUnavailable.
func (r *Keyring) For(fromDomain string, parents bool) (string, []keystore.SigningKey, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) >= r.interval {
		r.reload()
	}
	if r.broken != nil {
		return "", nil, r.broken
	}
	d := strings.ToLower(strings.TrimSuffix(fromDomain, "."))
	for strings.Contains(d, ".") {
		if ks := r.keys[d]; len(ks) > 0 {
			return d, ks, nil
		}
		if !parents {
			break
		}
		_, d, _ = strings.Cut(d, ".")
	}
	return "", nil, nil
}

// Domains returns the domains that have signing keys.
func (r *Keyring) Domains() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.keys))
	for d := range r.keys {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

// UnsignedPolicy says what happens to mail the signer holds no key for.
type UnsignedPolicy string

const (
	UnsignedPass   UnsignedPolicy = "pass"   // pass it on unsigned
	UnsignedRefuse UnsignedPolicy = "refuse" // refuse it (550 5.7.1)
)

// Outcomes of a message, the values of the result label of
// dmarcd_signer_messages_total.
const (
	OutcomeSigned   = "signed"
	OutcomeUnsigned = "unsigned"
	OutcomeRefused  = "refused"
)

// Header fields signed, RFC 6376 §5.4.1, with those of MIME and of mailing
// lists (RFC 2369, RFC 8058). Each is oversigned: listed once more than the
// message has it, so that a field added later breaks the signature
// (RFC 6376 §8.15).
var oversignedHeaders = []string{
	"From", "Reply-To", "Subject", "Date", "To", "Cc", "Sender",
	"Message-ID", "In-Reply-To", "References",
	"MIME-Version", "Content-Type", "Content-Transfer-Encoding",
	"List-Id", "List-Help", "List-Unsubscribe", "List-Unsubscribe-Post",
	"List-Subscribe", "List-Post", "List-Owner", "List-Archive",
}

// Header fields signed as often as present, not oversigned: forwarders add
// Resent-* fields legitimately (RFC 5322 §3.6.6).
var presentHeaders = []string{"Resent-Date", "Resent-From", "Resent-Sender", "Resent-To", "Resent-Cc"}

// Result is what Sign did with a message.
type Result struct {
	Outcome string // OutcomeSigned, OutcomeUnsigned or OutcomeRefused
	// Domain is the signing domain (d=), FromDomain the From header's.
	Domain, FromDomain string
	// Selectors are those of the signatures, in the order of Signatures.
	Selectors []string
	// Signatures are whole DKIM-Signature header fields, each ending in
	// CRLF, to put before the message.
	Signatures []string
	// Reason says why a message was not signed.
	Reason string
}

// SubdomainSigning says how mail from a subdomain without keys of its own
// is signed.
type SubdomainSigning string

const (
	// SubdomainsParent signs it with the keys of the nearest parent
	// domain that has keys: d= is the parent, which aligns with the From
	// domain under relaxed DKIM alignment (adkim=r, the default) and
	// fails under adkim=s (RFC 7489 §3.1.1).
	SubdomainsParent SubdomainSigning = "parent"
	// SubdomainsOwn signs mail with the From domain's own keys only: a
	// subdomain without keys is handled as a domain without keys.
	SubdomainsOwn SubdomainSigning = "own"
)

// Signer signs messages with the keys of a Keyring.
type Signer struct {
	Keys     *Keyring
	Unsigned UnsignedPolicy
	// Subdomains: SubdomainsParent when empty.
	Subdomains SubdomainSigning
}

// Sign signs msg, a whole message with CRLF line ends (see CRLF). It
// returns the DKIM-Signature fields to prepend; it never changes msg.
func (s *Signer) Sign(msg []byte) (Result, error) {
	hdr, _, ok := bytes.Cut(msg, []byte("\r\n\r\n"))
	if !ok {
		hdr = msg
	}
	fields := parseHeader(hdr)
	var res Result
	from, err := fromDomain(fields)
	if err != nil {
		res.Reason = err.Error()
		return s.unsigned(res), nil
	}
	res.FromDomain = from
	domain, keys, err := s.Keys.For(from, s.Subdomains != SubdomainsOwn)
	if err != nil {
		return res, err
	}
	if len(keys) == 0 {
		res.Reason = "no signing key for " + from
		if s.Subdomains == SubdomainsOwn {
			res.Reason += " (signer.subdomains = own: a parent's keys do not sign it)"
		}
		return s.unsigned(res), nil
	}
	res.Domain = domain
	if domain != from {
		res.Reason = "signed with d=" + domain + ", the parent of " + from + ": aligned under relaxed DKIM alignment (adkim=r) only"
	}
	headerKeys := signedHeaderKeys(fields)
	for _, k := range keys {
		sig, err := s.signOne(msg, domain, k.Key.Selector, k.Signer, headerKeys)
		if err != nil {
			return res, fmt.Errorf("signing for %s with %s: %w", from, k.Key.ID(), err)
		}
		res.Signatures = append(res.Signatures, sig)
		res.Selectors = append(res.Selectors, k.Key.Selector)
	}
	res.Outcome = OutcomeSigned
	return res, nil
}

func (s *Signer) unsigned(res Result) Result {
	res.Outcome = OutcomeUnsigned
	if s.Unsigned == UnsignedRefuse {
		res.Outcome = OutcomeRefused
	}
	return res
}

func (s *Signer) signOne(msg []byte, domain, selector string, key crypto.Signer, headerKeys []string) (string, error) {
	opts := &dkim.SignOptions{
		Domain:                 domain,
		Selector:               selector,
		Signer:                 key,
		Hash:                   crypto.SHA256,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             headerKeys,
	}
	signer, err := dkim.NewSigner(opts)
	if err != nil {
		return "", err
	}
	if _, err := signer.Write(msg); err != nil {
		signer.Close()
		return "", err
	}
	if err := signer.Close(); err != nil {
		return "", err
	}
	return signer.Signature(), nil
}

// headerField is one field of a message header.
type headerField struct {
	name  string // as written
	value string // unfolded, trimmed
}

// parseHeader splits a header block (CRLF line ends) into fields.
func parseHeader(hdr []byte) []headerField {
	var fields []headerField
	for _, line := range strings.Split(string(hdr), "\r\n") {
		if line == "" {
			continue
		}
		if (line[0] == ' ' || line[0] == '\t') && len(fields) > 0 {
			fields[len(fields)-1].value += " " + strings.TrimSpace(line)
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue // not a field: verifiers ignore it too
		}
		fields = append(fields, headerField{name: strings.TrimSpace(name), value: strings.TrimSpace(value)})
	}
	return fields
}

// signedHeaderKeys is the h= list for a message with these fields.
func signedHeaderKeys(fields []headerField) []string {
	count := map[string]int{}
	for _, f := range fields {
		count[strings.ToLower(f.name)]++
	}
	var keys []string
	for _, name := range oversignedHeaders {
		for range count[strings.ToLower(name)] + 1 {
			keys = append(keys, name)
		}
	}
	for _, name := range presentHeaders {
		for range count[strings.ToLower(name)] {
			keys = append(keys, name)
		}
	}
	return keys
}

// fromDomain is the domain of the message's single From field (RFC 5322
// §3.6.2; DMARC evaluates that one, RFC 7489 §6.6.1).
func fromDomain(fields []headerField) (string, error) {
	var from []string
	for _, f := range fields {
		if strings.EqualFold(f.name, "From") {
			from = append(from, f.value)
		}
	}
	if len(from) != 1 {
		return "", fmt.Errorf("the message has %d From fields, not one", len(from))
	}
	var addrs []string
	if list, err := mail.ParseAddressList(from[0]); err == nil {
		for _, a := range list {
			addrs = append(addrs, a.Address)
		}
	} else {
		// A display name in a charset net/mail cannot decode: take the
		// address in angle brackets.
		v := from[0]
		if i := strings.LastIndexByte(v, '<'); i >= 0 {
			v = v[i+1:]
			if j := strings.IndexByte(v, '>'); j >= 0 {
				addrs = append(addrs, v[:j])
			}
		}
	}
	domain := ""
	for _, a := range addrs {
		at := strings.LastIndexByte(a, '@')
		if at < 0 {
			return "", errors.New("the From address has no domain")
		}
		d := strings.ToLower(a[at+1:])
		if domain != "" && d != domain {
			return "", errors.New("the From field names addresses of several domains")
		}
		domain = d
	}
	if domain == "" {
		return "", errors.New("the From field holds no address")
	}
	return domain, nil
}

// CRLF returns msg with every bare LF made CRLF, as SMTP carries it.
func CRLF(msg []byte) []byte {
	if !bytes.Contains(msg, []byte("\n")) {
		return msg
	}
	out := make([]byte, 0, len(msg)+len(msg)/40)
	for i, c := range msg {
		if c == '\n' && (i == 0 || msg[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}
