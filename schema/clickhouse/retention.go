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

// DropOlderThan drops, in every table, the monthly partitions older than
// dmarcd.RetentionCutoff(now, months) (see dmarcd.Retainer), and returns
// the number of partitions dropped.
func (s *Store) DropOlderThan(ctx context.Context, months int) (int, error) {
	return s.dropPartitionsBefore(ctx, months, time.Now())
}

func (s *Store) dropPartitionsBefore(ctx context.Context, months int, now time.Time) (int, error) {
	if months <= 0 {
		return 0, nil
	}
	first := dmarcd.RetentionCutoff(now, months)
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
			s.log.Info("dropped old partition", "database", s.database, "table", table, "month", p, "retention_months", months)
		}
	}
	return dropped, nil
}
