package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dmarcd/dmarcd/dashboards/accounts"
)

// withStdin runs f with standard input holding text.
func withStdin(t *testing.T, text string, f func()) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	w.WriteString(text)
	w.Close()
	old := stdinFile
	stdinFile = r
	defer func() { stdinFile = old; r.Close() }()
	f()
}

// TestAccountsCommands bootstraps the dashboard from the command line:
// organisations with their domains, users with roles, a password change,
// a removal; each change is in the audit log, no password in any output.
func TestAccountsCommands(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state.db")
	cfg := filepath.Join(dir, "dmarcd.toml")
	os.WriteFile(cfg, []byte("[web]\naccounts_file = \""+state+"\"\n"), 0o644)
	var all strings.Builder
	run := func(want int, stdin string, args ...string) string {
		t.Helper()
		var code int
		var stdout, stderr string
		withStdin(t, stdin, func() { code, stdout, stderr = runCLI(t, append([]string{"--config", cfg}, args...)...) })
		all.WriteString(stdout + stderr)
		if code != want {
			t.Fatalf("%v: exit %d, want %d\n%s%s", args, code, want, stdout, stderr)
		}
		return stdout
	}
	run(0, "", "org", "add", "Acme", "--domain", "acme.example", "--domain", "acme-mail.example")
	run(0, "", "org", "add", "Globex")
	run(2, "", "org", "add", "Acme")
	run(2, "", "org", "domain", "Globex", "acme.example") // Acme's
	run(0, "", "org", "domain", "Globex", "globex.example")
	run(0, "root password 1\n", "user", "add", "root@ops.example", "--admin")
	run(0, "ann's password\n", "user", "add", "ann@acme.example", "--org", "Acme", "--role", "editor")
	run(2, "short\n", "user", "add", "bob@acme.example", "--org", "Acme")
	run(2, "bob's password\n", "user", "add", "bob@acme.example") // no organisation
	run(0, "bob's password\n", "user", "add", "bob@globex.example", "--org", "Globex")
	run(0, "", "user", "role", "bob@globex.example", "Acme", "viewer")
	run(0, "ann's new password\n", "user", "passwd", "ann@acme.example")
	run(0, "", "user", "remove", "bob@globex.example")
	run(2, "", "user", "remove", "root@ops.example") // the last administrator
	token := strings.TrimSpace(run(0, "", "token", "add", "Acme", "ci", "--scope", "write"))
	if !strings.HasPrefix(token, "dmarcd_") {
		t.Errorf("token add printed %q", token)
	}
	if out := run(0, "", "token", "list", "Acme"); !strings.Contains(out, "ci    read write") || strings.Contains(out, token) {
		t.Errorf("token list:\n%s", out)
	}
	run(0, "", "token", "add", "Acme", "settings", "--scope", "manage")
	if out := run(0, "", "token", "list", "Acme"); !strings.Contains(out, "settings  read write manage") {
		t.Errorf("token list:\n%s", out)
	}
	run(0, "", "token", "revoke", "Acme", "ci")
	run(2, "", "token", "revoke", "Acme", "ci")
	if out := run(0, "", "org", "list"); !strings.Contains(out, "Acme          acme-mail.example, acme.example") || !strings.Contains(out, "globex.example") {
		t.Errorf("org list:\n%s", out)
	}
	for _, p := range []string{"root password 1", "ann's password", "ann's new password", "bob's password"} {
		if strings.Contains(all.String(), p) {
			t.Errorf("a password in the output: %q", p)
		}
	}

	st, err := accounts.Open(context.Background(), state)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Authenticate(context.Background(), "ann@acme.example", "ann's new password"); err != nil {
		t.Errorf("ann's new password: %v", err)
	}
	log, _ := st.AuditLog(context.Background(), "", 100)
	var actions []string
	for _, e := range log {
		actions = append(actions, e.Action+" "+e.Object)
		if e.Actor != "cli" {
			t.Errorf("actor %q", e.Actor)
		}
	}
	joined := strings.Join(actions, "\n")
	for _, want := range []string{"org.add Acme", "domain.add acme.example", "user.add ann@acme.example", "member.role ann@acme.example", "user.passwd ann@acme.example", "user.remove bob@globex.example"} {
		if !strings.Contains(joined, want) {
			t.Errorf("audit log lacks %q:\n%s", want, joined)
		}
	}
}
