package main

import (
	"context"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/advisor/alert"
	"github.com/dmarcd/dmarcd/signer/keystore"
)

// TestKeysCommands runs the keys commands through a rotation and checks
// that no output or log line holds key material and key files are 0600.
func TestKeysCommands(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	base := []string{"--store", filepath.Join(dir, "d.db"), "keys", "--dir", keys}
	var out, errs strings.Builder
	run := func(want int, args ...string) string {
		t.Helper()
		code, stdout, stderr := runCLI(t, append(append([]string{}, base...), args...)...)
		out.WriteString(stdout)
		errs.WriteString(stderr)
		if code != want {
			t.Fatalf("%v: exit %d, want %d\n%s%s", args, code, want, stdout, stderr)
		}
		return stdout
	}
	run(0, "generate", "--domain", "example.com", "--selector", "s1", "--bits", "1024")
	run(0, "generate", "--domain", "example.com", "--selector", "e1", "--algorithm", "ed25519")
	run(2, "generate", "--domain", "example.com", "--selector", "weak", "--bits", "512")
	run(2, "generate", "--domain", "example.com", "--selector", "s1")

	// An import of an opendkim-genkey key, when the tool is here; of a
	// PKCS#1 key made here otherwise.
	keyFile := filepath.Join(dir, "mail.private")
	if _, err := os.Stat("/usr/sbin/opendkim-genkey"); err == nil {
		if b, err := exec.Command("/usr/sbin/opendkim-genkey", "-b", "1024", "-s", "mail", "-d", "example.com", "-D", dir).CombinedOutput(); err != nil {
			t.Fatalf("opendkim-genkey: %v %s", err, b)
		}
	} else if os.Getenv("CI") == "true" {
		t.Fatal("opendkim-genkey is missing (apt-get install opendkim-tools)")
	} else {
		t.Log("opendkim-genkey is missing: importing a key made here")
		b, _ := os.ReadFile(filepath.Join(keys, "example.com", "s1.pem"))
		os.WriteFile(keyFile, b, 0o600)
	}
	run(0, "import", "--domain", "example.org", "--selector", "mail", "--offline", keyFile)

	for range 3 { // created -> published -> signing -> current
		run(0, "advance", "--domain", "example.com", "--selector", "s1", "--force")
	}
	if got := run(0, "list"); !strings.Contains(got, "s1        rsa-sha256      1024  current") {
		t.Fatalf("list:\n%s", got)
	}
	rot := run(0, "rotate", "--domain", "example.com", "--algorithm", "rsa", "--selector", "s2")
	if !strings.Contains(rot, "s2._domainkey.example.com. IN TXT \"v=DKIM1; k=rsa; p=") || !strings.Contains(rot, "s1 -> s2") {
		t.Fatalf("rotate:\n%s", rot)
	}
	for range 3 {
		run(0, "advance", "--domain", "example.com", "--selector", "s2", "--force")
	}
	if got := run(0, "list", "--domain", "example.com"); !strings.Contains(got, "s1        rsa-sha256      1024  retired") {
		t.Fatalf("s2 current did not retire s1:\n%s", got)
	}
	run(0, "advance", "--domain", "example.com", "--selector", "s1", "--force") // revoked
	if got := run(0, "dns", "--domain", "example.com"); !strings.Contains(got, "s1._domainkey.example.com. IN TXT \"v=DKIM1; k=rsa; p=\"") {
		t.Fatalf("dns: the revoked key is not published with p=:\n%s", got)
	}
	run(0, "retire", "--domain", "example.com", "--selector", "s2")
	run(2, "retire", "--domain", "example.com", "--selector", "s2")
	run(0, "advance") // checks only; nothing is ready

	// Key files are 0600; no output holds key material.
	all := out.String() + errs.String()
	if strings.Contains(all, "PRIVATE KEY") || strings.Contains(all, "-----BEGIN") {
		t.Fatal("a PEM marker in the output")
	}
	files, _ := filepath.Glob(filepath.Join(keys, "*", "*.pem"))
	if len(files) < 3 {
		t.Fatalf("key files: %v", files)
	}
	for _, f := range files {
		info, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v", f, info.Mode().Perm())
		}
		b, _ := os.ReadFile(f)
		block, _ := pem.Decode(b)
		body := strings.Join(strings.Fields(string(b[strings.Index(string(b), "\n")+1:strings.LastIndex(strings.TrimSpace(string(b)), "\n")])), "")
		if block == nil || len(body) < 40 {
			t.Fatalf("%s: not PEM", f)
		}
		// The key's base64, whole and in pieces as long as a line.
		for i := 0; i+40 <= len(body); i += 40 {
			if strings.Contains(strings.ReplaceAll(all, "\n", ""), body[i:i+40]) {
				t.Fatalf("the output holds a piece of the private key %s", f)
			}
		}
	}
}

