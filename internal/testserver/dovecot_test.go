package testserver

import "testing"

// TestDovecotRestart starts a Dovecot, stops it and starts it again on the
// same port.
func TestDovecotRestart(t *testing.T) {
	s := Dovecot(t)
	if err := s.greets(); err != nil {
		t.Fatalf("no greeting: %v\n%s", err, s.Log())
	}
	s.Stop()
	if err := s.greets(); err == nil {
		t.Fatal("a stopped Dovecot still greets")
	}
	s.Start()
	if err := s.greets(); err != nil {
		t.Fatalf("no greeting after restart: %v\n%s", err, s.Log())
	}
}
