package accounts

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state", "state.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

const password = "correct horse battery"

// TestOrgsUsersScope: organisations own domains with their subdomains;
// users see what their organisations own, with their role; the
// administrator sees everything.
func TestOrgsUsersScope(t *testing.T) {
	s, path := openTemp(t)
	ctx := context.Background()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode: %v %v", fi.Mode(), err)
	}
	acme, err := s.AddOrg(ctx, "Acme")
	if err != nil {
		t.Fatal(err)
	}
	globex, _ := s.AddOrg(ctx, "Globex")
	if _, err := s.AddOrg(ctx, "Acme"); !errors.Is(err, ErrExists) {
		t.Errorf("a second Acme: %v", err)
	}
	for _, c := range []struct {
		org    int64
		domain string
		err    error
	}{
		{acme.ID, "Acme.example.", nil},
		{acme.ID, "acme.example", nil}, // again: nothing to do
		{globex.ID, "acme.example", ErrDomainTaken},
		{globex.ID, "news.acme.example", ErrDomainTaken}, // Acme owns its subdomains too
		{acme.ID, "globex.example", nil},
		{globex.ID, "example", nil},
	} {
		err := s.AddDomain(ctx, c.org, c.domain)
		if c.err == nil && err != nil || c.err != nil && !errors.Is(err, c.err) {
			if c.domain == "example" && err != nil {
				continue // not a domain name: refused either way
			}
			t.Errorf("AddDomain(%d, %s) = %v, want %v", c.org, c.domain, err, c.err)
		}
	}
	if owner, ok, _ := s.DomainOwner(ctx, "shop.acme.example"); !ok || owner != acme.ID {
		t.Errorf("owner of shop.acme.example: %d %v", owner, ok)
	}
	if err := s.AddDomain(ctx, globex.ID, "globex.example"); !errors.Is(err, ErrDomainTaken) {
		t.Errorf("Acme's globex.example given to Globex: %v", err)
	}

	admin, err := s.AddUser(ctx, "root@ops.example", password, true)
	if err != nil {
		t.Fatal(err)
	}
	ann, _ := s.AddUser(ctx, "Ann@Acme.example", password, false)
	if _, err := s.AddUser(ctx, "ann@acme.example", password, false); !errors.Is(err, ErrExists) {
		t.Errorf("same address twice: %v", err)
	}
	if _, err := s.AddUser(ctx, "bob@acme.example", "short", false); !errors.Is(err, ErrWeakPassword) {
		t.Errorf("a short password: %v", err)
	}
	s.SetRole(ctx, ann.ID, acme.ID, RoleViewer)
	s.SetRole(ctx, ann.ID, acme.ID, RoleEditor) // changed

	u, err := s.UserByEmail(ctx, "ANN@acme.example")
	if err != nil || u.Roles[acme.ID] != RoleEditor {
		t.Fatalf("ann: %+v %v", u, err)
	}
	sc, err := s.Scope(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		domain    string
		see, edit bool
	}{
		{"acme.example", true, true},
		{"mail.acme.example", true, true},
		{"news.acme.example", true, true},
		{"globex.example", true, true},
		{"other.example", false, false},
		{"example", false, false},
	} {
		if sc.CanSee(c.domain) != c.see || sc.CanEdit(c.domain) != c.edit {
			t.Errorf("ann, %s: see %v edit %v", c.domain, sc.CanSee(c.domain), sc.CanEdit(c.domain))
		}
	}
	asc, _ := s.Scope(ctx, admin)
	if !asc.CanEdit("anything.example") || asc.Domains() != nil {
		t.Error("the administrator does not see everything")
	}
	if err := s.RemoveUser(ctx, admin.Email); !errors.Is(err, ErrLastAdmin) {
		t.Errorf("removing the last administrator: %v", err)
	}
	if err := s.RemoveUser(ctx, ann.Email); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UserByEmail(ctx, ann.Email); !errors.Is(err, ErrNotFound) {
		t.Errorf("removed user: %v", err)
	}
}

