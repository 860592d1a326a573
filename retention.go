package dmarcd

import (
	"context"
	"log/slog"
	"time"
)

// RetentionInterval is how often RunRetention drops what is past the
// retention. Data is kept by month, so once a day is plenty.
const RetentionInterval = 24 * time.Hour

// A Retainer is a Store that can drop old data (the retention_months
// setting): schema/clickhouse drops monthly partitions, schema/sqlite
// deletes rows.
type Retainer interface {
	// DropBefore drops the aggregate reports (with their records and
	// daily rollups), failure reports, TLS reports and quarantined input
	// filed before cutoff, the first day of a month (UTC): see
	// RetentionCutoff. Reports are filed under the day of their
	// date_begin, failure reports under their arrival date (else their
	// date, else the day they were read), quarantined input under the day
	// it was read. It returns how much it dropped, for the log: partitions
	// or rows, as the store counts.
	DropBefore(ctx context.Context, cutoff time.Time) (int, error)
}

// RetentionCutoff is the first day kept when months of data are kept
// before the month of now (the retention_months setting): the first day
// (UTC) of the month months before it.
func RetentionCutoff(now time.Time, months int) time.Time {
	now = now.UTC()
	return time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -months, 0)
}

// RunRetention drops what is older than months before the month of now()
// at once and then every interval (RetentionInterval when 0), until ctx
// ends. A failed run is logged and tried again at the next tick. months <= 0
// returns at once.
func RunRetention(ctx context.Context, r Retainer, months int, interval time.Duration, now func() time.Time, log *slog.Logger) {
	if months <= 0 {
		return
	}
	if interval <= 0 {
		interval = RetentionInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		cutoff := RetentionCutoff(now(), months)
		n, err := r.DropBefore(ctx, cutoff)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("retention: dropping old data failed", "dropped", n, "before", cutoff.Format(time.DateOnly), "err", err)
		case n > 0:
			log.Info("retention: old data dropped", "dropped", n, "before", cutoff.Format(time.DateOnly), "retention_months", months)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
