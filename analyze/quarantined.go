package analyze

import (
	"context"
	"fmt"
	"time"
)

// QuarantinedSince counts the inputs dmarcd could not parse and kept in
// its quarantine (the quarantined view) since a time: a growing count says
// a reporter changed its format, or the poller reads mail that is not
// reports.
func QuarantinedSince(ctx context.Context, q Querier, since time.Time) (int64, error) {
	// Times compare as the views' text, YYYY-MM-DD HH:MM:SS UTC, which
	// ClickHouse converts to its DateTime.
	rows, err := q.Query(ctx, `SELECT COUNT(*) FROM quarantined WHERE received_at >= ?`, since.UTC().Format(time.DateTime))
	if err != nil {
		return 0, fmt.Errorf("counting quarantined input: %w", err)
	}
	defer rows.Close()
	var n Count
	if rows.Next() {
		if err := rows.Scan(&n); err != nil {
			return 0, fmt.Errorf("counting quarantined input: %w", err)
		}
	}
	return int64(n), rows.Err()
}
