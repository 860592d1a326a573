package clickhouse

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/dmarcd/dmarcd"
)

// The alert history and the outbox are append-only, as in the embedded
// store: migrations/0002_alerts.sql says how each question reads them.

var _ dmarcd.AlertStore = (*Store)(nil)

const (
	insertAlertEvent   = `INSERT INTO alert_events (id, at, key, domain, kind, subject, state, title, text)`
	insertNotification = `INSERT INTO notifications (id, created, queued, kind, payload)`
	insertDestination  = `INSERT INTO notification_destinations (notification, destination)`
	insertDelivery     = `INSERT INTO deliveries (notification, at)`
	insertUndelivered  = `INSERT INTO undeliverable (notification, at, reason)`
)

// sequence hands out strictly increasing numbers from the clock, in
// nanoseconds: they order appended rows as SQLite's rowid does, also
// across processes on one machine.
type sequence struct {
	mu   sync.Mutex
	last uint64
}

func (q *sequence) next() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := uint64(time.Now().UnixNano())
	if n <= q.last {
		n = q.last + 1
	}
	q.last = n
	return n
}

// AddAlertEvent appends to the alert history.
func (s *Store) AddAlertEvent(ctx context.Context, e dmarcd.AlertEvent) error {
	err := s.insertRow(ctx, insertAlertEvent, s.seq.next(), e.At.UTC(), e.Key, e.Domain, string(e.Kind), e.Subject,
		e.State, e.Title, e.Text)
	if err != nil {
		return fmt.Errorf("storing alert event %s: %w", e.Key, err)
	}
	return nil
}

// AlertStates returns the latest event of each alert, in the order they
// were added.
func (s *Store) AlertStates(ctx context.Context) ([]dmarcd.AlertEvent, error) {
	rows, err := s.conn.Query(ctx, `SELECT at, key, domain, kind, subject, state, title, text FROM (
    SELECT id, at, key, domain, kind, subject, state, title, text FROM alert_events
    ORDER BY id DESC
    LIMIT 1 BY key)
ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("reading alert states: %w", err)
	}
	defer rows.Close()
	var out []dmarcd.AlertEvent
	for rows.Next() {
		var e dmarcd.AlertEvent
		var kind string
		if err := rows.Scan(&e.At, &e.Key, &e.Domain, &kind, &e.Subject, &e.State, &e.Title, &e.Text); err != nil {
			return nil, fmt.Errorf("reading alert states: %w", err)
		}
		e.At, e.Kind = e.At.UTC(), dmarcd.AlertKind(kind)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading alert states: %w", err)
	}
	return out, nil
}

// AddNotification puts a notification in the outbox; adding the same id
// again is a no-op. The check and the insert are not atomic: two racing
// writers both insert, and the outbox reads the first copy.
func (s *Store) AddNotification(ctx context.Context, n dmarcd.Notification) error {
	var found uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM notifications WHERE id = ?", n.ID).Scan(&found); err != nil {
		return fmt.Errorf("queueing notification %s: %w", n.ID, err)
	}
	if found > 0 {
		return nil
	}
	if n.To != "" {
		// Before the notification: it is never read without it.
		if err := s.insertRow(ctx, insertDestination, n.ID, n.To); err != nil {
			return fmt.Errorf("queueing notification %s: %w", n.ID, err)
		}
	}
	if err := s.insertRow(ctx, insertNotification, n.ID, n.Created.UTC(), s.seq.next(), n.Kind, string(n.Payload)); err != nil {
		return fmt.Errorf("queueing notification %s: %w", n.ID, err)
	}
	return nil
}

// PendingNotifications returns the undelivered notifications, oldest first.
func (s *Store) PendingNotifications(ctx context.Context) ([]dmarcd.Notification, error) {
	// On a cluster the subqueries read Distributed tables too: GLOBAL runs
	// each once and sends its answer to the shards.
	global := ""
	if s.cluster != "" {
		global = "GLOBAL "
	}
	rows, err := s.conn.Query(ctx, `SELECT id, created, kind, payload FROM (
    SELECT id, created, queued, kind, payload FROM notifications
    WHERE id `+global+`NOT IN (SELECT notification FROM deliveries)
      AND id `+global+`NOT IN (SELECT notification FROM undeliverable)
    ORDER BY queued
    LIMIT 1 BY id)
ORDER BY created, queued`)
	if err != nil {
		return nil, fmt.Errorf("reading the notification outbox: %w", err)
	}
	defer rows.Close()
	var out []dmarcd.Notification
	for rows.Next() {
		var n dmarcd.Notification
		var payload string
		if err := rows.Scan(&n.ID, &n.Created, &n.Kind, &payload); err != nil {
			return nil, fmt.Errorf("reading the notification outbox: %w", err)
		}
		n.Created, n.Payload = n.Created.UTC(), []byte(payload)
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the notification outbox: %w", err)
	}
	if len(out) == 0 {
		return out, nil
	}
	to, err := s.destinations(ctx)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].To = to[out[i].ID]
	}
	return out, nil
}

// destinations returns the destination of each pending notification that
// has one (migrations/0005_destinations.sql).
func (s *Store) destinations(ctx context.Context) (map[string]string, error) {
	global := "" // as in PendingNotifications
	if s.cluster != "" {
		global = "GLOBAL "
	}
	rows, err := s.conn.Query(ctx, `SELECT notification, any(destination) FROM notification_destinations
WHERE notification `+global+`NOT IN (SELECT notification FROM deliveries)
  AND notification `+global+`NOT IN (SELECT notification FROM undeliverable)
GROUP BY notification`)
	if err != nil {
		return nil, fmt.Errorf("reading the notification outbox: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, to string
		if err := rows.Scan(&id, &to); err != nil {
			return nil, fmt.Errorf("reading the notification outbox: %w", err)
		}
		out[id] = to
	}
	return out, rows.Err()
}

// MarkDelivered records that a notification was posted. Recording it
// twice is harmless: deliveries are read as a set.
func (s *Store) MarkDelivered(ctx context.Context, id string, at time.Time) error {
	if err := s.insertRow(ctx, insertDelivery, id, at.UTC()); err != nil {
		return fmt.Errorf("recording delivery of notification %s: %w", id, err)
	}
	return nil
}

// ClaimNotification claims a notification for owner until until: the
// claim is a lease (lease.go), named after the notification.
// migrations/0004_outbox.sql's notification_claims, whose earliest claim by
// the claimants' clocks held, is no longer written: two claimants could
// both read themselves first there.
func (s *Store) ClaimNotification(ctx context.Context, id, owner string, now, until time.Time) (bool, error) {
	ok, err := s.HoldLease(ctx, notificationLease+id, owner, now, until)
	if err != nil {
		return false, fmt.Errorf("claiming notification %s: %w", id, err)
	}
	return ok, nil
}

// notificationLease starts the name of the lease that claims a
// notification.
const notificationLease = "notification/"

// MarkUndeliverable takes a notification out of the outbox for good.
func (s *Store) MarkUndeliverable(ctx context.Context, id string, at time.Time, reason string) error {
	if err := s.insertRow(ctx, insertUndelivered, id, at.UTC(), reason); err != nil {
		return fmt.Errorf("recording notification %s as undeliverable: %w", id, err)
	}
	return nil
}
