package clickhouse

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// RetentionInterval is how often RunRetention drops old partitions. Data
// is partitioned by month, so once a day is plenty.
const RetentionInterval = 24 * time.Hour

// partitionedTables are the tables of the schema, each partitioned by
// toYYYYMM(day). The rollups go first, so that while a month is being
// dropped the daily_* views lose it before the records view does.
var partitionedTables = []string{
	"rollup_domains", "rollup_sources", "rollup_selectors", "rollup_reporters",
	"aggregate_records", "aggregate_reports", "report_ledger",
	"failure_reports", "quarantine",
}

// DropPartitionsOlderThan drops, in every table, the monthly partitions
// older than months: it keeps the current month (UTC) and the months
// before it, so months = 13 keeps a little more than a year. Reports are
// filed under the month of their date_begin, failure reports under their
// arrival date, quarantined input under the day it was read. months <= 0
// keeps everything. It returns the number of partitions dropped.
func (s *Store) DropPartitionsOlderThan(ctx context.Context, months int) (int, error) {
	return s.dropPartitionsBefore(ctx, months, time.Now())
}

func (s *Store) dropPartitionsBefore(ctx context.Context, months int, now time.Time) (int, error) {
	if months <= 0 {
		return 0, nil
	}
	now = now.UTC()
	first := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -months, 0)
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

// RunRetention drops the partitions older than months now and then every
// interval (RetentionInterval when 0), until ctx ends. A failed run is
// logged and tried again at the next tick. months <= 0 returns at once.
func (s *Store) RunRetention(ctx context.Context, months int, interval time.Duration) {
	if months <= 0 {
		return
	}
	if interval <= 0 {
		interval = RetentionInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := s.DropPartitionsOlderThan(ctx, months)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Error("retention: dropping old partitions failed", "database", s.database, "dropped", n, "err", err)
		case n > 0:
			s.log.Info("retention: old partitions dropped", "database", s.database, "partitions", n, "retention_months", months)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
