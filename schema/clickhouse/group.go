package clickhouse

import (
	"context"
	"fmt"
	"sync"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/dmarcd/dmarcd"
)

// Grouped writes. Every INSERT costs ClickHouse a new part on disk per
// table and per rollup, some 200 files, whatever its size: 50-150 ms on the
// machines of BENCHMARKS.md. A report written alone costs two of them (its
// records, then its row), so a backfill of small reports would crawl at a
// few reports a second. Instead Commit adds the report to an in-memory
// group, which is written in one INSERT per table when it is full, when its
// oldest report is old enough (both checked at each Commit), on Flush, and
// on Close.
//
// The bounds of a group; Options overrides them.
const (
	// DefaultGroupReports is how many reports a group holds before it is
	// written.
	DefaultGroupReports = 1_000
	// DefaultGroupRecords is how many records (not yet inserted) a group
	// holds before it is written: a few MB in memory.
	DefaultGroupRecords = 20_000
	// DefaultGroupAge is how long the oldest report of a group may wait
	// for more before the group is written.
	DefaultGroupAge = 10 * time.Second
)

// GroupFailureBytes bounds the failure reports a group holds, by the size
// of their text (original headers, and bodies where they are kept): the
// group is written when it reaches it.
const GroupFailureBytes = 16 << 20

// CloseFlushTimeout bounds the write of what is pending when the store is
// closed.
const CloseFlushTimeout = 30 * time.Second

var _ dmarcd.Flusher = (*Store)(nil)

// pendingReport is a committed report waiting in the group.
type pendingReport struct {
	h reportHeader
	// row holds the values of the report's row, in the column order of
	// insertReport.
	row []any
	// records are the report's records not inserted yet (a large report
	// inserted its first ones while it was written; a failed write may
	// have inserted the others).
	records []recordRow
	// rowStored: a failed write stored the row.
	rowStored bool
}

// group is the committed reports not written yet. Its lock is held while
// it is written, so that a Flush that returns nil has seen every report
// committed before it was called written, whichever caller wrote them.
//
// A write that fails keeps the group, to be written again by the next
// Commit that fills it, Flush or Close: a caller that keeps its input when
// Flush fails offers it again, and BeginAggregate says ErrDuplicate for a
// report still pending, so nothing is lost. Before it writes again it asks
// the server what the failed write stored (a connection cut after the
// server took an insert looks like a failure), so that no record is fed to
// the rollups twice and no report row is written twice: the ledger of
// migrations/0001_reports.sql stays settled and the views keep reading
// the rollups. (An insert the server still runs when asked is not seen:
// then the ledger finds the report written twice, and the views read its
// days from the deduplicated base tables; the figures stay right.)
type group struct {
	mu      sync.Mutex
	reports []*pendingReport
	keys    map[string]bool // digests of reports
	records int             // records of reports not inserted yet
	oldest  time.Time       // when the first report was added
	failed  bool            // the last write failed: settle first

	// Failure reports wait in the group too, as rows in insertFailure's
	// column order. A failed write keeps them; written twice, a failure
	// report shows once in the failures view, so they need no settling.
	failures     [][]any
	failureKeys  map[string]bool
	failureBytes int

	// TLS reports wait too. Written twice (a failed write is written
	// again whole), a TLS report's rows collapse in the tls_* views.
	tls     []*pendingTLS
	tlsKeys map[string]bool
	tlsRows int // rows of their policies and failure details
}

// empty says whether nothing waits in the group; g.mu is held.
func (g *group) empty() bool { return len(g.reports) == 0 && len(g.failures) == 0 && len(g.tls) == 0 }

// pendingFailure says whether a failure report with the key waits in the
// group.
func (g *group) pendingFailure(key string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.failureKeys[key]
}

// pendingTLSReport says whether a TLS report with the key waits in the
// group.
func (g *group) pendingTLSReport(key string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.tlsKeys[key]
}

// pending says whether a report with the digest waits in the group.
func (g *group) pending(digest string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.keys[digest]
}

// full says whether the group is to be written now; g.mu is held.
func (s *Store) full(g *group) bool {
	return s.overfull(g) || !g.empty() && time.Since(g.oldest) >= s.opts.GroupAge
}

// overfull says whether the group reached a bound of its size (a failed
// write can leave it so: it is then written before it grows); g.mu is
// held.
func (s *Store) overfull(g *group) bool {
	return len(g.reports) >= s.opts.GroupReports || g.records >= s.opts.GroupRecords ||
		len(g.failures) >= s.opts.GroupReports || g.failureBytes >= GroupFailureBytes ||
		len(g.tls) >= s.opts.GroupReports || g.tlsRows >= s.opts.GroupRecords
}

