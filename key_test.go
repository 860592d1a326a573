package dmarcd

import "testing"

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
