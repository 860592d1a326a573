package clickhouse

// Leases (dmarcd.LeaseStore) without transactions.
//
// ClickHouse has no compare-and-set: two processes that read "free" and
// then insert "mine" would both hold the lease. The lease_log table
// (migrations/0007_lease_log.sql) is therefore used as an append-only log
// of bids and holds, numbered by term, and a lease is taken in two steps:
//
//  1. A process that finds the latest term T lapsed (or no term) bids for
//     T+1 (a row), then reads the bids of T+1 and later back. It wins the
//     term only when its bid is the only one: of two bidders, the one
//     whose bid was appended second reads the other's bid, since it reads
//     after its own append, which came after the other's. So at most one
//     wins (both may lose, and the lease waits until their bids lapse).
//  2. The winner appends its hold on T+1, and renews it with more holds
//     while it holds it. Every process reads the holder of the latest
//     term from its holds; a bid without a hold keeps the term contested
//     until the bid lapses, so that nobody bids over a winner that has not
//     written its hold yet.
//
// This needs each read to see every append that returned before it began
// (a linearizable log). One server gives that: an insert is visible to the
// queries that start after it returned. On a cluster the rows of a lease
// are on one shard (sharded by name), and every lease insert waits for a
// majority of its replicas (insert_quorum) and every lease read refuses a
// replica that lacks an insert that reached its quorum
// (select_sequential_consistency): whichever replica a process reads, it
// sees every bid and hold that returned. The price: a lease cannot be taken
// or renewed while the shard of its name has fewer than a majority of its
// replicas up (with two replicas, both), and it then lapses; nothing else
// of dmarcd stops.
//
// Like every lease, this one rests on clocks (dmarcd.LeaseStore): a term
// lapses at the until of its rows by the reader's clock.

import (
	"context"
	"errors"
	"fmt"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
)

const insertLease = `INSERT INTO lease_log (name, term, owner, held, until)`

// leaseQuorumTimeout bounds how long a lease insert waits for its quorum
// of replicas (insert_quorum_timeout): a shard without a majority fails
// the insert rather than blocking the daemon.
const leaseQuorumTimeout = 10 * time.Second

// leaseRowsRead bounds the rows a read of a lease takes, which hold those
// of its latest term: one per process that bid for it or held it.
const leaseRowsRead = 64

// leaseTerm is what the rows of the latest term of a lease say.
type leaseTerm struct {
	term   uint64
	holder string // "" while contested: bids, no hold
	bids   map[string]bool
	until  time.Time // the latest until of the term's rows
}

// HoldLease takes or renews the lease name for owner until until.
func (s *Store) HoldLease(ctx context.Context, name, owner string, now, until time.Time) (bool, error) {
	cur, err := s.readLease(ctx, name)
	if err != nil {
		return false, err
	}
	switch {
	case cur.holder == owner && cur.until.After(now):
		if err := s.appendLease(ctx, name, cur.term, owner, true, until); err != nil {
			return false, err
		}
	case cur.term > 0 && cur.until.After(now):
		return false, nil // another holds it, or bids for it
	default:
		term := cur.term + 1
		if err := s.appendLease(ctx, name, term, owner, false, until); err != nil {
			return false, err
		}
		bid, err := s.readLease(ctx, name)
		if err != nil {
			return false, err
		}
		if bid.term != term || len(bid.bids) != 1 || !bid.bids[owner] || bid.holder != "" {
			return false, nil // another bid too: the term lapses with the bids
		}
		if err := s.appendLease(ctx, name, term, owner, true, until); err != nil {
			return false, err
		}
		cur.term = term
	}
	after, err := s.readLease(ctx, name)
	if err != nil {
		return false, err
	}
	return after.term == cur.term && after.holder == owner, nil
}

// ReleaseLease lets the lease lapse now when owner holds it: a hold whose
// until is now ends the term for every reader.
func (s *Store) ReleaseLease(ctx context.Context, name, owner string, now time.Time) error {
	cur, err := s.readLease(ctx, name)
	if err != nil || cur.holder != owner || !cur.until.After(now) {
		return err
	}
	// The term lapses at the latest until of its rows: a new term, held
	// by nobody, with an until in the past.
	return s.appendLease(ctx, name, cur.term+1, owner, false, now.Add(-time.Second))
}

