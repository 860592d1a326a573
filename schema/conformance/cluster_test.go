package conformance

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/analyze"
	"github.com/dmarcd/dmarcd/ingest"
	"github.com/dmarcd/dmarcd/internal/testserver"
	"github.com/dmarcd/dmarcd/schema/clickhouse"
)

// The cluster the cluster tests run on: two shards of two replicas, so
// that reports are spread over shards and every row has a copy.
const (
	clusterShards   = 2
	clusterReplicas = 2
)

// replicaSyncTimeout bounds the wait for a replica to fetch what the other
// replica of its shard holds.
const replicaSyncTimeout = 2 * time.Minute

// clusterDatabase returns the name of a database no test uses yet.
func clusterDatabase(c *testserver.ClickHouseCluster) string {
	_, rest, _ := strings.Cut(c.NewDSN(), "127.0.0.1:")
	_, db, _ := strings.Cut(rest, "/")
	db, _, _ = strings.Cut(db, "?")
	return db
}

// syncReplicas waits until the replicas of database on nodes (every
// server of c when none is named) hold the same rows as the other replicas
// of their shard named: each replicated table is synced (SYSTEM SYNC
// REPLICA), then its rows counted, again until the counts agree. It
// returns how long that took.
func syncReplicas(t *testing.T, c *testserver.ClickHouseCluster, database string, nodes ...*testserver.ClickHouseNode) time.Duration {
	t.Helper()
	if len(nodes) == 0 {
		nodes = c.Nodes
	}
	ctx, cancel := context.WithTimeout(context.Background(), replicaSyncTimeout)
	defer cancel()
	start := time.Now()
	conns := make([]ch.Conn, len(nodes))
	for i, n := range nodes {
		conn, err := ch.Open(&ch.Options{Addr: []string{fmt.Sprintf("127.0.0.1:%d", n.Port)}, ReadTimeout: replicaSyncTimeout})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conns[i] = conn
	}
	for {
		counts := map[int]map[string]uint64{} // shard -> table -> rows
		agree := true
		for i, n := range nodes {
			got := replicaRows(t, ctx, conns[i], n, database)
			if want, ok := counts[n.Shard]; !ok {
				counts[n.Shard] = got
			} else if !reflect.DeepEqual(got, want) {
				agree = false
				if ctx.Err() != nil {
					t.Fatalf("%s holds other rows than another replica of its shard after %v:\n got %v\nwant %v", n, replicaSyncTimeout, got, want)
				}
			}
		}
		if agree {
			return time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// replicaRows syncs each replicated table of database on the server of
// conn and counts its rows.
func replicaRows(t *testing.T, ctx context.Context, conn ch.Conn, n *testserver.ClickHouseNode, database string) map[string]uint64 {
	t.Helper()
	var tables []string
	rows, err := conn.Query(ctx, "SELECT name FROM system.tables WHERE database = ? AND engine LIKE 'Replicated%' ORDER BY name", database)
	if err != nil {
		t.Fatalf("%s: %v", n, err)
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	if len(tables) == 0 {
		t.Fatalf("%s holds no replicated table of %s", n, database)
	}
	got := map[string]uint64{}
	for _, table := range tables {
		if err := conn.Exec(ctx, "SYSTEM SYNC REPLICA "+database+"."+table); err != nil {
			t.Fatalf("%s: syncing %s: %v", n, table, err)
		}
		var rows uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM "+database+"."+table).Scan(&rows); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		got[table] = rows
	}
	return got
}

// TestClusterCorpus ingests the corpus into a cluster of two shards of two
// replicas and checks that every query of checks, and every read of
// package analyze, gives the answers of SQLite: through the server it was
// written through, through a server of the other shard, after a second
// ingest through that other server (every report a duplicate), after a
// replica was stopped while half of the corpus was written and started
// again (it catches up), and after a connection was cut in the middle of
// an insert and the ingest retried.
func TestClusterCorpus(t *testing.T) {
	inputs := corpusInputs(t)
	lite := openSQLite(t)
	first := ingestAll(t, lite, inputs)
	addAlertHistory(t, lite)
	want := answers(t, lite)
	wantReads := readAll(t, lite)
	wantDomains := domains(t, lite)

	start := time.Now()
	c := testserver.StartClickHouseCluster(t, clusterShards, clusterReplicas)
	t.Logf("cluster of %d shards of %d replicas answered in %v", clusterShards, clusterReplicas, time.Since(start).Round(time.Millisecond))

	// The first two run at once, on databases of their own; the third
	// stops a server, and runs alone after them.
	t.Run("writes", func(t *testing.T) {
		t.Run("through either server, twice", func(t *testing.T) {
			t.Parallel()
			throughEither(t, c, inputs, first, want, wantReads)
		})
		t.Run("connection cut", func(t *testing.T) {
			t.Parallel()
			connectionCut(t, c, inputs, want)
		})
	})
	t.Run("a replica stopped and started again catches up", func(t *testing.T) {
		replicaStopped(t, c, inputs, want, wantDomains)
	})
}

// throughEither ingests the corpus through a server of shard 1 and compares
// the answers through it and through a server of shard 2, then ingests it
// again through the latter: every report a duplicate.
func throughEither(t *testing.T, c *testserver.ClickHouseCluster, inputs []ingest.Input, first ingest.Summary, want map[string][]string, wantReads map[string]readAnswers) {
	last := len(c.Nodes) - 1 // shard 2, replica 2
	db := clusterDatabase(c)
	start := time.Now()
	a := openClickHouse(t, c.DSN(0, db))
	t.Logf("migrated on the cluster in %v", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	sum := ingestAll(t, a, inputs)
	t.Logf("ingested through %s in %v", c.Nodes[0], time.Since(start).Round(time.Millisecond))
	if sum.Aggregate != first.Aggregate || sum.Failure != first.Failure || sum.TLS != first.TLS || sum.Duplicates != first.Duplicates ||
		sum.Quarantined != first.Quarantined || sum.Records != first.Records {
		t.Errorf("ingest into the cluster: %+v, into SQLite: %+v", sum, first)
	}
	addAlertHistory(t, a)
	compare(t, "through "+c.Nodes[0].String(), want, answers(t, a))
	compareReads(t, "through "+c.Nodes[0].String(), wantReads, readAll(t, a))

	// Another server, of the other shard, reads what the first
	// wrote once its replica fetched it.
	t.Logf("replicas synced in %v", syncReplicas(t, c, db).Round(time.Millisecond))
	b := openClickHouse(t, c.DSN(last, db))
	compare(t, "through "+c.Nodes[last].String(), want, answers(t, b))

	again := ingestAll(t, b, inputs)
	if again.Aggregate != 0 || again.Failure != 0 || again.TLS != 0 || again.Duplicates != first.Aggregate+first.Failure+first.TLS+first.Duplicates {
		t.Errorf("second pass through %s: %+v", c.Nodes[last], again)
	}
	compare(t, "twice", want, answers(t, b))
	checkSettled(t, b)
}

// replicaStopped stops shard 1's first replica while half the corpus is
// written, starts it again, and reads through it once it caught up.
func replicaStopped(t *testing.T, c *testserver.ClickHouseCluster, inputs []ingest.Input, want map[string][]string, wantDomains []analyze.DomainCompliance) {
	last := len(c.Nodes) - 1
	db := clusterDatabase(c)
	s := openClickHouse(t, c.DSN(last, db))
	half := len(inputs) / 2
	ingestAll(t, s, inputs[:half])
	// What a replica holds and the other has not fetched yet is
	// unseen while it is stopped: wait for the fetches.
	syncReplicas(t, c, db)
	// Shard 1's first replica, the one every server reads and
	// writes shard 1 on while it runs.
	stopped := c.Nodes[0]
	stopped.Stop()
	start := time.Now()
	ingestAll(t, s, inputs[half:])
	t.Logf("ingested the second half through %s while %s was stopped in %v", c.Nodes[last], stopped, time.Since(start).Round(time.Millisecond))
	addAlertHistory(t, s)
	compare(t, "while a replica is stopped", want, answers(t, s))
	if err := stopped.Start(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s caught up in %v", stopped, syncReplicas(t, c, db, stopped, c.Nodes[1]).Round(time.Millisecond))
	// Through the restarted server, which reads shard 1 on itself.
	r := openClickHouse(t, c.DSN(0, db))
	compare(t, "through the restarted replica", want, answers(t, r))
	if got := domains(t, r); !reflect.DeepEqual(got, wantDomains) {
		t.Errorf("analyze.Domains through the restarted replica\n got: %+v\nwant: %+v", got, wantDomains)
	}
}

// connectionCut cuts the connection to a server of shard 1, replica 2, in
// the middle of the insert of a group's records, whose insert the server
// stores but does not answer, and retries the ingest: the answers are
// SQLite's. TestCutConnection cuts at more points on one server.
func connectionCut(t *testing.T, c *testserver.ClickHouseCluster, inputs []ingest.Input, want map[string][]string) {
	for _, cc := range []struct {
		name string
		opts clickhouse.Options
		cut  cut
	}{
		{"group 4, records, stored but unanswered", clickhouse.Options{GroupReports: 8}, cut{marker: "INSERT INTO aggregate_records", nth: 4, mode: cutUnanswered}},
	} {
		t.Run(cc.name, func(t *testing.T) {
			db := clusterDatabase(c)
			// Migrate before the proxy is armed.
			openClickHouse(t, c.DSN(1, db))
			p := newProxy(t, c.DSN(1, db))
			p.arm(cc.cut)
			s, err := clickhouse.OpenOptions(context.Background(), p.dsn(c.DSN(1, db)), cc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			in := ingester(s)
			if _, err := in.Files(context.Background(), inputs, nil); err == nil || !p.fired() {
				t.Fatalf("the cut did not happen (fired %v, ingest: %v)", p.fired(), err)
			} else {
				t.Logf("cut: %v", err)
			}
			waitForInserts(t, s)
			retry(t, in, inputs)
			addAlertHistory(t, s)
			compare(t, "after the cut and a retry", want, answers(t, s))
			checkSettled(t, s)
		})
	}
}

// retry ingests inputs again until a pass stores everything, as the
// daemon's next pass does; the pool may hold another connection a cut
// broke.
func retry(t *testing.T, in *ingest.Ingester, inputs []ingest.Input) {
	t.Helper()
	var err error
	for attempt := range 3 {
		if _, err = in.Files(context.Background(), inputs, nil); err == nil {
			return
		}
		t.Logf("retry %d: %v", attempt+1, err)
	}
	t.Fatalf("retry: %v", err)
}

// checkSettled logs how many report days the daily views read from the
// base tables rather than the rollups, and fails when there are any: the
// ingests of the cluster tests feed no record twice.
func checkSettled(t *testing.T, s dmarcd.Store) {
	t.Helper()
	rows, err := queryRows(s, "SELECT count() FROM rollup_unsettled")
	if err != nil {
		t.Fatal(err)
	}
	if rows[0] != "0" {
		t.Errorf("%s unsettled days: a record was fed to the rollups twice, or a report row written twice", rows[0])
	}
}
