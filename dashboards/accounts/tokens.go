package accounts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The scopes of an API token.
const (
	// ScopeRead reads the organisation's domains, records, keys and
	// advice.
	ScopeRead = "read"
	// ScopeWrite also changes them, as an editor would.
	ScopeWrite = "write"
	// ScopeManage also sets the organisation's Slack channel, which on the
	// page only its owners may (a webhook decides where the alerts about
	// its domains go). Members and tokens are managed by people, on the
	// page or the command line, never by a token.
	ScopeManage = "manage"
	// tokenPrefix starts every API token, so that a leaked one is
	// recognised by secret scanners.
	tokenPrefix = "dmarcd_"
)

// APIToken is an organisation's API token, without the token itself.
type APIToken struct {
	Org      Org
	Name     string
	Scopes   []string
	Created  time.Time
	LastUsed time.Time
}

// Allows says whether the token has scope.
func (t APIToken) Allows(scope string) bool {
	for _, s := range t.Scopes {
		if s == scope {
			return true
		}
	}
	return false
}

// Role is what the token may do in its organisation's domains: editor
// with write, viewer with read only.
func (t APIToken) Role() Role {
	if t.Allows(ScopeWrite) {
		return RoleEditor
	}
	return RoleViewer
}

// NewAPIToken makes a token for an organisation, named for the people who
// manage it ("ci", "portal"). The token is returned once: the state file
// keeps its SHA-256 only.
func (s *Store) NewAPIToken(ctx context.Context, org int64, name string, scopes []string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 64 {
		return "", errors.New("an API token needs a name of 1 to 64 characters")
	}
	if len(scopes) == 0 {
		return "", errNoTokenScopes
	}
	// Who may manage may write, who may write may read: the scopes up to
	// the widest asked for.
	all := []string{ScopeRead, ScopeWrite, ScopeManage}
	widest := 0
	for _, sc := range scopes {
		i := slices.Index(all, sc)
		if i < 0 {
			return "", fmt.Errorf("scope %q: want read, write or manage", sc)
		}
		widest = max(widest, i)
	}
	clean := all[:widest+1]
	token := tokenPrefix + newToken()
	_, err := s.db.ExecContext(ctx, "INSERT INTO api_tokens (org_id, name, token_hash, scopes, created) VALUES (?, ?, ?, ?, ?)",
		org, name, tokenHash(token), strings.Join(clean, " "), s.now().Unix())
	if err != nil {
		if isUnique(err) {
			return "", fmt.Errorf("API token %q: %w", name, ErrExists)
		}
		return "", fmt.Errorf("accounts: %w", err)
	}
	return token, nil
}

// ErrNoToken is the error of an unknown or revoked API token.
var ErrNoToken = errors.New("no such API token")

// APITokenOf finds the token and notes its use (at most once a minute).
func (s *Store) APITokenOf(ctx context.Context, token string) (APIToken, error) {
	var t APIToken
	if !strings.HasPrefix(token, tokenPrefix) {
		return t, ErrNoToken
	}
	var scopes string
	var created, lastUsed int64
	h := tokenHash(token)
	err := s.db.QueryRowContext(ctx, `SELECT o.id, o.name, t.name, t.scopes, t.created, t.last_used
		FROM api_tokens t JOIN orgs o ON o.id = t.org_id WHERE t.token_hash = ?`, h).Scan(&t.Org.ID, &t.Org.Name, &t.Name, &scopes, &created, &lastUsed)
	if errors.Is(err, sql.ErrNoRows) {
		return t, ErrNoToken
	}
	if err != nil {
		return t, fmt.Errorf("accounts: %w", err)
	}
	t.Scopes = strings.Fields(scopes)
	t.Created, t.LastUsed = time.Unix(created, 0).UTC(), time.Unix(lastUsed, 0).UTC()
	if now := s.now().Unix(); now-lastUsed >= 60 {
		if _, err := s.db.ExecContext(ctx, "UPDATE api_tokens SET last_used = ? WHERE token_hash = ?", now, h); err != nil {
			return t, fmt.Errorf("accounts: %w", err)
		}
	}
	if t.Org.Domains, err = s.orgDomains(ctx, t.Org.ID); err != nil {
		return t, err
	}
	return t, nil
}

// APITokens lists an organisation's tokens.
func (s *Store) APITokens(ctx context.Context, org int64) ([]APIToken, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT name, scopes, created, last_used FROM api_tokens WHERE org_id = ? ORDER BY name", org)
	if err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	defer rows.Close()
	var out []APIToken
	for rows.Next() {
		var t APIToken
		var scopes string
		var created, used int64
		if err := rows.Scan(&t.Name, &scopes, &created, &used); err != nil {
			return nil, fmt.Errorf("accounts: %w", err)
		}
		t.Org.ID, t.Scopes = org, strings.Fields(scopes)
		t.Created, t.LastUsed = time.Unix(created, 0).UTC(), time.Unix(used, 0).UTC()
		out = append(out, t)
	}
	return out, rows.Err()
}

// RevokeAPIToken ends an organisation's token.
func (s *Store) RevokeAPIToken(ctx context.Context, org int64, name string) error {
	res, err := s.db.ExecContext(ctx, "DELETE FROM api_tokens WHERE org_id = ? AND name = ?", org, name)
	if err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("API token %q: %w", name, ErrNotFound)
	}
	return nil
}

// TokenScope is what a token may see and change: its organisation's
// domains, as a viewer (read) or an editor (write).
func (t APIToken) TokenScope() Scope {
	sc := Scope{domains: map[string]Role{}}
	for _, d := range t.Org.Domains {
		sc.domains[d] = t.Role()
	}
	return sc
}
