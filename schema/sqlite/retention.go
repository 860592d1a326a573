package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/dmarcd/dmarcd"
)

var _ dmarcd.Retainer = (*Store)(nil)

// RetentionBatch is how many aggregate reports one transaction of
// DropBefore deletes (with their records and signatures): short
// transactions, so that a daemon storing reports meanwhile waits little.
const RetentionBatch = 500

// DropBefore deletes what is filed before cutoff (see dmarcd.Retainer):
// the daily rollups of those days first,
// so that the daily_* views lose them before the records view does, then
// the aggregate reports in batches of RetentionBatch (their records and
// signatures go with them), the failure reports, the TLS reports and the
// quarantined input.
// It returns the number of reports and quarantined inputs deleted. The
// file keeps its size: SQLite reuses the freed pages for new reports
// (VACUUM, with the daemon stopped, gives the space back to the system).
func (s *Store) DropBefore(ctx context.Context, cutoff time.Time) (int, error) {
	cutoff = cutoff.UTC()
	day, unix := cutoff.Format(time.DateOnly), cutoff.Unix()
	for _, table := range []string{"rollup_domains", "rollup_sources", "rollup_selectors", "rollup_reporters"} {
		// The table name is one of ours, never input.
		if _, err := s.direct(ctx, "DELETE FROM "+table+" WHERE day < ?", day); err != nil {
			return 0, fmt.Errorf("retention: deleting the days before %s from %s: %w", day, table, err)
		}
	}
	dropped := 0
	for {
		res, err := s.direct(ctx, `DELETE FROM aggregate_reports WHERE id IN (
    SELECT id FROM aggregate_reports WHERE date_begin < ? LIMIT ?)`, unix, RetentionBatch)
		if err != nil {
			return dropped, fmt.Errorf("retention: deleting the reports before %s: %w", day, err)
		}
		n, _ := res.RowsAffected()
		dropped += int(n)
		if n < RetentionBatch {
			break
		}
	}
	for _, q := range []string{
		`DELETE FROM failure_reports WHERE COALESCE(arrival_date, report_date, received_at) < ?`,
		`DELETE FROM tlsrpt_reports WHERE date_begin < ?`, // and their policies and failures
		`DELETE FROM quarantine WHERE received_at < ?`,
	} {
		res, err := s.direct(ctx, q, unix)
		if err != nil {
			return dropped, fmt.Errorf("retention: deleting what was filed before %s: %w", day, err)
		}
		n, _ := res.RowsAffected()
		dropped += int(n)
	}
	return dropped, nil
}
