// Package accounts keeps who may use the dmarcd dashboard and what they may
// see: organisations, which own sender domains; users, who belong to
// organisations with a role (owner, editor, viewer), and one or more
// instance-wide administrators; login sessions; API tokens; and the audit
// log of every change.
//
// It lives in its own embedded SQLite file (the state file), whatever store
// holds the reports: these are few, mutable rows, which ClickHouse is no
// place for. Passwords are bcrypt hashes; session and API tokens are random
// 32-byte values of which only the SHA-256 is kept, so that a copy of the
// state file opens no session.
package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dmarcd/dmarcd/internal/migration"
	"golang.org/x/crypto/bcrypt"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Limits and lifetimes.
const (
	// MinPasswordBytes is the shortest password accepted.
	MinPasswordBytes = 12
	// MaxPasswordBytes is bcrypt's limit: it reads 72 bytes, no more.
	MaxPasswordBytes = 72
	// BcryptCost is the work factor of the password hashes.
	BcryptCost = 12
	// SessionIdle is how long a session lives without a request;
	// SessionMax how long it lives at all.
	SessionIdle = 12 * time.Hour
	SessionMax  = 7 * 24 * time.Hour
	// tokenBytes is the size of a session or API token.
	tokenBytes = 32
	// busyTimeoutMillis is how long a write waits for another's lock.
	busyTimeoutMillis = 5000
)

// Role is what a user may do in an organisation.
type Role string

const (
	// RoleViewer reads the organisation's domains, reports and advice.
	RoleViewer Role = "viewer"
	// RoleEditor also changes them: adds domains, manages keys, records
	// rollout steps.
	RoleEditor Role = "editor"
	// RoleOwner also manages the organisation: its members, API tokens,
	// Slack destination, and reads its audit log.
	RoleOwner Role = "owner"
)

// ParseRole reads owner, editor or viewer.
func ParseRole(s string) (Role, error) {
	switch r := Role(strings.ToLower(s)); r {
	case RoleViewer, RoleEditor, RoleOwner:
		return r, nil
	}
	return "", fmt.Errorf("role %q: want owner, editor or viewer", s)
}

// rank orders the roles.
func (r Role) rank() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleEditor:
		return 2
	case RoleOwner:
		return 3
	}
	return 0
}

// AtLeast says whether r allows what min allows.
func (r Role) AtLeast(min Role) bool { return r.rank() >= min.rank() }

// Errors callers test for.
var (
	ErrNotFound      = errors.New("not found")
	ErrExists        = errors.New("already exists")
	ErrBadLogin      = errors.New("wrong e-mail address or password")
	ErrNoSession     = errors.New("no such session, or it expired")
	ErrWeakPassword  = fmt.Errorf("a password needs %d to %d bytes", MinPasswordBytes, MaxPasswordBytes)
	ErrDomainTaken   = errors.New("the domain belongs to another organisation")
	ErrLastAdmin     = errors.New("the last administrator cannot be removed")
	errNoTokenScopes = errors.New("an API token needs at least one scope")
)

// Org is an organisation.
type Org struct {
	ID      int64
	Name    string
	Created time.Time
	// Domains are the sender domains it owns, each with its subdomains.
	Domains []string
}

// User is a person who logs in.
type User struct {
	ID      int64
	Email   string
	Admin   bool // the instance-wide administrator
	Created time.Time
	// Roles are the user's organisations, by ID.
	Roles map[int64]Role
}

// Store is the state file. Its methods are safe for concurrent use.
type Store struct {
	db  *sql.DB
	now func() time.Time
}

//go:embed migrations/*.sql
var migrations embed.FS

// Open opens the state file at path, creating it (mode 0600: it holds
// password hashes) and bringing its schema up to date.
func Open(ctx context.Context, path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	} else {
		f.Close()
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.Itoa(busyTimeoutMillis)+")")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	// BEGIN IMMEDIATE: a transaction takes the write lock first, so two
	// writers wait for each other instead of failing to upgrade a read
	// lock.
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	s := &Store{db: db, now: time.Now}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// SetClock replaces the clock (tests).
func (s *Store) SetClock(now func() time.Time) { s.now = now }

// Close closes the state file.
func (s *Store) Close() error { return s.db.Close() }

// migrate applies migrations/NNNN_*.sql in order; PRAGMA user_version holds
// the number of the last one applied. Each runs in an IMMEDIATE
// transaction that reads the version first, so that processes opening a
// new file at once apply each migration once.
func (s *Store) migrate(ctx context.Context) error {
	files, err := migration.Load(migrations)
	if err != nil {
		return err
	}
	latest := migration.Latest(files)
	for _, f := range files {
		if err := s.apply(ctx, f, latest); err != nil {
			return fmt.Errorf("accounts: migration %s: %w", f.Name, err)
		}
	}
	return nil
}

