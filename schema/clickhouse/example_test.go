package clickhouse_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"time"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/analyze"
	"github.com/dmarcd/dmarcd/schema/clickhouse"
)

// Open a ClickHouse store, keep 13 months of reports, and read the
// per-domain compliance from the rollups. (Not run: it needs a server.)
func Example() {
	ctx := context.Background()
	s, err := clickhouse.Open(ctx, "clickhouse://dmarcd:secret@clickhouse.example.com:9000/dmarcd")
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	// The daemon runs this in the background: it drops the monthly
	// partitions older than 13 months now and then once a day.
	go dmarcd.RunRetention(ctx, s, 13, dmarcd.RetentionInterval, time.Now, slog.Default())

	domains, err := analyze.Domains(ctx, s)
	if err != nil {
		log.Fatal(err)
	}
	for _, d := range domains {
		fmt.Printf("%s: %.1f%% of %d messages pass DMARC\n", d.Domain, 100*d.PassRate(), d.Messages)
	}
}
