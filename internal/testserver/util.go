package testserver

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Missing skips the test with the reason, or fails it when CI=true, so
// that CI never passes by skipping.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and something the test needs is missing: "+format, args...)
	}
	t.Skipf(format, args...)
}

// SkipShort skips a test that starts a server or an outside program under
// go test -short, which runs the tests of dmarcd's own code only (about a
// minute on two cores); CI runs without -short, so nothing is left out
// there. what names what the test would start.
func SkipShort(t testing.TB, what string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("-short: this test starts %s", what)
	}
}

// Need returns path, the program of an independent peer the test runs
// (dkimpy, named-checkzone, opendkim-genkey ...), or skips the test where
// it is missing (Missing: fails it when CI=true). pkg names the Debian
// package that installs it.
func Need(t testing.TB, path, pkg string) string {
	t.Helper()
	SkipShort(t, filepath.Base(path))
	if _, err := os.Stat(path); err != nil {
		Missing(t, "%s is missing: install the Debian package %s (.ci/run does): %v", path, pkg, err)
	}
	return path
}

// OpenDKIMGenkey runs opendkim-genkey (Debian's opendkim-tools) for a key
// of bits for selector._domainkey.domain and returns the private key it
// wrote (PEM) and its zone file line.
func OpenDKIMGenkey(t testing.TB, bits int, selector, domain string) (pem, zone []byte) {
	t.Helper()
	genkey := Need(t, "/usr/sbin/opendkim-genkey", "opendkim-tools")
	dir := t.TempDir()
	if out, err := exec.Command(genkey, "-b", fmt.Sprint(bits), "-s", selector, "-d", domain, "-D", dir).CombinedOutput(); err != nil {
		t.Fatalf("opendkim-genkey: %v\n%s", err, out)
	}
	pem, err := os.ReadFile(filepath.Join(dir, selector+".private"))
	if err != nil {
		t.Fatal(err)
	}
	if zone, err = os.ReadFile(filepath.Join(dir, selector+".txt")); err != nil {
		t.Fatal(err)
	}
	return pem, zone
}

// FreePort returns a loopback TCP port that no one listened on a moment
// ago. Another process may take it before the caller binds it: servers
// started on it retry with another port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Output collects what a process or goroutines write while a test reads
// it: a bytes.Buffer safe for concurrent use.
type Output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}
