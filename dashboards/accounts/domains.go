package accounts

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dmarcd/dmarcd"
)

// SaveSenderDomain keeps a sender domain set up through the page for an
// organisation: the wizard's answers. The organisation must own the
// domain, or it is given the domain now when no other owns it (or a
// parent or subdomain of it).
func (s *Store) SaveSenderDomain(ctx context.Context, org int64, d dmarcd.SenderDomain) error {
	name, err := CheckDomain(d.Name)
	if err != nil {
		return err
	}
	d.Name = name
	owner, ok, err := s.DomainOwner(ctx, name)
	if err != nil {
		return err
	}
	switch {
	case ok && owner != org:
		return fmt.Errorf("%s: %w", name, ErrDomainTaken)
	case !ok:
		if err := s.AddDomain(ctx, org, name); err != nil {
			return err
		}
	}
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO sender_domains (domain, org_id, settings, updated) VALUES (?, ?, ?, ?)
		ON CONFLICT (domain) DO UPDATE SET org_id = excluded.org_id, settings = excluded.settings, updated = excluded.updated`,
		name, org, string(b), s.now().Unix())
	if err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	return nil
}

// SenderDomains returns the sender domains set up through the page.
func (s *Store) SenderDomains(ctx context.Context) ([]dmarcd.SenderDomain, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT settings FROM sender_domains ORDER BY domain")
	if err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	defer rows.Close()
	var out []dmarcd.SenderDomain
	for rows.Next() {
		var text string
		if err := rows.Scan(&text); err != nil {
			return nil, fmt.Errorf("accounts: %w", err)
		}
		var d dmarcd.SenderDomain
		if err := json.Unmarshal([]byte(text), &d); err != nil {
			return nil, fmt.Errorf("accounts: a sender domain's settings: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// SenderDomain returns one sender domain set up through the page.
func (s *Store) SenderDomain(ctx context.Context, name string) (dmarcd.SenderDomain, error) {
	var d dmarcd.SenderDomain
	n, err := CheckDomain(name)
	if err != nil {
		return d, err
	}
	var text string
	err = s.db.QueryRowContext(ctx, "SELECT settings FROM sender_domains WHERE domain = ?", n).Scan(&text)
	if errors.Is(err, sql.ErrNoRows) {
		return d, fmt.Errorf("%s: %w", n, ErrNotFound)
	}
	if err != nil {
		return d, fmt.Errorf("accounts: %w", err)
	}
	return d, json.Unmarshal([]byte(text), &d)
}

// PublishedStep is a rollout step its owner said they published, as DNS
// showed it then.
type PublishedStep struct {
	Domain string
	Step   string // "none", "quarantine 5% (t=y)" ...
	Record string // the DMARC record seen in DNS
	At     time.Time
	Actor  string
}

// RecordPublished records that a step is live.
func (s *Store) RecordPublished(ctx context.Context, p PublishedStep) error {
	if p.At.IsZero() {
		p.At = s.now()
	}
	_, err := s.db.ExecContext(ctx, "INSERT INTO published_steps (domain, step, record, at, actor) VALUES (?, ?, ?, ?, ?)",
		p.Domain, p.Step, p.Record, p.At.UTC().Unix(), p.Actor)
	if err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	return nil
}

// PublishedSteps returns a domain's recorded steps, newest first.
func (s *Store) PublishedSteps(ctx context.Context, domain string, limit int) ([]PublishedStep, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT domain, step, record, at, actor FROM published_steps WHERE domain = ? ORDER BY at DESC, id DESC LIMIT ?", domain, limit)
	if err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	defer rows.Close()
	var out []PublishedStep
	for rows.Next() {
		var p PublishedStep
		var at int64
		if err := rows.Scan(&p.Domain, &p.Step, &p.Record, &at, &p.Actor); err != nil {
			return nil, fmt.Errorf("accounts: %w", err)
		}
		p.At = time.Unix(at, 0).UTC()
		out = append(out, p)
	}
	return out, rows.Err()
}
