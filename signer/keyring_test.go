package signer

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/dmarcd/dmarcd"
)

// fromDomain returns testMessage with its From in domain.
func messageFrom(domain string) string {
	return strings.Replace(testMessage, "joe@football.example.com", "joe@"+domain, 1)
}

// TestKeyringBadKeyFile: a garbage private key file among good ones, at
// start and while running, disables its key only: mail of the healthy
// domains is signed and dkimpy verifies it; the metrics name the bad key.
func TestKeyringBadKeyFile(t *testing.T) {
	needDKIMPy(t)
	st := newStore(t)
	good := makeKey(t, st, "good.example", "g1", dmarcd.AlgorithmRSA, dmarcd.KeyCurrent)
	bad := makeKey(t, st, "ed.example", "e1", dmarcd.AlgorithmEd25519, dmarcd.KeyCurrent)
	spoil := func(k dmarcd.Key) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(st.Dir(), k.Domain, k.Selector+".pem"), []byte("-----BEGIN GARBAGE-----\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	spoil(bad)
	ring, err := NewKeyring(st, 0, nil)
	if err != nil {
		t.Fatalf("one bad key file stopped the keyring at start: %v", err)
	}
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ring.Instrument(m)
	s := &Signer{Keys: ring, Unsigned: UnsignedPass}
	check := func(domain string, want []string, records map[string]string) {
		t.Helper()
		msg, res := signed(t, s, messageFrom(domain))
		if strings.Join(res.Selectors, ",") != strings.Join(want, ",") {
			t.Fatalf("mail from %s signed with %q, want %q", domain, res.Selectors, want)
		}
		for i, ok := range dkimpyVerify(t, msg, records) {
			if !ok {
				t.Errorf("dkimpy: signature %d of the mail from %s does not verify", i, domain)
			}
		}
	}
	check("good.example", []string{"g1"}, recordsOf(good))
	check("ed.example", nil, nil) // unsigned, passed on
	if _, ok := ring.Problems()["e1._domainkey.ed.example"]; !ok {
		t.Errorf("problems: %v", ring.Problems())
	}
	if got := gaugeValue(t, m.KeyUnusable.WithLabelValues("e1._domainkey.ed.example")); got != 1 {
		t.Errorf("key_unusable{e1} = %v", got)
	}
	if got := gaugeValue(t, m.KeysUsable); got != 1 {
		t.Errorf("keys_usable = %v", got)
	}

	// While running: a new key with a broken file, and the good domain
	// rotates; both healthy keys sign.
	next := makeKey(t, st, "good.example", "g2", dmarcd.AlgorithmRSA, dmarcd.KeySigning)
	broken := makeKey(t, st, "other.example", "o1", dmarcd.AlgorithmRSA, dmarcd.KeyCurrent)
	spoil(broken)
	check("good.example", []string{"g1", "g2"}, recordsOf(good, next))
	check("other.example", nil, nil)
	if len(ring.Problems()) != 2 {
		t.Errorf("problems: %v", ring.Problems())
	}
}

// TestKeyringRetireDuringBrokenReload: a key retired while another key's
// files are broken stops signing at the next check: a broken file never
// freezes the keyring on the keys read before.
func TestKeyringRetireDuringBrokenReload(t *testing.T) {
	st := newStore(t)
	leaked := makeKey(t, st, "example.com", "leaked", dmarcd.AlgorithmEd25519, dmarcd.KeyCurrent)
	other := makeKey(t, st, "example.org", "o1", dmarcd.AlgorithmEd25519, dmarcd.KeyCurrent)
	ring, err := NewKeyring(st, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &Signer{Keys: ring, Unsigned: UnsignedPass}
	if _, res := signed(t, s, messageFrom("example.com")); len(res.Selectors) != 1 {
		t.Fatalf("before: %v", res.Selectors)
	}
	// The other domain's metadata breaks, then the leaked key is retired.
	if err := os.WriteFile(filepath.Join(st.Dir(), other.Domain, other.Selector+".json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	moveTo(t, st, leaked, dmarcd.KeyRetired)
	if _, res := signed(t, s, messageFrom("example.com")); len(res.Selectors) != 0 {
		t.Errorf("the retired key still signs: %v", res.Selectors)
	}
	if _, res := signed(t, s, messageFrom("example.org")); len(res.Selectors) != 0 {
		t.Errorf("a key whose metadata cannot be read still signs: %v", res.Selectors)
	}
}

// TestKeyringUnreadableStore: while the store cannot be read at all,
// nothing is signed with the keys read before (they may have been retired
// since): Sign fails with ErrKeysUnavailable, which the front ends answer
// with a temporary error; once the store reads again, signing resumes.
func TestKeyringUnreadableStore(t *testing.T) {
	st := newStore(t)
	makeKey(t, st, "example.com", "k1", dmarcd.AlgorithmEd25519, dmarcd.KeyCurrent)
	ring, err := NewKeyring(st, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := NewMetrics(nil)
	ring.Instrument(m)
	s := &Signer{Keys: ring, Unsigned: UnsignedPass}
	moved := st.Dir() + ".away"
	if err := os.Rename(st.Dir(), moved); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sign([]byte(messageFrom("example.com"))); !errors.Is(err, ErrKeysUnavailable) {
		t.Errorf("Sign with the store gone: %v", err)
	}
	if got := gaugeValue(t, m.KeystoreReadable); got != 0 {
		t.Errorf("keystore_readable = %v", got)
	}
	if err := os.Rename(moved, st.Dir()); err != nil {
		t.Fatal(err)
	}
	if res, err := s.Sign([]byte(messageFrom("example.com"))); err != nil || len(res.Selectors) != 1 {
		t.Errorf("after the store is back: %v %v", res.Selectors, err)
	}
}

// gaugeValue reads a gauge.
func gaugeValue(t testing.TB, g prometheus.Gauge) float64 {
	t.Helper()
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}