// apply applies one migration unless the file has it already.
func (s *Store) apply(ctx context.Context, f migration.File, latest int) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var version int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return err
	}
	switch {
	case version > latest:
		return migration.TooNew("the state file", version, latest)
	case version >= f.Version:
		return nil
	}
	if _, err := tx.ExecContext(ctx, f.Text); err != nil {
		return err
	}
	// PRAGMA takes no bound parameters; the version is a parsed integer.
	if _, err := tx.ExecContext(ctx, "PRAGMA user_version = "+strconv.Itoa(f.Version)); err != nil {
		return err
	}
	return tx.Commit()
}

// ---- organisations

// CheckDomain reads a domain name as the accounts keep it: lower case,
// without a final dot.
func CheckDomain(d string) (string, error) {
	d = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(d), "."))
	if len(d) == 0 || len(d) > 253 || !strings.Contains(d, ".") || strings.ContainsAny(d, " @/:\\\"'<>") {
		return "", fmt.Errorf("%q is not a domain name", d)
	}
	return d, nil
}

// AddOrg adds an organisation.
func (s *Store) AddOrg(ctx context.Context, name string) (Org, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 100 {
		return Org{}, errors.New("an organisation needs a name of 1 to 100 characters")
	}
	now := s.now().UTC()
	res, err := s.db.ExecContext(ctx, "INSERT INTO orgs (name, created) VALUES (?, ?)", name, now.Unix())
	if err != nil {
		if isUnique(err) {
			return Org{}, fmt.Errorf("organisation %q: %w", name, ErrExists)
		}
		return Org{}, fmt.Errorf("accounts: %w", err)
	}
	id, _ := res.LastInsertId()
	return Org{ID: id, Name: name, Created: now.Truncate(time.Second)}, nil
}

