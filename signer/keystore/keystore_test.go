//go:debug rsa1024min=0

package keystore

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/internal/testserver"
)

func openTemp(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "keys"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestGenerate(t *testing.T) {
	s := openTemp(t)
	rsaKey, err := s.Generate(GenerateOptions{Domain: "example.com", Selector: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	if rsaKey.Algorithm != dmarcd.AlgorithmRSA || rsaKey.Bits != 2048 || rsaKey.State != dmarcd.KeyCreated {
		t.Fatalf("default key: %+v", rsaKey)
	}
	edKey, err := s.Generate(GenerateOptions{Domain: "example.com", Selector: "e1", Algorithm: "ed25519"})
	if err != nil {
		t.Fatal(err)
	}
	if edKey.Algorithm != dmarcd.AlgorithmEd25519 || len(edKey.PublicKey) != ed25519.PublicKeySize {
		t.Fatalf("ed25519 key: %+v", edKey)
	}
	for _, bits := range []int{512, 1023, 8192} {
		if _, err := s.Generate(GenerateOptions{Domain: "example.com", Selector: fmt.Sprint("b", bits), Bits: bits}); err == nil {
			t.Errorf("an RSA key of %d bits was generated", bits)
		}
	}
	if _, err := s.Generate(GenerateOptions{Domain: "example.com", Selector: "r1"}); !errors.Is(err, ErrExists) {
		t.Errorf("a second r1: %v, want ErrExists", err)
	}
	for _, bad := range [][2]string{{"../etc", "x"}, {"example.com", "../x"}, {"Example.com", "x"}, {"example.com", "a/b"}, {"com", "x"}} {
		if _, err := s.Generate(GenerateOptions{Domain: bad[0], Selector: bad[1], Algorithm: "ed25519"}); err == nil {
			t.Errorf("domain %q selector %q accepted", bad[0], bad[1])
		}
	}
	// Private key files are 0600, the folders 0700.
	for _, sel := range []string{"r1", "e1"} {
		info, err := os.Stat(s.keyPath("example.com", sel))
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", sel, info.Mode().Perm())
		}
	}
	for _, d := range []string{s.Dir(), filepath.Join(s.Dir(), "example.com")} {
		if info, _ := os.Stat(d); info.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v, want 0700", d, info.Mode().Perm())
		}
	}
	keys, err := s.List()
	if err != nil || len(keys) != 2 || keys[0].Selector != "e1" {
		t.Fatalf("List: %v %+v", err, keys)
	}
	// The metadata holds no private key.
	meta, _ := os.ReadFile(s.metaPath("example.com", "r1"))
	if strings.Contains(string(meta), "PRIVATE") {
		t.Fatal("the metadata holds a private key")
	}
}

// TestKeyFileModeUnderUmask: a permissive umask does not widen the mode.
func TestKeyFileModeUnderUmask(t *testing.T) {
	old := setUmask(0)
	defer setUmask(old)
	s := openTemp(t)
	if _, err := s.Generate(GenerateOptions{Domain: "example.com", Selector: "e1", Algorithm: "ed25519"}); err != nil {
		t.Fatal(err)
	}
	if info, _ := os.Stat(s.keyPath("example.com", "e1")); info.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v under umask 0", info.Mode().Perm())
	}
}

func TestSignerHidesKey(t *testing.T) {
	s := openTemp(t)
	if _, err := s.Generate(GenerateOptions{Domain: "example.com", Selector: "e1", Algorithm: "ed25519"}); err != nil {
		t.Fatal(err)
	}
	signer, err := s.Signer("example.com", "e1")
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, _ := os.ReadFile(s.keyPath("example.com", "e1"))
	priv, _ := ParsePrivateKey(pemBytes)
	seed := fmt.Sprintf("%x", priv.(ed25519.PrivateKey).Seed())
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%x"} {
		out := fmt.Sprintf(format, signer)
		if strings.Contains(out, seed) || strings.Contains(out, fmt.Sprintf("%v", priv)) {
			t.Errorf("%s shows the private key: %s", format, out)
		}
	}
	if _, ok := signer.(ed25519.PrivateKey); ok {
		t.Error("the signer is the private key itself")
	}
}

func pkcs1(t *testing.T, k *rsa.PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}

