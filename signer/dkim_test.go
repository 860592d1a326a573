package signer

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/internal/testserver"
	"github.com/dmarcd/dmarcd/signer/keystore"
)

const testMessage = "From: Joe SixPack <joe@football.example.com>\r\n" +
	"To: Suzie Q <suzie@shopping.example.net>\r\n" +
	"Subject: Is dinner ready?\r\n" +
	"Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n" +
	"Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"\r\n" +
	"Hi.\r\n" +
	"\r\n" +
	"We lost the game.  Are you hungry yet?\r\n" +
	"\r\n" +
	"Joe.\r\n"

// signed signs msg and returns the signatures prepended.
func signed(t *testing.T, s *Signer, msg string) ([]byte, Result) {
	t.Helper()
	res, err := s.Sign([]byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(strings.Join(res.Signatures, "") + msg), res
}

func TestSignVerifiesEverywhere(t *testing.T) {
	needDKIMPy(t)
	for _, c := range []struct {
		name string
		keys [][2]string // selector, algorithm
	}{
		{"rsa", [][2]string{{"r1", dmarcd.AlgorithmRSA}}},
		{"ed25519", [][2]string{{"e1", dmarcd.AlgorithmEd25519}}},
		{"two rsa (rotation)", [][2]string{{"r1", dmarcd.AlgorithmRSA}, {"r2", dmarcd.AlgorithmRSA}}},
		{"rsa and ed25519", [][2]string{{"r1", dmarcd.AlgorithmRSA}, {"e1", dmarcd.AlgorithmEd25519}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := newStore(t)
			var keys []dmarcd.Key
			for i, k := range c.keys {
				state := dmarcd.KeyCurrent
				if i > 0 && k[1] == c.keys[0][1] {
					state = dmarcd.KeySigning // the new key of a rotation
				}
				keys = append(keys, makeKey(t, st, "football.example.com", k[0], k[1], state))
			}
			ring, err := NewKeyring(st, 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			s := &Signer{Keys: ring, Unsigned: UnsignedPass}
			msg, res := signed(t, s, testMessage)
			if res.Outcome != OutcomeSigned || len(res.Signatures) != len(keys) {
				t.Fatalf("result %+v: want %d signatures", res, len(keys))
			}
			records := recordsOf(keys...)

			for i, tags := range signatureTags(msg) {
				if tags["c"] != "relaxed/relaxed" {
					t.Errorf("signature %d: c=%s, want relaxed/relaxed", i, tags["c"])
				}
				if _, ok := tags["l"]; ok {
					t.Errorf("signature %d has l=", i)
				}
				h := strings.Split(strings.ToLower(tags["h"]), ":")
				for _, name := range []string{"from", "subject", "date", "to", "message-id", "mime-version", "content-type"} {
					if n := count(h, name); n != 2 {
						t.Errorf("signature %d: h= lists %s %d times, want 2 (oversigned)", i, name, n)
					}
				}
				for _, name := range []string{"cc", "reply-to"} {
					if n := count(h, name); n != 1 {
						t.Errorf("signature %d: h= lists absent %s %d times, want 1", i, name, n)
					}
				}
			}

			for i, err := range goVerify(t, msg, records) {
				if err != nil {
					t.Errorf("go-msgauth: signature %d (%s) fails: %v", i, selectors(msg)[i], err)
				}
			}
			for i, ok := range dkimpyVerify(t, msg, records) {
				if !ok {
					t.Errorf("dkimpy: signature %d (%s) fails", i, selectors(msg)[i])
				}
			}
			if n := len(dkimpyVerify(t, msg, records)); n != len(keys) {
				t.Errorf("dkimpy saw %d signatures, want %d", n, len(keys))
			}

			for _, tamper := range []struct{ name, old, new string }{
				{"body changed", "hungry yet", "hungry now"},
				{"header changed", "Subject: Is dinner ready?", "Subject: Is lunch ready?"},
				{"header added", "\r\n\r\nHi.", "\r\nCc: eve@example.net\r\n\r\nHi."},
			} {
				bad := bytes.Replace(msg, []byte(tamper.old), []byte(tamper.new), 1)
				if bytes.Equal(bad, msg) {
					t.Fatalf("%s: nothing changed", tamper.name)
				}
				for i, err := range goVerify(t, bad, records) {
					if err == nil {
						t.Errorf("%s: go-msgauth: signature %d still verifies", tamper.name, i)
					}
				}
				for i, ok := range dkimpyVerify(t, bad, records) {
					if ok {
						t.Errorf("%s: dkimpy: signature %d still verifies", tamper.name, i)
					}
				}
			}
		})
	}
}

func count(list []string, s string) int {
	n := 0
	for _, v := range list {
		if v == s {
			n++
		}
	}
	return n
}

func TestSignDomains(t *testing.T) {
	st := newStore(t)
	makeKey(t, st, "example.com", "s1", dmarcd.AlgorithmEd25519, dmarcd.KeyCurrent)
	makeKey(t, st, "example.org", "s0", dmarcd.AlgorithmEd25519, dmarcd.KeyPublished) // does not sign yet
	makeKey(t, st, "shop.example.com", "s9", dmarcd.AlgorithmEd25519, dmarcd.KeyCurrent)
	ring, err := NewKeyring(st, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		from       string
		policy     UnsignedPolicy
		outcome    string
		domain     string
		nsig       int
		subdomains SubdomainSigning
	}{
		{"From: a@example.com", UnsignedPass, OutcomeSigned, "example.com", 1, ""},
		{"From: \"A\" <a@News.Example.COM>", UnsignedPass, OutcomeSigned, "example.com", 1, ""}, // parent's key: relaxed alignment
		{"From: a@news.example.com", UnsignedPass, OutcomeUnsigned, "", 0, SubdomainsOwn},       // own keys only
		{"From: a@shop.example.com", UnsignedPass, OutcomeSigned, "shop.example.com", 1, SubdomainsOwn},
		{"From: a@eu.shop.example.com", UnsignedPass, OutcomeSigned, "shop.example.com", 1, SubdomainsParent}, // the nearest parent
		{"From: a@example.org", UnsignedPass, OutcomeUnsigned, "", 0, ""},
		{"From: a@example.org", UnsignedRefuse, OutcomeRefused, "", 0, ""},
		{"From: =?x-unknown?q?A?= <a@example.com>", UnsignedPass, OutcomeSigned, "example.com", 1, ""},
		{"From: a@example.com, b@example.net", UnsignedPass, OutcomeUnsigned, "", 0, ""},
		{"Subject: no from", UnsignedRefuse, OutcomeRefused, "", 0, ""},
	} {
		s := &Signer{Keys: ring, Unsigned: c.policy, Subdomains: c.subdomains}
		res, err := s.Sign([]byte(c.from + "\r\nSubject: x\r\n\r\nbody\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		if res.Outcome != c.outcome || res.Domain != c.domain || len(res.Signatures) != c.nsig {
			t.Errorf("%q (%s): got %s d=%q %d signatures (%s), want %s d=%q %d", c.from, c.policy, res.Outcome, res.Domain, len(res.Signatures), res.Reason, c.outcome, c.domain, c.nsig)
		}
	}
}

// TestKeyringReload: the signer picks up key store changes without a
// restart.
func TestKeyringReload(t *testing.T) {
	st := newStore(t)
	old := makeKey(t, st, "example.com", "old", dmarcd.AlgorithmEd25519, dmarcd.KeyCurrent)
	ring, err := NewKeyring(st, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &Signer{Keys: ring}
	sels := func() string {
		res, err := s.Sign([]byte("From: a@example.com\r\n\r\nx\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(res.Selectors, ",")
	}
	if got := sels(); got != "old" {
		t.Fatalf("one key: %s", got)
	}
	next := makeKey(t, st, "example.com", "new", dmarcd.AlgorithmEd25519, dmarcd.KeySigning)
	if got := sels(); got != "new,old" {
		t.Fatalf("during the rotation: %s", got)
	}
	moveTo(t, st, next, dmarcd.KeyCurrent) // retires old
	if k, _ := st.Get(old.Domain, old.Selector); k.State != dmarcd.KeyRetired {
		t.Fatalf("the old key is %s, want retired", k.State)
	}
	if got := sels(); got != "new" {
		t.Fatalf("after the rotation: %s", got)
	}
}

// TestOpenDKIMKeySigns: a key written by opendkim-genkey imports and signs,
// and dkimpy verifies the signature with the record opendkim-genkey wrote.
func TestOpenDKIMKeySigns(t *testing.T) {
	needDKIMPy(t)
	pemBytes, zone := testserver.OpenDKIMGenkey(t, 2048, "mail", "football.example.com")
	records := map[string]string{"mail._domainkey.football.example.com": keystore.ZoneTXT(string(zone))}
	st := newStore(t)
	k, err := st.Import(context.Background(), keystore.ImportOptions{
		Domain: "football.example.com", Selector: "mail", PEM: pemBytes,
		Lookup: func(_ context.Context, name string) ([]string, error) { return []string{records[name]}, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	moveTo(t, st, k, dmarcd.KeyCurrent)
	ring, err := NewKeyring(st, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := signed(t, &Signer{Keys: ring}, testMessage)
	if res := dkimpyVerify(t, msg, records); len(res) != 1 || !res[0] {
		t.Fatalf("dkimpy with opendkim-genkey's record: %v", res)
	}
	if errs := goVerify(t, msg, records); len(errs) != 1 || errs[0] != nil {
		t.Fatalf("go-msgauth with opendkim-genkey's record: %v", errs)
	}
}