// OrgByName finds an organisation.
func (s *Store) OrgByName(ctx context.Context, name string) (Org, error) {
	var o Org
	var created int64
	err := s.db.QueryRowContext(ctx, "SELECT id, name, created FROM orgs WHERE name = ?", strings.TrimSpace(name)).Scan(&o.ID, &o.Name, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return o, fmt.Errorf("organisation %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return o, fmt.Errorf("accounts: %w", err)
	}
	o.Created = time.Unix(created, 0).UTC()
	o.Domains, err = s.orgDomains(ctx, o.ID)
	return o, err
}

// Orgs lists the organisations, by name.
func (s *Store) Orgs(ctx context.Context) ([]Org, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT id, name, created FROM orgs ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	defer rows.Close()
	var out []Org
	for rows.Next() {
		var o Org
		var created int64
		if err := rows.Scan(&o.ID, &o.Name, &created); err != nil {
			return nil, fmt.Errorf("accounts: %w", err)
		}
		o.Created = time.Unix(created, 0).UTC()
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	for i := range out {
		if out[i].Domains, err = s.orgDomains(ctx, out[i].ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *Store) orgDomains(ctx context.Context, org int64) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT domain FROM org_domains WHERE org_id = ? ORDER BY domain", org)
	if err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return nil, fmt.Errorf("accounts: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// AddDomain gives a sender domain (and its subdomains) to an organisation.
// A domain belongs to one organisation, with all its subdomains: a
// subdomain of another organisation's domain, or a parent of one, is
// taken (the reports of a subdomain are its organisational domain's).
func (s *Store) AddDomain(ctx context.Context, org int64, domain string) error {
	d, err := CheckDomain(domain)
	if err != nil {
		return err
	}
	if owner, ok, err := s.DomainOwner(ctx, d); err != nil {
		return err
	} else if ok && owner != org {
		return fmt.Errorf("%s: %w", d, ErrDomainTaken)
	} else if ok {
		return nil
	}
	// A subdomain of it owned by another organisation is taken too.
	var other int64
	err = s.db.QueryRowContext(ctx, "SELECT org_id FROM org_domains WHERE domain LIKE ? ESCAPE '\\' AND org_id <> ? LIMIT 1",
		"%."+strings.NewReplacer("%", "\\%", "_", "\\_").Replace(d), org).Scan(&other)
	if err == nil {
		return fmt.Errorf("%s: a subdomain of it: %w", d, ErrDomainTaken)
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("accounts: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, "INSERT INTO org_domains (org_id, domain) VALUES (?, ?)", org, d); err != nil {
		if isUnique(err) {
			return fmt.Errorf("%s: %w", d, ErrDomainTaken)
		}
		return fmt.Errorf("accounts: %w", err)
	}
	return nil
}

// RemoveDomain takes a domain from its organisation.
func (s *Store) RemoveDomain(ctx context.Context, org int64, domain string) error {
	d, err := CheckDomain(domain)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, "DELETE FROM org_domains WHERE org_id = ? AND domain = ?", org, d)
	if err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%s: %w", d, ErrNotFound)
	}
	return nil
}

// DomainOwner says which organisation owns domain: the one that owns it
// or its nearest parent.
func (s *Store) DomainOwner(ctx context.Context, domain string) (int64, bool, error) {
	d := strings.ToLower(strings.TrimSuffix(domain, "."))
	for {
		var org int64
		err := s.db.QueryRowContext(ctx, "SELECT org_id FROM org_domains WHERE domain = ?", d).Scan(&org)
		if err == nil {
			return org, true, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return 0, false, fmt.Errorf("accounts: %w", err)
		}
		_, rest, ok := strings.Cut(d, ".")
		if !ok || !strings.Contains(rest, ".") {
			return 0, false, nil
		}
		d = rest
	}
}

// ---- users

// checkPassword bounds a password.
func checkPassword(p string) error {
	if len(p) < MinPasswordBytes || len(p) > MaxPasswordBytes {
		return ErrWeakPassword
	}
	return nil
}

// AddUser adds a user with a password; admin makes them the instance-wide
// administrator.
func (s *Store) AddUser(ctx context.Context, email, password string, admin bool) (User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if !strings.Contains(email, "@") || len(email) > 254 || strings.ContainsAny(email, " \t\r\n<>\"") {
		return User{}, fmt.Errorf("%q is not an e-mail address", email)
	}
	if err := checkPassword(password); err != nil {
		return User{}, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), BcryptCost)
	if err != nil {
		return User{}, fmt.Errorf("accounts: %w", err)
	}
	now := s.now().UTC()
	res, err := s.db.ExecContext(ctx, "INSERT INTO users (email, password_hash, admin, created) VALUES (?, ?, ?, ?)", email, string(hash), admin, now.Unix())
	if err != nil {
		if isUnique(err) {
			return User{}, fmt.Errorf("user %s: %w", email, ErrExists)
		}
		return User{}, fmt.Errorf("accounts: %w", err)
	}
	id, _ := res.LastInsertId()
	return User{ID: id, Email: email, Admin: admin, Created: now.Truncate(time.Second), Roles: map[int64]Role{}}, nil
}

// UserByEmail finds a user.
func (s *Store) UserByEmail(ctx context.Context, email string) (User, error) {
	return s.user(ctx, "email = ?", strings.ToLower(strings.TrimSpace(email)))
}

// UserByID finds a user.
func (s *Store) UserByID(ctx context.Context, id int64) (User, error) {
	return s.user(ctx, "id = ?", id)
}

func (s *Store) user(ctx context.Context, where string, arg any) (User, error) {
	var u User
	var created int64
	err := s.db.QueryRowContext(ctx, "SELECT id, email, admin, created FROM users WHERE "+where, arg).Scan(&u.ID, &u.Email, &u.Admin, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return u, fmt.Errorf("user %v: %w", arg, ErrNotFound)
	}
	if err != nil {
		return u, fmt.Errorf("accounts: %w", err)
	}
	u.Created = time.Unix(created, 0).UTC()
	u.Roles = map[int64]Role{}
	rows, err := s.db.QueryContext(ctx, "SELECT org_id, role FROM members WHERE user_id = ?", u.ID)
	if err != nil {
		return u, fmt.Errorf("accounts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var org int64
		var role string
		if err := rows.Scan(&org, &role); err != nil {
			return u, fmt.Errorf("accounts: %w", err)
		}
		u.Roles[org] = Role(role)
	}
	return u, rows.Err()
}

// SetPassword replaces a user's password and ends their sessions.
func (s *Store) SetPassword(ctx context.Context, email, password string) error {
	if err := checkPassword(password); err != nil {
		return err
	}
	u, err := s.UserByEmail(ctx, email)
	if err != nil {
		return err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), BcryptCost)
	if err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, "UPDATE users SET password_hash = ? WHERE id = ?", string(hash), u.ID); err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	return s.RevokeSessions(ctx, u.ID)
}

// RemoveUser removes a user, their memberships and sessions. The last
// administrator stays.
func (s *Store) RemoveUser(ctx context.Context, email string) error {
	u, err := s.UserByEmail(ctx, email)
	if err != nil {
		return err
	}
	if u.Admin {
		var admins int
		if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM users WHERE admin").Scan(&admins); err != nil {
			return fmt.Errorf("accounts: %w", err)
		}
		if admins <= 1 {
			return ErrLastAdmin
		}
	}
	// Members and sessions go with the user (ON DELETE CASCADE).
	if _, err := s.db.ExecContext(ctx, "DELETE FROM users WHERE id = ?", u.ID); err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	return nil
}

// SetRole makes a user a member of an organisation with role, or changes
// their role.
func (s *Store) SetRole(ctx context.Context, user, org int64, role Role) error {
	if _, err := ParseRole(string(role)); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO members (org_id, user_id, role) VALUES (?, ?, ?)
		ON CONFLICT (org_id, user_id) DO UPDATE SET role = excluded.role`, org, user, string(role))
	if err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	return nil
}

// HasUsers says whether any user exists: the dashboard requires a login
// once one does.
func (s *Store) HasUsers(ctx context.Context) (bool, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM users").Scan(&n); err != nil {
		return false, fmt.Errorf("accounts: %w", err)
	}
	return n > 0, nil
}

// dummyHash is compared against for an unknown user, so that a login takes
// as long whether the address exists or not.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("dmarcd: no such user"), BcryptCost)

// Authenticate checks an e-mail address and password: ErrBadLogin for
// either wrong, in the same time.
func (s *Store) Authenticate(ctx context.Context, email, password string) (User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	var id int64
	var hash string
	err := s.db.QueryRowContext(ctx, "SELECT id, password_hash FROM users WHERE email = ?", email).Scan(&id, &hash)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
		return User{}, ErrBadLogin
	case err != nil:
		return User{}, fmt.Errorf("accounts: %w", err)
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
		return User{}, ErrBadLogin
	}
	return s.UserByID(ctx, id)
}

// ---- sessions

// Session is a logged-in browser.
type Session struct {
	User User
	// CSRF is the token every form of the session carries back.
	CSRF    string
	Created time.Time
	Expires time.Time
}

// newToken is a random token, URL-safe.
func newToken() string {
	b := make([]byte, tokenBytes)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// tokenHash is what the state file keeps of a token.
func tokenHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// NewSession opens a session for a user; the token goes in a cookie and
// nowhere else.
func (s *Store) NewSession(ctx context.Context, user int64, remote string) (token string, sess Session, err error) {
	token = newToken()
	now := s.now().UTC()
	csrf := newToken()
	if _, err := s.db.ExecContext(ctx, `INSERT INTO sessions (token_hash, user_id, csrf, created, last_seen, remote) VALUES (?, ?, ?, ?, ?, ?)`,
		tokenHash(token), user, csrf, now.Unix(), now.Unix(), remote); err != nil {
		return "", sess, fmt.Errorf("accounts: %w", err)
	}
	u, err := s.UserByID(ctx, user)
	if err != nil {
		return "", sess, err
	}
	return token, Session{User: u, CSRF: csrf, Created: now.Truncate(time.Second), Expires: now.Add(SessionIdle).Truncate(time.Second)}, nil
}

// Session finds the session of a token and keeps it alive: ErrNoSession
// when there is none, it idled longer than SessionIdle or lived longer
// than SessionMax.
func (s *Store) Session(ctx context.Context, token string) (Session, error) {
	var sess Session
	if token == "" {
		return sess, ErrNoSession
	}
	var user, created, lastSeen int64
	h := tokenHash(token)
	err := s.db.QueryRowContext(ctx, "SELECT user_id, csrf, created, last_seen FROM sessions WHERE token_hash = ?", h).Scan(&user, &sess.CSRF, &created, &lastSeen)
	if errors.Is(err, sql.ErrNoRows) {
		return sess, ErrNoSession
	}
	if err != nil {
		return sess, fmt.Errorf("accounts: %w", err)
	}
	now := s.now().UTC()
	sess.Created = time.Unix(created, 0).UTC()
	if now.Sub(time.Unix(lastSeen, 0)) > SessionIdle || now.Sub(sess.Created) > SessionMax {
		s.db.ExecContext(ctx, "DELETE FROM sessions WHERE token_hash = ?", h)
		return sess, ErrNoSession
	}
	if now.Unix()-lastSeen >= 60 { // a write a minute at most
		if _, err := s.db.ExecContext(ctx, "UPDATE sessions SET last_seen = ? WHERE token_hash = ?", now.Unix(), h); err != nil {
			return sess, fmt.Errorf("accounts: %w", err)
		}
	}
	sess.Expires = now.Add(SessionIdle)
	if end := sess.Created.Add(SessionMax); end.Before(sess.Expires) {
		sess.Expires = end
	}
	sess.User, err = s.UserByID(ctx, user)
	if errors.Is(err, ErrNotFound) {
		return sess, ErrNoSession
	}
	return sess, err
}

// EndSession ends the session of a token (logout).
func (s *Store) EndSession(ctx context.Context, token string) error {
	if _, err := s.db.ExecContext(ctx, "DELETE FROM sessions WHERE token_hash = ?", tokenHash(token)); err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	return nil
}

// RevokeSessions ends every session of a user.
func (s *Store) RevokeSessions(ctx context.Context, user int64) error {
	if _, err := s.db.ExecContext(ctx, "DELETE FROM sessions WHERE user_id = ?", user); err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	return nil
}

// CheckCSRF compares the token a form carried with the session's, in
// constant time.
func (sess Session) CheckCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(sess.CSRF)) == 1
}

// ---- audit log

// AuditEntry is one change: who made it, when, from where, what.
type AuditEntry struct {
	At     time.Time
	Actor  string // the user's e-mail address, "api:NAME" or "cli"
	Org    string // the organisation concerned; empty for instance-wide changes
	Action string // e.g. "domain.add", "key.generate", "user.add"
	Object string // what it acted on: a domain, a key ID, a user
	Detail string // more, never a secret
	Remote string // the client's address; empty from the command line
}

// Audit records a change.
func (s *Store) Audit(ctx context.Context, e AuditEntry) error {
	if e.At.IsZero() {
		e.At = s.now()
	}
	_, err := s.db.ExecContext(ctx, "INSERT INTO audit (at, actor, org, action, object, detail, remote) VALUES (?, ?, ?, ?, ?, ?, ?)",
		e.At.UTC().UnixMilli(), e.Actor, e.Org, e.Action, e.Object, e.Detail, e.Remote)
	if err != nil {
		return fmt.Errorf("accounts: recording %s: %w", e.Action, err)
	}
	return nil
}

// AuditLog returns the latest entries, newest first: of one organisation,
// or of all when org is empty.
func (s *Store) AuditLog(ctx context.Context, org string, limit int) ([]AuditEntry, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT at, actor, org, action, object, detail, remote FROM audit
		WHERE ? = '' OR org = ? ORDER BY at DESC, id DESC LIMIT ?`, org, org, limit)
	if err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var at int64
		if err := rows.Scan(&at, &e.Actor, &e.Org, &e.Action, &e.Object, &e.Detail, &e.Remote); err != nil {
			return nil, fmt.Errorf("accounts: %w", err)
		}
		e.At = time.UnixMilli(at).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// isUnique says whether err is a UNIQUE constraint failure.
func isUnique(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// ---- what a user may see

// Scope is what one user may see and change: the domains their
// organisations own (each with its subdomains), with their role there. The
// administrator sees and changes everything, including the reports about
// domains no organisation owns.
type Scope struct {
	Admin   bool
	domains map[string]Role
}

// Scope works out what u may see.
func (s *Store) Scope(ctx context.Context, u User) (Scope, error) {
	sc := Scope{Admin: u.Admin, domains: map[string]Role{}}
	for org, role := range u.Roles {
		ds, err := s.orgDomains(ctx, org)
		if err != nil {
			return sc, err
		}
		for _, d := range ds {
			if role.AtLeast(sc.domains[d]) {
				sc.domains[d] = role
			}
		}
	}
	return sc, nil
}

// Role is the user's role for domain: that of the organisation owning it
// or its nearest parent; owner everywhere for the administrator.
func (sc Scope) Role(domain string) (Role, bool) {
	if sc.Admin {
		return RoleOwner, true
	}
	d := strings.ToLower(strings.TrimSuffix(domain, "."))
	for {
		if r, ok := sc.domains[d]; ok {
			return r, true
		}
		_, rest, ok := strings.Cut(d, ".")
		if !ok || rest == "" {
			return "", false
		}
		d = rest
	}
}

// CanSee says whether the user may see domain's reports and advice.
func (sc Scope) CanSee(domain string) bool {
	_, ok := sc.Role(domain)
	return ok
}

// CanEdit says whether the user may change domain's settings and keys.
func (sc Scope) CanEdit(domain string) bool {
	r, ok := sc.Role(domain)
	return ok && r.AtLeast(RoleEditor)
}

// Domains are the domains the user's organisations own; nil for the
// administrator, who sees all.
func (sc Scope) Domains() []string {
	if sc.Admin {
		return nil
	}
	out := make([]string, 0, len(sc.domains))
	for d := range sc.domains {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}
