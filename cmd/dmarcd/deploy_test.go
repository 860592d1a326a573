package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dmarcd/dmarcd/internal/testserver"
)

// TestSystemdUnits: systemd accepts the units of docs/deploy, and each runs
// a subcommand that exists, with the config file they name.
func TestSystemdUnits(t *testing.T) {
	analyze := testserver.Need(t, "/usr/bin/systemd-analyze", "systemd")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for unit, sub := range map[string]string{"dmarcd.service": " run", "dmarcd-signer.service": " signer"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "docs", "deploy", unit))
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		start := "ExecStart=/usr/local/bin/dmarcd --config /etc/dmarcd/dmarcd.toml" + sub + "\n"
		if !strings.Contains(text, start) {
			t.Errorf("%s: no %q", unit, start)
		}
		// The binary the unit names must exist for verify: this test's own.
		path := filepath.Join(dir, unit)
		if err := os.WriteFile(path, []byte(strings.ReplaceAll(text, "/usr/local/bin/dmarcd", self)), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(analyze, "verify", path).CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, out)
		}
	}
	// The commands the units run exist.
	for _, args := range [][]string{{"run", "--help"}, {"signer", "--help"}} {
		if code, _, errOut := runCLI(t, args...); code != exitOK {
			t.Errorf("dmarcd %s: exit %d: %s", strings.Join(args, " "), code, errOut)
		}
	}
}
