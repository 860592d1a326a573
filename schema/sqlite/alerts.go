package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/dmarcd/dmarcd"
)

var _ dmarcd.AlertStore = (*Store)(nil)

// AddAlertEvent appends to the alert history.
func (s *Store) AddAlertEvent(ctx context.Context, e dmarcd.AlertEvent) error {
	release := s.settle() // between groups: group.go
	defer release()
	_, err := s.db.ExecContext(ctx, `INSERT INTO alert_events (at, key, domain, kind, subject, state, title, text) VALUES (?,?,?,?,?,?,?,?)`,
		e.At.Unix(), e.Key, e.Domain, string(e.Kind), e.Subject, e.State, e.Title, e.Text)
	if err != nil {
		return fmt.Errorf("storing alert event %s: %w", e.Key, err)
	}
	return nil
}

// AlertStates returns the latest event of each alert.
func (s *Store) AlertStates(ctx context.Context) ([]dmarcd.AlertEvent, error) {
	rows, err := s.ro.QueryContext(ctx, `SELECT at, key, domain, kind, subject, state, title, text FROM alert_events
WHERE id IN (SELECT MAX(id) FROM alert_events GROUP BY key) ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("reading alert states: %w", err)
	}
	defer rows.Close()
	var out []dmarcd.AlertEvent
	for rows.Next() {
		var e dmarcd.AlertEvent
		var at int64
		var kind string
		if err := rows.Scan(&at, &e.Key, &e.Domain, &kind, &e.Subject, &e.State, &e.Title, &e.Text); err != nil {
			return nil, fmt.Errorf("reading alert states: %w", err)
		}
		e.At, e.Kind = time.Unix(at, 0).UTC(), dmarcd.AlertKind(kind)
		out = append(out, e)
	}
	return out, rows.Err()
}

// AddNotification puts a notification in the outbox; adding the same id
// again is a no-op.
func (s *Store) AddNotification(ctx context.Context, n dmarcd.Notification) error {
	release := s.settle() // between groups: group.go
	defer release()
	_, err := s.db.ExecContext(ctx, `INSERT INTO notifications (id, created, kind, payload, destination) VALUES (?,?,?,?,?) ON CONFLICT (id) DO NOTHING`,
		n.ID, n.Created.Unix(), n.Kind, n.Payload, n.To)
	if err != nil {
		return fmt.Errorf("queueing notification %s: %w", n.ID, err)
	}
	return nil
}

// PendingNotifications returns the undelivered notifications, oldest first.
func (s *Store) PendingNotifications(ctx context.Context) ([]dmarcd.Notification, error) {
	rows, err := s.ro.QueryContext(ctx, `SELECT n.id, n.created, n.kind, n.payload, n.destination FROM notifications n
WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.notification = n.id)
  AND NOT EXISTS (SELECT 1 FROM undeliverable u WHERE u.notification = n.id)
ORDER BY n.created, n.rowid`)
	if err != nil {
		return nil, fmt.Errorf("reading the notification outbox: %w", err)
	}
	defer rows.Close()
	var out []dmarcd.Notification
	for rows.Next() {
		var n dmarcd.Notification
		var created int64
		if err := rows.Scan(&n.ID, &created, &n.Kind, &n.Payload, &n.To); err != nil {
			return nil, err
		}
		n.Created = time.Unix(created, 0).UTC()
		out = append(out, n)
	}
	return out, rows.Err()
}

// MarkDelivered records that a notification was posted.
func (s *Store) MarkDelivered(ctx context.Context, id string, at time.Time) error {
	release := s.settle() // between groups: group.go
	defer release()
	_, err := s.db.ExecContext(ctx, `INSERT INTO deliveries (notification, at) VALUES (?,?) ON CONFLICT (notification) DO NOTHING`, id, at.Unix())
	if err != nil {
		return fmt.Errorf("recording delivery of notification %s: %w", id, err)
	}
	return nil
}

// ClaimNotification claims a notification for owner until until: the
// upsert takes the row only where it is owner's or has lapsed, in one
// statement, so that of two processes one holds it.
func (s *Store) ClaimNotification(ctx context.Context, id, owner string, now, until time.Time) (bool, error) {
	ok, err := s.take(ctx, "notification_claims", "notification", id, owner, now, until)
	if err != nil {
		return false, fmt.Errorf("claiming notification %s: %w", id, err)
	}
	return ok, nil
}

// MarkUndeliverable takes a notification out of the outbox for good.
func (s *Store) MarkUndeliverable(ctx context.Context, id string, at time.Time, reason string) error {
	release := s.settle() // between groups: group.go
	defer release()
	_, err := s.db.ExecContext(ctx, `INSERT INTO undeliverable (notification, at, reason) VALUES (?,?,?) ON CONFLICT (notification) DO NOTHING`, id, at.Unix(), reason)
	if err != nil {
		return fmt.Errorf("recording notification %s as undeliverable: %w", id, err)
	}
	return nil
}