func pkcs8(t *testing.T, k any) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func TestImport(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	small, _ := rsa.GenerateKey(rand.Reader, 768)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	s := openTemp(t)
	ctx := context.Background()
	for _, c := range []struct {
		name string
		pem  []byte
		ok   bool
	}{
		{"pkcs1", pkcs1(t, rsaKey), true},
		{"pkcs8-rsa", pkcs8(t, rsaKey), true},
		{"pkcs8-ed25519", pkcs8(t, edKey), true},
		{"too-small", pkcs1(t, small), false},
		{"garbage", []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), false},
		{"empty", nil, false},
		{"encrypted", []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"), false},
	} {
		k, err := s.Import(ctx, ImportOptions{Domain: "example.com", Selector: c.name, PEM: c.pem})
		if (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if err != nil {
			if strings.Contains(err.Error(), "AAAA") {
				t.Errorf("%s: the error quotes the input: %v", c.name, err)
			}
			continue
		}
		if _, err := s.Signer("example.com", c.name); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if k.State != dmarcd.KeyCreated {
			t.Errorf("%s: state %s without a DNS check", c.name, k.State)
		}
	}
}

func TestImportChecksDNS(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	other, _ := rsa.GenerateKey(rand.Reader, 1024)
	probe, _ := describe("example.com", "s1", rsaKey)
	probe.State = dmarcd.KeyCurrent
	otherProbe, _ := describe("example.com", "s1", other)
	otherProbe.State = dmarcd.KeyCurrent
	dns := map[string][]string{}
	lookup := func(_ context.Context, name string) ([]string, error) { return dns[name], nil }

	// Published with another key: refused.
	dns["s1._domainkey.example.com"] = []string{otherProbe.TXT()}
	if _, err := s.Import(ctx, ImportOptions{Domain: "example.com", Selector: "s1", PEM: pkcs1(t, rsaKey), Lookup: lookup}); !errors.Is(err, ErrRecordMismatch) {
		t.Fatalf("mismatching record: %v", err)
	}
	// Published with this key: imported as published.
	dns["s1._domainkey.example.com"] = []string{"some other text", probe.TXT()}
	k, err := s.Import(ctx, ImportOptions{Domain: "example.com", Selector: "s1", PEM: pkcs1(t, rsaKey), Lookup: lookup})
	if err != nil || k.State != dmarcd.KeyPublished {
		t.Fatalf("matching record: %v %s", err, k.State)
	}
	// No record: created.
	k, err = s.Import(ctx, ImportOptions{Domain: "example.com", Selector: "s2", PEM: pkcs1(t, other), Lookup: lookup})
	if err != nil || k.State != dmarcd.KeyCreated {
		t.Fatalf("no record: %v %s", err, k.State)
	}
}

// TestImportOpenDKIM: a key written by opendkim-genkey imports, signs,
// and matches the record opendkim-genkey wrote beside it.
func TestImportOpenDKIM(t *testing.T) {
	pemBytes, txt := testserver.OpenDKIMGenkey(t, 2048, "mail", "example.com")
	record := ZoneTXT(string(txt))
	lookup := func(_ context.Context, name string) ([]string, error) {
		if name == "mail._domainkey.example.com" {
			return []string{record}, nil
		}
		return nil, nil
	}
	s := openTemp(t)
	k, err := s.Import(context.Background(), ImportOptions{Domain: "example.com", Selector: "mail", PEM: pemBytes, Lookup: lookup})
	if err != nil {
		t.Fatal(err)
	}
	if k.State != dmarcd.KeyPublished || k.Bits != 2048 {
		t.Fatalf("imported %s, %d bits; want published (its record matches), 2048", k.State, k.Bits)
	}
	if _, err := s.Signer("example.com", "mail"); err != nil {
		t.Fatal(err)
	}
}

func TestTransitions(t *testing.T) {
	s := openTemp(t)
	gen := func(sel, alg string) dmarcd.Key {
		k, err := s.Generate(GenerateOptions{Domain: "example.com", Selector: sel, Algorithm: alg})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	move := func(sel string, to dmarcd.KeyState) []Move {
		t.Helper()
		m, err := s.Transition("example.com", sel, to)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	gen("a", "ed25519")
	if _, err := s.Transition("example.com", "a", dmarcd.KeyCurrent); !errors.Is(err, ErrBadTransition) {
		t.Fatalf("created -> current: %v", err)
	}
	move("a", dmarcd.KeyPublished)
	move("a", dmarcd.KeySigning)
	move("a", dmarcd.KeyCurrent)
	gen("rsa", "rsa")
	for _, st := range []dmarcd.KeyState{dmarcd.KeyPublished, dmarcd.KeySigning, dmarcd.KeyCurrent} {
		if m := move("rsa", st); len(m) != 1 {
			t.Fatalf("the RSA key's move retired %v: keys of another algorithm stay", m)
		}
	}
	gen("b", "ed25519")
	move("b", dmarcd.KeyPublished)
	move("b", dmarcd.KeySigning)
	m := move("b", dmarcd.KeyCurrent)
	if len(m) != 2 || m[0].Key.Selector != "a" || m[0].To != dmarcd.KeyRetired {
		t.Fatalf("b -> current: %+v, want a retired", m)
	}
	move("a", dmarcd.KeyRevoked)
	if k, _ := s.Get("example.com", "a"); k.TXT() != "v=DKIM1; k=ed25519; p=" {
		t.Fatalf("revoked TXT %q", k.TXT())
	}
	move("a", dmarcd.KeyDeleted)
	if _, err := os.Stat(s.keyPath("example.com", "a")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the deleted key's file: %v", err)
	}
	if _, err := s.Generate(GenerateOptions{Domain: "example.com", Selector: "a", Algorithm: "ed25519"}); !errors.Is(err, ErrExists) {
		t.Fatalf("reusing a deleted selector: %v", err)
	}
	signing, problems, err := s.SigningKeys()
	if err != nil || len(signing["example.com"]) != 2 || len(problems) != 0 {
		t.Fatalf("SigningKeys: %v %v %v", err, signing, problems)
	}
}

// TestSigningKeysPerKey: a broken private key file or metadata file
// disables its key only; the other keys sign, and List, which the keys
// commands use, fails loudly.
func TestSigningKeysPerKey(t *testing.T) {
	s := openTemp(t)
	for _, k := range []struct{ domain, selector string }{{"good.example", "a"}, {"bad.example", "pem"}, {"broken.example", "json"}, {"other.example", "b"}} {
		if _, err := s.Generate(GenerateOptions{Domain: k.domain, Selector: k.selector, Algorithm: "ed25519"}); err != nil {
			t.Fatal(err)
		}
		for _, st := range []dmarcd.KeyState{dmarcd.KeyPublished, dmarcd.KeySigning, dmarcd.KeyCurrent} {
			if _, err := s.Transition(k.domain, k.selector, st); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.WriteFile(s.keyPath("bad.example", "pem"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.metaPath("broken.example", "json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	signing, problems, err := s.SigningKeys()
	if err != nil {
		t.Fatal(err)
	}
	if len(signing["good.example"]) != 1 || len(signing["other.example"]) != 1 || len(signing["bad.example"]) != 0 || len(signing["broken.example"]) != 0 {
		t.Errorf("signing keys: %v", signing)
	}
	ids := map[string]bool{}
	for _, p := range problems {
		ids[p.ID] = true
		if strings.Contains(p.Err.Error(), "garbage") {
			t.Errorf("a problem quotes the file: %v", p.Err)
		}
	}
	if len(problems) != 2 || !ids["pem._domainkey.bad.example"] || !ids["json._domainkey.broken.example"] {
		t.Errorf("problems: %v", problems)
	}
	if _, err := s.List(); err == nil {
		t.Error("List of a store with a broken metadata file succeeded")
	}
}

func TestBIND(t *testing.T) {
	s := openTemp(t)
	k, err := s.Generate(GenerateOptions{Domain: "example.com", Selector: "big", Bits: 4096})
	if err != nil {
		t.Fatal(err)
	}
	line := BIND(k)
	if !strings.HasPrefix(line, "big._domainkey.example.com. IN TXT \"v=DKIM1; k=rsa; p=") {
		t.Fatalf("BIND: %s", line)
	}
	parts := strings.Split(line, "\"")
	var joined string
	for i := 1; i < len(parts); i += 2 {
		if len(parts[i]) > 255 {
			t.Errorf("string of %d characters", len(parts[i]))
		}
		joined += parts[i]
	}
	if joined != k.TXT() || len(parts) < 7 {
		t.Fatalf("the strings do not join to the record (%d strings)", len(parts)/2)
	}
	if got := ZoneTXT(line); got != k.TXT() {
		t.Fatalf("ZoneTXT(BIND) = %q", got)
	}
}
