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
// a month keeps that month. On a cluster each month is dropped ON CLUSTER
// from the replicated tables, on every shard (one replica of each drops
// it, the others follow), and counted once per table.
func (s *Store) DropBefore(ctx context.Context, first time.Time) (int, error) {
	first = first.UTC()
	cutoff := first.Year()*100 + int(first.Month()) // YYYYMM, as toYYYYMM
	dropped := 0
	for _, table := range partitionedTables {
		months, err := s.partitions(ctx, table)
		if err != nil {
			return dropped, fmt.Errorf("listing partitions of %s.%s: %w", s.database, table, err)
		}
		for _, p := range months {
			if p >= cutoff {
				continue
			}
			// A partition is a literal in ALTER, never a bound parameter;
			// p is an integer we parsed.
			alter := "ALTER TABLE " + table + " DROP PARTITION " + strconv.Itoa(p)
			if s.cluster != "" {
				alter = "ALTER TABLE " + s.database + "." + table + localSuffix + " ON CLUSTER " + s.cluster + " DROP PARTITION " + strconv.Itoa(p)
			}
			if err := s.conn.Exec(ctx, alter); err != nil {
				return dropped, fmt.Errorf("dropping partition %d of %s.%s%s: %w", p, s.database, table, s.onCluster(), err)
			}
			dropped++
			s.log.Info("dropped old partition", "database", s.database, "table", table, "month", p, "before", first.Format("2006-01"))
		}
	}
	return dropped, nil
}

// partitions lists the months (YYYYMM) of table's partitions: those of
// the server's parts, or on a cluster the months of its rows on every
// shard.
func (s *Store) partitions(ctx context.Context, table string) ([]int, error) {
	query := `SELECT DISTINCT partition FROM system.parts WHERE database = currentDatabase() AND table = ? AND active`
	args := []any{table}
	if s.cluster != "" {
		// system.parts is the server's own; table is Distributed.
		query, args = "SELECT DISTINCT toString(toYYYYMM(day)) FROM "+table, nil
	}
	rows, err := s.conn.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var months []int
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, err
		}
		// The partition of toYYYYMM(day) prints as 202611.
		if n, err := strconv.Atoi(p); err == nil {
			months = append(months, n)
		}
	}
	return months, rows.Err()
}
