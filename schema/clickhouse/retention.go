package clickhouse

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/dmarcd/dmarcd"
)

var _ dmarcd.Retainer = (*Store)(nil)

// partitionedTables are the tables of the schema, each partitioned by
// toYYYYMM(day). The rollups go first, so that while a month is being
// dropped the daily_* views lose it before the records view does.
var partitionedTables = []string{
	"rollup_domains", "rollup_sources", "rollup_selectors", "rollup_reporters",
	"aggregate_records", "aggregate_reports", "report_ledger",
	"failure_reports", "quarantine",
	"tlsrpt_failures", "tlsrpt_policies", "tlsrpt_reports",
}

// DropBefore drops, in every table, the monthly partitions of the months
// before cutoff's (see dmarcd.Retainer), and returns the number of
// partitions dropped. A partition holds a whole month, so a cutoff within
// a month keeps that month.
func (s *Store) DropBefore(ctx context.Context, first time.Time) (int, error) {
	first = first.UTC()
	cutoff := first.Year()*100 + int(first.Month()) // YYYYMM, as toYYYYMM
	dropped := 0
	for _, table := range partitionedTables {
		rows, err := s.conn.Query(ctx, `SELECT DISTINCT partition FROM system.parts
WHERE database = currentDatabase() AND table = ? AND active`, table)
		if err != nil {
			return dropped, fmt.Errorf("listing partitions of %s.%s: %w", s.database, table, err)
		}
		var old []int
		for rows.Next() {
			var p string
			if err := rows.Scan(&p); err != nil {
				rows.Close()
				return dropped, fmt.Errorf("listing partitions of %s.%s: %w", s.database, table, err)
			}
			// The partition of toYYYYMM(day) prints as 202611.
			if n, err := strconv.Atoi(p); err == nil && n < cutoff {
				old = append(old, n)
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return dropped, fmt.Errorf("listing partitions of %s.%s: %w", s.database, table, err)
		}
		for _, p := range old {
			// A partition is a literal in ALTER, never a bound parameter;
			// p is an integer we parsed.
			if err := s.conn.Exec(ctx, "ALTER TABLE "+table+" DROP PARTITION "+strconv.Itoa(p)); err != nil {
				return dropped, fmt.Errorf("dropping partition %d of %s.%s: %w", p, s.database, table, err)
			}
			dropped++
			s.log.Info("dropped old partition", "database", s.database, "table", table, "month", p, "before", first.Format("2006-01"))
		}
	}
	return dropped, nil
}
