package dmarcd

import (
	"context"
	"time"
)

// LeaseStore keeps leases: a named piece of work (a mailbox, the alert
// checks) done by one process at a time among the daemons sharing a store,
// and taken over by another when its holder dies. A lease is held from
// now until until; its holder renews it by holding it again before then.
//
// A lease rests on the clocks of the processes: a holder must stop
// trusting its lease a margin before until, and the clocks of the
// processes must differ by less than that margin (LeaseMargin). Each
// engine says what else its leases need (schema/clickhouse/lease.go).
type LeaseStore interface {
	// HoldLease takes the lease name for owner until until, or renews it
	// when owner holds it: true when owner holds it, because no other
	// owner held it past now.
	HoldLease(ctx context.Context, name, owner string, now, until time.Time) (bool, error)
	// ReleaseLease gives the lease up when owner holds it, so that
	// another process takes it at once rather than when it lapses.
	ReleaseLease(ctx context.Context, name, owner string, now time.Time) error
}

// LeaseMargin is how long before its end a holder stops trusting a lease:
// the most the clocks of two daemons sharing a store may differ, plus the
// time a renewal takes.
const LeaseMargin = 5 * time.Second
