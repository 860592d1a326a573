package dmarcd

import (
	"errors"
	"testing"
)

func TestKeyStates(t *testing.T) {
	for i, s := range KeyStates[:len(KeyStates)-1] {
		if !s.CanMove(s.Next()) || s.Next() != KeyStates[i+1] {
			t.Errorf("%s cannot move to %s", s, s.Next())
		}
	}
	for _, bad := range [][2]KeyState{{KeyCreated, KeyCurrent}, {KeyCurrent, KeySigning}, {KeyRevoked, KeyCurrent}, {KeyDeleted, KeyCreated}, {KeyRetired, KeyCurrent}} {
		if bad[0].CanMove(bad[1]) {
			t.Errorf("%s may move to %s", bad[0], bad[1])
		}
	}
	if !KeySigning.Signs() || !KeyCurrent.Signs() || KeyRetired.Signs() || KeyPublished.Signs() {
		t.Error("Signs")
	}
}

func TestKeyRecord(t *testing.T) {
	k := Key{Domain: "example.com", Selector: "s1", Algorithm: AlgorithmEd25519, PublicKey: []byte("0123456789abcdef0123456789abcdef"), State: KeyCurrent}
	r, err := ParseKeyRecord(k.TXT())
	if err != nil || !r.Matches(k) {
		t.Fatalf("own record: %v %+v", err, r)
	}
	k.State = KeyRevoked
	if k.TXT() != "v=DKIM1; k=ed25519; p=" {
		t.Fatalf("revoked: %q", k.TXT())
	}
	if r, err := ParseKeyRecord(k.TXT()); err != nil || !r.Revoked || r.Matches(k) {
		t.Fatalf("revoked record: %v %+v", err, r)
	}
	for _, bad := range []string{"v=spf1 -all", "k=rsa", "p=!!!", "k=rsa; v=DKIM1; p=AAAA"} {
		if _, err := ParseKeyRecord(bad); !errors.Is(err, ErrNotKeyRecord) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	// Folded whitespace in p= (RFC 6376 §3.6.1) and no v=.
	if r, err := ParseKeyRecord("k=rsa; p=AAAA BBBB"); err != nil || len(r.PublicKey) != 6 {
		t.Errorf("folded p=: %v %+v", err, r)
	}
}