// readLease reads the latest term of name.
func (s *Store) readLease(ctx context.Context, name string) (leaseTerm, error) {
	// The rows of the latest term come first; a term has as many as
	// processes bid for it, a few.
	rows, err := s.conn.Query(s.leaseContext(ctx, false), `SELECT term, owner, held, max(until) FROM lease_log
WHERE name = ?
GROUP BY term, owner, held
ORDER BY term DESC
LIMIT ?`, name, leaseRowsRead)
	if err != nil {
		return leaseTerm{}, fmt.Errorf("reading lease %s: %w", name, err)
	}
	defer rows.Close()
	out := leaseTerm{bids: map[string]bool{}}
	for rows.Next() {
		var term uint64
		var owner string
		var held uint8
		var until time.Time
		if err := rows.Scan(&term, &owner, &held, &until); err != nil {
			return leaseTerm{}, fmt.Errorf("reading lease %s: %w", name, err)
		}
		if out.term != 0 && term != out.term {
			break
		}
		out.term = term
		if held == 1 {
			out.holder = owner
		} else {
			out.bids[owner] = true
		}
		if until.After(out.until) {
			out.until = until.UTC()
		}
	}
	if err := rows.Err(); err != nil {
		return leaseTerm{}, fmt.Errorf("reading lease %s: %w", name, err)
	}
	return out, nil
}

func (s *Store) appendLease(ctx context.Context, name string, term uint64, owner string, held bool, until time.Time) error {
	h := uint8(0)
	if held {
		h = 1
	}
	wait := leaseRetryWait
	for attempt := 1; ; attempt++ {
		err := s.insertRow(s.leaseContext(ctx, true), insertLease, name, term, owner, h, until.UTC())
		var e *ch.Exception
		if err == nil || !errors.As(err, &e) || e.Code != quorumBusy || attempt == leaseInsertAttempts {
			if err != nil {
				return fmt.Errorf("writing lease %s: %w", name, err)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// quorumBusy is the error of a quorum insert into a table where another
// has not reached its quorum yet (UNSATISFIED_QUORUM_FOR_PREVIOUS_WRITE):
// ClickHouse before 20.10 runs one at a time per table
// (insert_quorum_parallel came later). It is tried again.
const quorumBusy = 286

// Retries of a lease insert that found another quorum insert running: 10
// attempts, 10 ms after the first, twice as long after each (10 s in all).
const (
	leaseInsertAttempts = 10
	leaseRetryWait      = 10 * time.Millisecond
)

// leaseContext carries the settings of lease inserts (insert) and reads on
// a cluster: a majority of the shard's replicas for each insert, and reads
// only of replicas that hold every insert that reached its quorum.
func (s *Store) leaseContext(ctx context.Context, insert bool) context.Context {
	if s.cluster == "" {
		return ctx
	}
	if insert {
		return ch.Context(ctx, ch.WithSettings(ch.Settings{
			"insert_quorum":         int(s.leaseQuorum),
			"insert_quorum_timeout": int(leaseQuorumTimeout.Milliseconds()),
		}))
	}
	return ch.Context(ctx, ch.WithSettings(ch.Settings{"select_sequential_consistency": 1}))
}

// readLeaseQuorum sets leaseQuorum: a majority of the replicas of the
// cluster's smallest shard.
func (s *Store) readLeaseQuorum(ctx context.Context) error {
	var replicas uint64
	err := s.conn.QueryRow(ctx, `SELECT min(n) FROM (SELECT shard_num, count() AS n FROM system.clusters WHERE cluster = ? GROUP BY shard_num)`, s.cluster).Scan(&replicas)
	if err != nil {
		return fmt.Errorf("reading the replicas of cluster %s: %w", s.cluster, err)
	}
	s.leaseQuorum = replicas/2 + 1
	return nil
}
