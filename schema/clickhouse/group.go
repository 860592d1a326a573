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
}

// empty says whether nothing waits in the group; g.mu is held.
func (g *group) empty() bool { return len(g.reports) == 0 && len(g.failures) == 0 }

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
		len(g.failures) >= s.opts.GroupReports || g.failureBytes >= GroupFailureBytes
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

// write inserts the failure reports of the group in one batch, the records
// of its aggregate reports in another, then the rows of those reports in a
// third, which makes them visible; g.mu is held.
func (s *Store) write(ctx context.Context) error {
	g := &s.group
	if len(g.failures) > 0 {
		if err := s.insertFailures(ctx, g.failures); err != nil {
			return fmt.Errorf("storing %d failure reports: %w", len(g.failures), err)
		}
		g.failures, g.failureKeys, g.failureBytes = nil, nil, 0
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
	g.reports, g.keys, g.records, g.failed = nil, nil, 0, false
	return nil
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

// settle asks the server what a failed write of the group stored, and
// drops it from the group: the records of a report whose last record is
// stored (an insert is stored whole or not at all), and the rows stored;
// g.mu is held.
func (s *Store) settle(ctx context.Context) error {
	g := &s.group
	domains, keys := map[string]bool{}, make([]any, 0, len(g.reports))
	for _, p := range g.reports {
		domains[p.h.key.Domain] = true
		keys = append(keys, p.h.digest)
	}
	domainSet := make([]any, 0, len(domains))
	for d := range domains {
		domainSet = append(domainSet, d)
	}
	in := func(v []any) ch.GroupSet { return ch.GroupSet{Value: v} }

	lastSeq := map[string]uint32{}
	rows, err := s.conn.Query(ctx, `SELECT report_key, max(seq) FROM aggregate_records
WHERE domain IN ? AND report_key IN ? GROUP BY report_key`, in(domainSet), in(keys))
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
	stored := map[string]bool{}
	rows, err = s.conn.Query(ctx, `SELECT DISTINCT report_key FROM aggregate_reports
WHERE domain IN ? AND report_key IN ?`, in(domainSet), in(keys))
	if err != nil {
		return err
	}
	for rows.Next() {
		var key string
		if err := rows.Scan(&key); err != nil {
			rows.Close()
			return err
		}
		stored[key] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
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
	n, nf := len(g.reports), len(g.failures)
	if err := s.write(ctx); err != nil {
		return fmt.Errorf("closing clickhouse store %s: %d committed reports and %d failure reports could not be written: %w", s.database, n, nf, err)
	}
	return nil
}