// commit adds a report to the group, and writes the group when it is
// full. A report already pending (two writers of one report in this
// process) is pending once.
func (s *Store) commit(ctx context.Context, p *pendingReport) error {
	g := &s.group
	g.mu.Lock()
	defer g.mu.Unlock()
	if s.overfull(g) {
		// A write failed before and left the group full: write it
		// before it grows.
		if err := s.write(ctx); err != nil {
			return fmt.Errorf("committing report %s: %w", p.h.reportStr, err)
		}
	}
	if g.keys[p.h.digest] {
		return nil
	}
	if g.empty() {
		g.oldest = time.Now()
	}
	if g.keys == nil {
		g.keys = map[string]bool{}
	}
	g.reports = append(g.reports, p)
	g.keys[p.h.digest] = true
	g.records += len(p.records)
	if s.full(g) {
		if err := s.write(ctx); err != nil {
			return fmt.Errorf("committing report %s: %w", p.h.reportStr, err)
		}
	}
	return nil
}

// Flush writes the reports committed and not written yet. When it returns
// nil, every report whose Commit returned before it was called is stored.
func (s *Store) Flush(ctx context.Context) error {
	g := &s.group
	g.mu.Lock()
	defer g.mu.Unlock()
	return s.write(ctx)
}

// write inserts the failure reports of the group in one batch, its TLS
// reports in one batch per table, the records of its aggregate reports in
// another, then the rows of those reports in a last one, which makes them
// visible; g.mu is held. Reports another process stored since they were
// looked for are dropped first.
func (s *Store) write(ctx context.Context) error {
	g := &s.group
	if len(g.failures) > 0 {
		if err := s.dropStoredFailures(ctx); err != nil {
			return fmt.Errorf("storing %d failure reports: asking which are stored already: %w", len(g.failures), err)
		}
		if err := s.insertFailures(ctx, g.failures); err != nil {
			return fmt.Errorf("storing %d failure reports: %w", len(g.failures), err)
		}
		for _, row := range g.failures {
			s.remember(partitionOf("failure_reports", row[2].(string), row[1].(time.Time)), row[0].(string))
		}
		g.failures, g.failureKeys, g.failureBytes = nil, nil, 0
	}
	if len(g.tls) > 0 {
		if err := s.writeTLS(ctx); err != nil {
			return err
		}
	}
	if len(g.reports) == 0 {
		return nil
	}
	what := fmt.Sprintf("%d reports from %s", len(g.reports), g.reports[0].h.reportStr)
	if g.failed {
		if err := s.settle(ctx); err != nil {
			return fmt.Errorf("storing %s again: asking what was stored before: %w", what, err)
		}
		g.failed = false
	} else if err := s.dropStored(ctx); err != nil {
		return fmt.Errorf("storing %s: asking which are stored already: %w", what, err)
	}
	if g.records > 0 {
		if err := s.insertRecords(ctx, g.reports); err != nil {
			g.failed = true
			return fmt.Errorf("storing the records of %s: %w", what, err)
		}
		for _, p := range g.reports {
			p.records = nil
		}
		g.records = 0
	}
	if err := s.insertRows(ctx, g.reports); err != nil {
		g.failed = true
		return fmt.Errorf("storing %s: %w", what, err)
	}
	for _, p := range g.reports {
		s.remember(p.h.partition(), p.h.digest)
	}
	g.reports, g.keys, g.records, g.failed = nil, nil, 0, false
	return nil
}

// dropStored drops from the group the reports whose row is stored: another
// process stored them after BeginAggregate looked (known.go); g.mu is
// held. Records of theirs that a large report inserted while it was read
// stay without a row of their own copy, as after an abort.
func (s *Store) dropStored(ctx context.Context) error {
	g := &s.group
	stored, err := s.storedRows(ctx)
	if err != nil || len(stored) == 0 {
		return err
	}
	kept := g.reports[:0]
	for _, p := range g.reports {
		if stored[p.h.digest] {
			g.records -= len(p.records)
			delete(g.keys, p.h.digest)
			s.remember(p.h.partition(), p.h.digest)
			continue
		}
		kept = append(kept, p)
	}
	clear(g.reports[len(kept):])
	g.reports = kept
	return nil
}

// dropStoredFailures drops from the group the failure reports stored
// already: by another process since AddFailure looked, or by a write of
// the group that failed after the server took it; g.mu is held.
func (s *Store) dropStoredFailures(ctx context.Context) error {
	g := &s.group
	keys := ch.GroupSet{Value: make([]any, len(g.failures))}
	for i, row := range g.failures {
		keys.Value[i] = row[0]
	}
	stored, err := s.storedKeys(ctx, `SELECT DISTINCT report_key FROM failure_reports WHERE report_key IN ?`, keys)
	if err != nil || len(stored) == 0 {
		return err
	}
	kept := g.failures[:0]
	for _, row := range g.failures {
		if !stored[row[0].(string)] {
			kept = append(kept, row)
		} else {
			s.remember(partitionOf("failure_reports", row[2].(string), row[1].(time.Time)), row[0].(string))
		}
	}
	clear(g.failures[len(kept):])
	g.failures = kept
	return nil
}