// TestSessions: a login opens a session whose token only the browser
// holds; it ends on logout, after SessionIdle without use, after
// SessionMax at all, and when the password changes.
func TestSessions(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	s.SetClock(func() time.Time { return now })
	s.AddUser(ctx, "ann@acme.example", password, false)
	if _, err := s.Authenticate(ctx, "ann@acme.example", "wrong password!"); !errors.Is(err, ErrBadLogin) {
		t.Errorf("wrong password: %v", err)
	}
	if _, err := s.Authenticate(ctx, "nobody@acme.example", password); !errors.Is(err, ErrBadLogin) {
		t.Errorf("unknown user: %v", err)
	}
	u, err := s.Authenticate(ctx, " ANN@acme.example ", password)
	if err != nil {
		t.Fatal(err)
	}
	token, sess, err := s.NewSession(ctx, u.ID, "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	var stored int
	s.db.QueryRow("SELECT COUNT(*) FROM sessions WHERE token_hash = ?", token).Scan(&stored)
	if stored != 0 {
		t.Error("the state file holds the token itself")
	}
	got, err := s.Session(ctx, token)
	if err != nil || got.User.Email != "ann@acme.example" || !got.CheckCSRF(sess.CSRF) || got.CheckCSRF("") || got.CheckCSRF("x"+sess.CSRF) {
		t.Fatalf("session: %+v %v", got, err)
	}
	// Kept alive by use, up to SessionMax.
	for range 13 {
		now = now.Add(SessionIdle - time.Hour)
		if _, err := s.Session(ctx, token); err != nil {
			if now.Sub(sess.Created) <= SessionMax {
				t.Fatalf("session ended at %s while in use: %v", now, err)
			}
			break
		}
		if now.Sub(sess.Created) > SessionMax {
			t.Fatalf("session still valid after SessionMax")
		}
	}
	// Idle too long.
	token, _, _ = s.NewSession(ctx, u.ID, "")
	now = now.Add(SessionIdle + time.Minute)
	if _, err := s.Session(ctx, token); !errors.Is(err, ErrNoSession) {
		t.Errorf("idle session: %v", err)
	}
	// Logout, and a password change.
	token, _, _ = s.NewSession(ctx, u.ID, "")
	if err := s.EndSession(ctx, token); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(ctx, token); !errors.Is(err, ErrNoSession) {
		t.Errorf("after logout: %v", err)
	}
	token, _, _ = s.NewSession(ctx, u.ID, "")
	if err := s.SetPassword(ctx, u.Email, "another long password"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(ctx, token); !errors.Is(err, ErrNoSession) {
		t.Errorf("after a password change: %v", err)
	}
	if _, err := s.Authenticate(ctx, u.Email, "another long password"); err != nil {
		t.Errorf("the new password: %v", err)
	}
}

// TestAuditLog: entries come back newest first, per organisation or all.
func TestAuditLog(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	for i, e := range []AuditEntry{
		{Actor: "cli", Action: "org.add", Object: "Acme"},
		{Actor: "ann@acme.example", Org: "Acme", Action: "domain.add", Object: "acme.example", Remote: "192.0.2.1"},
		{Actor: "bob@globex.example", Org: "Globex", Action: "key.generate", Object: "s1._domainkey.globex.example"},
	} {
		e.At = t0.Add(time.Duration(i) * time.Minute)
		if err := s.Audit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	all, _ := s.AuditLog(ctx, "", 10)
	acme, _ := s.AuditLog(ctx, "Acme", 10)
	if len(all) != 3 || all[0].Action != "key.generate" || len(acme) != 1 || acme[0].Remote != "192.0.2.1" {
		t.Errorf("all %+v\nacme %+v", all, acme)
	}
}

// TestConcurrentOpen: processes opening a new state file at once all
// succeed.
func TestConcurrentOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Go(func() {
			s, err := Open(context.Background(), path)
			if err == nil {
				s.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// TestAPITokens: a token is shown once and kept as a hash; it reads or
// writes its organisation's domains only; revoked, it opens nothing.
func TestAPITokens(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	acme, _ := s.AddOrg(ctx, "Acme")
	s.AddDomain(ctx, acme.ID, "acme.example")
	if _, err := s.NewAPIToken(ctx, acme.ID, "ci", []string{"admin"}); err == nil {
		t.Error("a token with an unknown scope")
	}
	ro, err := s.NewAPIToken(ctx, acme.ID, "portal", []string{ScopeRead})
	if err != nil {
		t.Fatal(err)
	}
	rw, _ := s.NewAPIToken(ctx, acme.ID, "ci", []string{ScopeWrite})
	if _, err := s.NewAPIToken(ctx, acme.ID, "ci", []string{ScopeRead}); !errors.Is(err, ErrExists) {
		t.Errorf("the same name twice: %v", err)
	}
	var n int
	s.db.QueryRow("SELECT COUNT(*) FROM api_tokens WHERE token_hash = ? OR token_hash = ?", ro, rw).Scan(&n)
	if n != 0 {
		t.Error("the state file holds a token itself")
	}
	tok, err := s.APITokenOf(ctx, rw)
	if err != nil || !tok.Allows(ScopeRead) || !tok.Allows(ScopeWrite) || tok.Org.Name != "Acme" {
		t.Fatalf("ci: %+v %v", tok, err)
	}
	if sc := tok.TokenScope(); !sc.CanEdit("mail.acme.example") || sc.CanSee("globex.example") || sc.Admin {
		t.Error("the write token's scope")
	}
	rt, _ := s.APITokenOf(ctx, ro)
	if sc := rt.TokenScope(); !sc.CanSee("acme.example") || sc.CanEdit("acme.example") || rt.Allows(ScopeManage) {
		t.Error("the read token's scope")
	}
	// Who may manage may write and read.
	mg, _ := s.NewAPIToken(ctx, acme.ID, "settings", []string{ScopeManage})
	if mt, err := s.APITokenOf(ctx, mg); err != nil || !mt.Allows(ScopeRead) || !mt.Allows(ScopeWrite) || !mt.Allows(ScopeManage) || tok.Allows(ScopeManage) {
		t.Errorf("the manage token: %+v %v", mt, err)
	}
	if err := s.RevokeAPIToken(ctx, acme.ID, "ci"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.APITokenOf(ctx, rw); !errors.Is(err, ErrNoToken) {
		t.Errorf("a revoked token: %v", err)
	}
	if _, err := s.APITokenOf(ctx, "dmarcd_guess"); !errors.Is(err, ErrNoToken) {
		t.Errorf("a guessed token: %v", err)
	}
}
