package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/dmarcd/dmarcd"
)

var _ dmarcd.LeaseStore = (*Store)(nil)

// HoldLease takes or renews the lease name for owner until until: the
// upsert takes the row only where it is owner's or has lapsed, in one
// statement, so that of two processes one holds it
// (migrations/0007_leases.sql).
func (s *Store) HoldLease(ctx context.Context, name, owner string, now, until time.Time) (bool, error) {
	ok, err := s.take(ctx, "leases", "name", name, owner, now, until)
	if err != nil {
		return false, fmt.Errorf("holding lease %s: %w", name, err)
	}
	return ok, nil
}

// take gives the row key of table (a lease, a notification's claim) to
// owner until until where it is owner's or has lapsed by now, in one
// upsert, so that of two processes one holds it; it says whether owner
// holds it. table and column are ours, never input.
func (s *Store) take(ctx context.Context, table, column, key, owner string, now, until time.Time) (bool, error) {
	release := s.settle() // between groups: group.go
	defer release()
	_, err := s.db.ExecContext(ctx, `INSERT INTO `+table+` (`+column+`, owner, until) VALUES (?,?,?)
ON CONFLICT (`+column+`) DO UPDATE SET owner = excluded.owner, until = excluded.until
WHERE `+table+`.owner = excluded.owner OR `+table+`.until <= ?`, key, owner, until.Unix(), now.Unix())
	if err != nil {
		return false, err
	}
	var holder string
	if err := s.db.QueryRowContext(ctx, `SELECT owner FROM `+table+` WHERE `+column+` = ?`, key).Scan(&holder); err != nil {
		return false, err
	}
	return holder == owner, nil
}

// ReleaseLease lets the lease lapse now when owner holds it.
func (s *Store) ReleaseLease(ctx context.Context, name, owner string, now time.Time) error {
	release := s.settle() // between groups: group.go
	defer release()
	_, err := s.db.ExecContext(ctx, `UPDATE leases SET until = ? WHERE name = ? AND owner = ?`, now.Unix(), name, owner)
	if err != nil {
		return fmt.Errorf("releasing lease %s: %w", name, err)
	}
	return nil
}