func TestKeysSignerConfig(t *testing.T) {
	dir := t.TempDir()
	example, err := os.ReadFile("../../dmarcd.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfigBytes(t, dir, string(example))
	if err != nil {
		t.Fatalf("the example config: %v", err)
	}
	if !reflect.DeepEqual(cfg.Keys, defaultKeysConfig()) || !reflect.DeepEqual(cfg.Signer, defaultSignerConfig()) {
		t.Errorf("the example's [keys] and [signer] differ from the defaults:\n%+v\n%+v", cfg.Keys, cfg.Signer)
	}
	for _, bad := range []string{
		"[signer]\nunsigned = \"drop\"",
		"[signer]\nsmtp_listen = \"127.0.0.1:2525\"", // no next hop
		"[signer]\nusers_file = \"/etc/users\"",      // AUTH needs TLS
		"[signer]\nallowed_networks = [\"everyone\"]",
		"[signer]\nmax_message_bytes = 0",
		"[keys]\nrsa_bits = 512",
		"[keys]\nalgorithms = [\"dsa\"]",
		"[keys]\nrotation_period = 180",
	} {
		if _, err := loadConfigBytes(t, dir, bad); err == nil {
			t.Errorf("accepted: %s", bad)
		}
	}
}

// TestUnusableKeysAlert: a key whose private key file is broken is told by
// the key-unusable alert, with its domain; the healthy keys are not.
func TestUnusableKeysAlert(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	st, err := keystore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"good.example", "bad.example"} {
		if _, err := st.Generate(keystore.GenerateOptions{Domain: d, Selector: "s1", Algorithm: "ed25519"}); err != nil {
			t.Fatal(err)
		}
		for _, s := range []dmarcd.KeyState{dmarcd.KeyPublished, dmarcd.KeySigning, dmarcd.KeyCurrent} {
			if _, err := st.Transition(d, "s1", s); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.example", "s1.pem"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Keys: KeysConfig{Dir: dir}}
	alerts, err := alert.KeysUnusable(func(context.Context) ([]alert.UnusableKey, error) { return unusableKeys(cfg) }).Detect(context.Background(), testNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(alerts) != 1 || alerts[0].Domain != "bad.example" || alerts[0].Kind != dmarcd.AlertKeyUnusable || alerts[0].Subject != "s1._domainkey.bad.example" {
		t.Fatalf("alerts: %+v", alerts)
	}
	if keys, err := storedKeys(cfg); err != nil || len(keys) != 2 {
		t.Errorf("stored keys: %d, %v", len(keys), err)
	}
}

// TestKeysCommandsBrokenKey: with one key's files broken, the keys
// commands do their work on the others and fail loudly (exit 1, the key
// named on stderr); list flags a signing key whose private key file is
// broken; rotate refuses the domain of an unreadable key.
func TestKeysCommandsBrokenKey(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	base := []string{"--store", filepath.Join(dir, "d.db"), "keys", "--dir", keys}
	run := func(want int, args ...string) (string, string) {
		t.Helper()
		code, stdout, stderr := runCLI(t, append(append([]string{}, base...), args...)...)
		if code != want {
			t.Fatalf("%v: exit %d, want %d\n%s%s", args, code, want, stdout, stderr)
		}
		return stdout, stderr
	}
	for _, d := range []string{"good.example", "meta.example", "pem.example"} {
		run(0, "generate", "--domain", d, "--selector", "s1", "--algorithm", "ed25519")
		for range 3 {
			run(0, "advance", "--domain", d, "--selector", "s1", "--force")
		}
	}
	os.WriteFile(filepath.Join(keys, "meta.example", "s1.json"), []byte("{"), 0o600)
	os.WriteFile(filepath.Join(keys, "pem.example", "s1.pem"), []byte("garbage"), 0o600)

	out, errs := run(1, "list")
	if !strings.Contains(out, "good.example") || !strings.Contains(errs, "s1._domainkey.meta.example cannot be read") {
		t.Errorf("list:\n%s%s", out, errs)
	}
	if !regexp.MustCompile(`pem\.example .*CANNOT SIGN`).MatchString(out) {
		t.Errorf("list does not flag the broken private key:\n%s", out)
	}
	if out, _ := run(1, "dns"); !strings.Contains(out, "s1._domainkey.good.example") {
		t.Errorf("dns:\n%s", out)
	}
	run(1, "rotate", "--domain", "meta.example")
	out, _ = run(1, "rotate", "--domain", "good.example", "--selector", "s2", "--algorithm", "ed25519")
	if !strings.Contains(out, "s2._domainkey.good.example") {
		t.Errorf("rotate of a healthy domain:\n%s", out)
	}
	run(0, "retire", "--domain", "good.example", "--selector", "s1")
}
