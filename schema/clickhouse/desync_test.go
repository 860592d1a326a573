package clickhouse

import (
	"context"
	"testing"

	"github.com/dmarcd/dmarcd/internal/storetest"
)

// TestFailedQueryLeavesPool: a query the server refuses (a syntax error, a
// write, an unknown column) does not poison the next ones: ClickHouse
// 18.16 leaves the end of a refused query unread on its connection, so the
// connection is closed rather than pooled (readpool.go).
func TestFailedQueryLeavesPool(t *testing.T) {
	s, _ := openTemp(t, Options{})
	if err := storetest.Store(t, s, storetest.Report("r1"), storetest.Records()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, q := range []string{`DELETE FROM aggregate_reports`, `SELEC 1`, `SELECT nosuchcolumn FROM reports`, `DROP TABLE aggregate_reports`} {
		if rows, err := s.Query(ctx, q); err == nil {
			err = rows.Err()
			rows.Close()
			if err == nil {
				t.Errorf("%s: no error", q)
			}
		}
		for range 3 {
			if got := queryString(t, s, `SELECT COUNT(*) FROM reports`); got != "1\n" {
				t.Errorf("after %s: %q", q, got)
			}
		}
	}
}
