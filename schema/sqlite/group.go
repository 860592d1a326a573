package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"
)

// Grouped commits. A SQLite commit writes every page its transaction
// changed to the WAL, two system calls a page: a small report changes a
// page or two of each of its tables and of the four rollups, and committed
// alone it spent half of the writer's time in COMMIT (BENCHMARKS.md, "The
// writers against their engines"). So the reports (aggregate, failure and
// TLS) go into one open transaction, the group, which commits when it
// holds GroupReports reports or GroupRecords records, when it is GroupAge
// old, on Flush, on Close, and before any other write of the store
// (alerts, the outbox, leases, retention, quarantine). The store is a
// dmarcd.Flusher as the ClickHouse store is: a report is stored when its
// group commits, and callers that discard their input once it is stored
// (the IMAP poller) Flush first.
//
// A report aborted in a group (its input turned out malformed halfway, or
// its caller gave up) is undone by deleting its row, which takes its
// records along (ON DELETE CASCADE); the rollups are added only at Commit
// (aggregate.go). Savepoints would undo it too, but cost more than the
// commits they save: within a savepoint SQLite copies every page a
// statement changes that was changed before, and a report's multi-row
// statements change the same pages again and again (measured: the writer
// at 0.39 of the engine's rate for large reports, against 0.71 without).
// An SQL error within a group is another matter: the writer's statements
// meet no constraint they could break, so an error there is the disk's or
// the file's (full, I/O, corrupt), after which SQLite may have rolled the
// whole transaction back. The group is then rolled back and its reports
// are lost (see group.lost).
//
// The bounds of a group; Options overrides them.
const (
	// DefaultGroupReports is how many reports a group holds before it
	// commits.
	DefaultGroupReports = 1_000
	// DefaultGroupRecords is how many records a group holds before it
	// commits: some 10 MB of pages in the WAL.
	DefaultGroupRecords = 20_000
	// DefaultGroupAge is how long a group stays open. It holds SQLite's
	// one write lock meanwhile: another process's writer waits (up to
	// BusyTimeoutMillis), its readers do not. Between two groups of a
	// backfill, the commit's checkpoint (a WAL past 1,000 pages) leaves
	// the lock free long enough: an INSERT of another process (Python's
	// sqlite3) during `dmarcd ingest` of 3,000 mails waited 0.1-0.9 s
	// (TestGroupLetsOthersWrite tries the same within one process).
	DefaultGroupAge = time.Second
)

// group is the open transaction of the reports committed since the last
// group commit. Its lock is held from the start of a report to its end
// (BeginAggregate to Commit or Abort, or one AddFailure or AddTLSReport),
// as the store's one connection was held by the report's own transaction
// before there were groups, and while the group commits.
type group struct {
	mu      sync.Mutex
	tx      *sql.Tx // nil when no group is open
	gen     uint64  // counts the groups opened, for the age timer
	timer   *time.Timer
	keys    []string // of the reports the group holds
	records int
	sums    rollups // of its reports, not written yet (rollup.go)

	// lost holds the keys of the reports of groups that could not be
	// committed, with when, each until it is stored again (or found
	// stored) or LostExpiry has passed: Flush fails while it is not empty,
	// whoever calls it, so that no caller discards the input of a lost
	// report. The IMAP poller offers its messages again at its next pass;
	// ingest tells its user to ingest them again.
	lost      map[string]time.Time
	lostCause error // why the last lost group was lost
}

// begin starts a report: it takes the group's lock and opens a group
// when none is open. A nil error is followed by one end or lose. The
// group's statements run with ctx's values but not its cancellation:
// SQLite answers an interrupted statement by rolling back the whole
// transaction, the other reports of the group with it. ctx is checked
// before each report and record instead.
func (s *Store) begin(ctx context.Context) (*sql.Tx, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	g := &s.group
	g.mu.Lock()
	if g.tx == nil {
		tx, err := s.db.BeginTx(context.WithoutCancel(ctx), nil)
		if err != nil {
			g.mu.Unlock()
			return nil, err
		}
		g.tx = tx
		g.gen++
		gen := g.gen
		g.timer = time.AfterFunc(s.opts.GroupAge, func() { s.commitAged(gen) })
	}
	return g.tx, nil
}