// storedKeys runs a query of report keys and returns them as a set.
func (s *Store) storedKeys(ctx context.Context, query string, args ...any) (map[string]bool, error) {
	rows, err := s.conn.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	stored := map[string]bool{}
	for rows.Next() {
		var key string
		if err := rows.Scan(&key); err != nil {
			return nil, err
		}
		stored[key] = true
	}
	return stored, rows.Err()
}

// insertRows inserts the rows not stored yet of reports in one batch.
func (s *Store) insertRows(ctx context.Context, reports []*pendingReport) error {
	var rows []*pendingReport
	for _, p := range reports {
		if !p.rowStored {
			rows = append(rows, p)
		}
	}
	if len(rows) == 0 {
		return nil
	}
	b, err := s.conn.PrepareBatch(ctx, insertReport)
	if err != nil {
		return err
	}
	for _, p := range rows {
		if err := b.Append(p.row...); err != nil {
			b.Abort()
			return fmt.Errorf("report %s: %w", p.h.reportStr, err)
		}
	}
	return b.Send()
}

// insertRecords inserts the records not inserted yet of reports in one
// batch.
func (s *Store) insertRecords(ctx context.Context, reports []*pendingReport) error {
	b, err := s.conn.PrepareBatch(ctx, insertRecords)
	if err != nil {
		return err
	}
	for _, p := range reports {
		for i := range p.records {
			if err := appendRecord(b, &p.h, &p.records[i]); err != nil {
				b.Abort()
				return fmt.Errorf("record %d of report %s: %w", p.records[i].seq, p.h.reportStr, err)
			}
		}
	}
	return b.Send()
}

// groupKeys are the policy domains and the keys of the group's reports,
// for IN; g.mu is held.
func (g *group) groupKeys() (domains, keys ch.GroupSet) {
	seen := map[string]bool{}
	keys.Value = make([]any, 0, len(g.reports))
	for _, p := range g.reports {
		if !seen[p.h.key.Domain] {
			seen[p.h.key.Domain] = true
			domains.Value = append(domains.Value, p.h.key.Domain)
		}
		keys.Value = append(keys.Value, p.h.digest)
	}
	return domains, keys
}

// storedRows says which of the group's reports have a stored row; g.mu is
// held.
func (s *Store) storedRows(ctx context.Context) (map[string]bool, error) {
	domains, keys := s.group.groupKeys()
	return s.storedKeys(ctx, `SELECT DISTINCT report_key FROM aggregate_reports
WHERE domain IN ? AND report_key IN ?`, domains, keys)
}

// settle asks the server what a failed write of the group stored, and
// drops it from the group: the records of a report whose last record is
// stored (an insert is stored whole or not at all), and the rows stored;
// g.mu is held.
func (s *Store) settle(ctx context.Context) error {
	g := &s.group
	domains, keys := g.groupKeys()
	lastSeq := map[string]uint32{}
	rows, err := s.conn.Query(ctx, `SELECT report_key, max(seq) FROM aggregate_records
WHERE domain IN ? AND report_key IN ? GROUP BY report_key`, domains, keys)
	if err != nil {
		return err
	}
	for rows.Next() {
		var key string
		var seq uint32
		if err := rows.Scan(&key, &seq); err != nil {
			rows.Close()
			return err
		}
		lastSeq[key] = seq
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	stored, err := s.storedRows(ctx)
	if err != nil {
		return err
	}

	g.records = 0
	for _, p := range g.reports {
		if n := len(p.records); n > 0 && lastSeq[p.h.digest] >= p.records[n-1].seq {
			p.records = nil
		}
		g.records += len(p.records)
		p.rowStored = stored[p.h.digest]
	}
	return nil
}

// flushOnClose writes what is pending when the store closes.
func (s *Store) flushOnClose() error {
	ctx, cancel := context.WithTimeout(context.Background(), CloseFlushTimeout)
	defer cancel()
	g := &s.group
	g.mu.Lock()
	defer g.mu.Unlock()
	n, nf, nt := len(g.reports), len(g.failures), len(g.tls)
	if err := s.write(ctx); err != nil {
		return fmt.Errorf("closing clickhouse store %s: %d committed reports, %d failure reports and %d TLS reports could not be written: %w", s.database, n, nf, nt, err)
	}
	return nil
}
