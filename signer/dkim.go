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
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/dmarcd/dmarcd/signer/keystore"
)

// DefaultReloadInterval is how often the signer looks for key store
// changes (a listing of the folder and file times, not a read of the keys).
const DefaultReloadInterval = 5 * time.Second

// Keyring holds the signing keys of a key store and reads them again when
// the store changes.
type Keyring struct {
	store    *keystore.Store
	interval time.Duration
	log      *slog.Logger

	mu      sync.Mutex
	checked time.Time
	stamp   string
	keys    map[string][]keystore.SigningKey
}

// NewKeyring reads the signing keys of store. It looks for changes at most
// every interval (0: before every message).
func NewKeyring(store *keystore.Store, interval time.Duration, log *slog.Logger) (*Keyring, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Keyring{store: store, interval: interval, log: log}
	if err := r.reload(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Keyring) reload() error {
	stamp, err := r.store.Stamp()
	if err != nil {
		return err
	}
	r.checked = time.Now()
	if stamp == r.stamp && r.keys != nil {
		return nil
	}
	keys, err := r.store.SigningKeys()
	if err != nil {
		return err
	}
	r.keys, r.stamp = keys, stamp
	n := 0
	for _, ks := range keys {
		n += len(ks)
	}
	r.log.Info("signing keys loaded", "dir", r.store.Dir(), "domains", len(keys), "keys", n)
	return nil
}

// For returns the signing domain and keys for mail from fromDomain: the
// domain's own keys, else those of its nearest parent domain that has keys
// (relaxed DMARC alignment, RFC 7489 §3.1.1).
func (r *Keyring) For(fromDomain string) (string, []keystore.SigningKey) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) >= r.interval {
		if err := r.reload(); err != nil {
			// Keep signing with the keys we have; say so once per check.
			r.log.Error("reading the key store failed; signing with the keys read before", "dir", r.store.Dir(), "err", err)
			r.checked = time.Now()
		}
	}
	d := strings.ToLower(strings.TrimSuffix(fromDomain, "."))
	for strings.Contains(d, ".") {
		if ks := r.keys[d]; len(ks) > 0 {
			return d, ks
		}
		_, d, _ = strings.Cut(d, ".")
	}
	return "", nil
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

// Signer signs messages with the keys of a Keyring.
type Signer struct {
	Keys     *Keyring
	Unsigned UnsignedPolicy
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
	domain, keys := s.Keys.For(from)
	if len(keys) == 0 {
		res.Reason = "no signing key for " + from
		return s.unsigned(res), nil
	}
	res.Domain = domain
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