// end ends the report begun by begin, which left nothing behind (it was
// a duplicate, or undone) or, with stored, was stored: then the report
// (key, of records records) joins the group, which commits when it is
// full. It releases the group's lock; the error is the group's commit's.
func (s *Store) end(key string, records int, stored bool) error {
	g := &s.group
	defer g.mu.Unlock()
	if !stored {
		return nil
	}
	g.keys = append(g.keys, key)
	g.records += records
	if len(g.keys) >= s.opts.GroupReports || g.records >= s.opts.GroupRecords {
		return s.commitLocked()
	}
	return nil
}

// addSums adds a report's rollup sums to its group's, and writes them into
// the group's transaction when they reach MaxPendingSums.
func (s *Store) addSums(ctx context.Context, r *rollups) error {
	g := &s.group
	if g.sums.domains == nil {
		g.sums = newRollups()
	}
	g.sums.merge(r)
	if g.sums.size() < MaxPendingSums {
		return nil
	}
	return g.sums.write(ctx, g.tx, s.inserts)
}

// lose ends the report begun by begin after an SQL error: the group is
// rolled back and its reports are lost (loseLocked). It releases the
// group's lock.
func (s *Store) lose(cause error) error {
	defer s.group.mu.Unlock()
	return s.loseLocked(cause)
}

// found says that the report key is stored (a duplicate of it was refused),
// so that it is no longer lost.
func (s *Store) found(key string) {
	if s.group.lost != nil {
		delete(s.group.lost, key)
	}
}

// commitLocked commits the open group, if any; its lock is held.
func (s *Store) commitLocked() error {
	g := &s.group
	if g.tx == nil {
		return nil
	}
	g.timer.Stop()
	err := g.sums.write(context.Background(), g.tx, s.inserts)
	if err == nil {
		err = g.tx.Commit()
	}
	if err != nil {
		return s.loseLocked(err)
	}
	for _, k := range g.keys {
		s.found(k)
	}
	g.tx, g.keys, g.records = nil, g.keys[:0], 0
	return nil
}

// loseLocked ends the open group after an error that rolled its
// transaction back (or whose commit failed), and remembers its reports as
// lost. It returns the error, with how many reports it took along.
func (s *Store) loseLocked(cause error) error {
	g := &s.group
	g.timer.Stop()
	g.tx.Rollback()
	// A COMMIT that failed may leave SQLite's transaction open where
	// database/sql let it go; the store's one connection must not keep it.
	s.db.Exec("ROLLBACK") // "no transaction is active" when it did not
	err := fmt.Errorf("%w; the %d reports stored in %s since its last commit are lost: offer their input again", cause, len(g.keys), s.path)
	if len(g.keys) > 0 {
		if g.lost == nil {
			g.lost = map[string]time.Time{}
		}
		now := s.now()
		for _, k := range g.keys {
			g.lost[k] = now
		}
		g.lostCause = cause
	}
	g.tx, g.keys, g.records = nil, g.keys[:0], 0
	g.sums.clear()
	return err
}

// commitAged commits the group gen when it is still open: the age bound.
func (s *Store) commitAged(gen uint64) {
	g := &s.group
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.tx != nil && g.gen == gen {
		s.commitLocked() // a failure is kept in lost, for Flush
	}
}

// settle commits the open group and holds the group's lock until the
// returned function is called: the store's other writes run on its one
// connection between groups.
func (s *Store) settle() (release func()) {
	s.group.mu.Lock()
	s.commitLocked() // a failure is kept in lost, for Flush
	return s.group.mu.Unlock
}

// direct runs one statement of its own between groups.
func (s *Store) direct(ctx context.Context, query string, args ...any) (sql.Result, error) {
	release := s.settle()
	defer release()
	return s.db.ExecContext(ctx, query, args...)
}

// LostExpiry is how long a lost report (group.lost) fails Flush at most.
// Whoever stored it flushes within seconds and learns of the loss; the
// IMAP poller reads the messages it did not archive again at its next
// pass. A report not offered again by then is one whose input is gone (a
// message deleted meanwhile), which would otherwise fail every Flush of
// the process, and keep every mailbox's messages unarchived, until a
// restart.
const LostExpiry = time.Hour

// errLost is Flush's error while reports of a lost group were not stored
// again (and were lost less than LostExpiry ago).
func (s *Store) errLost() error {
	g := &s.group
	now := s.now()
	for k, at := range g.lost {
		if now.Sub(at) >= LostExpiry {
			delete(g.lost, k)
		}
	}
	if len(g.lost) == 0 {
		return nil
	}
	return fmt.Errorf("%d reports were lost with a group of %s that could not be committed, and are not stored again yet: %w", len(g.lost), s.path, g.lostCause)
}
