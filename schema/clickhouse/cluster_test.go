package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd/internal/storetest"
	"github.com/dmarcd/dmarcd/internal/testserver"
)

func TestSplitCluster(t *testing.T) {
	for _, c := range []struct{ dsn, rest, cluster string }{
		{"clickhouse://u:p@h:9000/db", "clickhouse://u:p@h:9000/db", ""},
		{"clickhouse://u:p@h:9000/db?cluster=dmarcd", "clickhouse://u:p@h:9000/db", "dmarcd"},
		{"clickhouse://u:p@h:9000/db?dial_timeout=10s&cluster=c1&secure=true", "clickhouse://u:p@h:9000/db?dial_timeout=10s&secure=true", "c1"},
	} {
		rest, cluster, err := splitCluster(c.dsn)
		if err != nil || rest != c.rest || cluster != c.cluster {
			t.Errorf("%s: %q %q %v, want %q %q", c.dsn, rest, cluster, err, c.rest, c.cluster)
		}
	}
	if _, _, err := splitCluster("clickhouse://h/db?cluster=a;DROP"); err == nil {
		t.Error("a cluster name that is not an identifier was taken")
	}
}

// TestClusterSchema rewrites every statement of the migrations for a
// cluster, and checks what the rewrite does with each kind: a statement
// it cannot rewrite fails here, not on a user's cluster.
func TestClusterSchema(t *testing.T) {
	c, err := newClusterDDL("dmarcd", "db")
	if err != nil {
		t.Fatal(err)
	}
	stmts, err := allStatements()
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, stmt := range stmts {
		out, err := c.rewrite(stmt)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range out {
			if !strings.Contains(o, " ON CLUSTER dmarcd ") {
				t.Errorf("not ON CLUSTER: %.80s", o)
			}
		}
		all = append(all, out...)
	}
	text := strings.Join(all, ";\n")
	for _, want := range []string{
		// Tables: replicated on each shard, Distributed over them,
		// sharded so that every copy of a report is on one shard.
		"CREATE TABLE IF NOT EXISTS db.aggregate_records_local ON CLUSTER dmarcd (",
		"ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/aggregate_records_local', '{replica}')\nPARTITION BY toYYYYMM(day)\nORDER BY (domain, day, source_ip, report_key, seq)",
		"CREATE TABLE IF NOT EXISTS db.aggregate_records ON CLUSTER dmarcd AS db.aggregate_records_local ENGINE = Distributed('dmarcd', 'db', 'aggregate_records_local', sipHash64(report_key))",
		"CREATE TABLE IF NOT EXISTS db.aggregate_reports ON CLUSTER dmarcd AS db.aggregate_reports_local ENGINE = Distributed('dmarcd', 'db', 'aggregate_reports_local', sipHash64(report_key))",
		"ENGINE = Distributed('dmarcd', 'db', 'quarantine_local', sipHash64(sha256))",
		"ENGINE = Distributed('dmarcd', 'db', 'alert_events_local', sipHash64(key))",
		"ENGINE = Distributed('dmarcd', 'db', 'notification_claims_local', sipHash64(notification))",
		"ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/db/schema_migrations_local', '{replica}') ORDER BY version",
		// Rollups: written by the materialized views on each shard,
		// never through their Distributed table.
		"ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/db/rollup_domains_local', '{replica}')",
		"ENGINE = Distributed('dmarcd', 'db', 'rollup_domains_local')",
		"CREATE MATERIALIZED VIEW IF NOT EXISTS db.rollup_domains_mv ON CLUSTER dmarcd TO db.rollup_domains_local AS SELECT",
		"FROM db.aggregate_records_local\nGROUP BY day, domain",
		"FROM db.aggregate_records_local\nARRAY JOIN dkim_domains AS dkim_domain",
		// Views: per shard over the local tables, Distributed over them;
		// the daily views summed again across shards.
		"CREATE VIEW IF NOT EXISTS db.records_local ON CLUSTER dmarcd AS SELECT",
		"FROM db.aggregate_records_local FINAL\nWHERE report_key IN (SELECT report_key FROM db.aggregate_reports_local)",
		"CREATE TABLE IF NOT EXISTS db.records ON CLUSTER dmarcd AS db.records_local ENGINE = Distributed('dmarcd', 'db', 'records_local')",
		"WHERE (domain, day) NOT IN (SELECT domain, day FROM db.rollup_unsettled_local)",
		"CREATE TABLE IF NOT EXISTS db.daily_domains_shards ON CLUSTER dmarcd AS db.daily_domains_local ENGINE = Distributed('dmarcd', 'db', 'daily_domains_local')",
		"CREATE VIEW IF NOT EXISTS db.daily_domains ON CLUSTER dmarcd AS SELECT day, domain, sum(messages) AS messages, sum(dmarc_pass) AS dmarc_pass, sum(dkim_aligned) AS dkim_aligned, sum(spf_aligned) AS spf_aligned, sum(quarantined) AS quarantined, sum(rejected) AS rejected FROM db.daily_domains_shards GROUP BY day, domain",
		"CREATE VIEW IF NOT EXISTS db.daily_selectors ON CLUSTER dmarcd AS SELECT day, domain, dkim_domain, selector, sum(messages) AS messages, sum(passed) AS passed FROM db.daily_selectors_shards GROUP BY day, domain, dkim_domain, selector",
		"CREATE VIEW IF NOT EXISTS db.rollup_unsettled ON CLUSTER dmarcd AS SELECT domain, day FROM db.rollup_unsettled_shards GROUP BY domain, day",
		"CREATE TABLE IF NOT EXISTS db.failures ON CLUSTER dmarcd AS db.failures_local ENGINE = Distributed('dmarcd', 'db', 'failures_local')",
		"CREATE TABLE IF NOT EXISTS db.alerts ON CLUSTER dmarcd AS db.alerts_local ENGINE = Distributed('dmarcd', 'db', 'alerts_local')",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the cluster schema lacks\n%s", want)
		}
	}
	// No statement reads a table of the schema by its plain name: it
	// would read a Distributed table from a shard.
	for _, stmt := range all {
		for _, m := range reference.FindAllStringSubmatch(stmt, -1) {
			if c.names[m[3]] {
				t.Errorf("%s reads %s, not its local table: %.100s", m[1], m[3], stmt)
			}
		}
	}
	for _, bad := range []string{
		"ALTER TABLE aggregate_reports ADD COLUMN x String",
		"CREATE TABLE IF NOT EXISTS t (a String) ENGINE = Log",
		"CREATE VIEW IF NOT EXISTS v AS SELECT domain, count() AS n FROM aggregate_reports GROUP BY domain",
	} {
		if out, err := c.rewrite(bad); err == nil {
			t.Errorf("%s: rewritten as %q", bad, out)
		}
	}
}

func TestTopLevel(t *testing.T) {
	q := "SELECT a, sum(b) AS b FROM (SELECT a, b FROM t GROUP BY a, b) WHERE x = 'GROUP BY' GROUP  BY a"
	if got := q[topLevel(q, "GROUP BY"):]; got != "GROUP  BY a" {
		t.Errorf("GROUP BY at %q", got)
	}
	if got := topLevel(q, "FROM"); q[got:got+6] != "FROM (" {
		t.Errorf("FROM at %q", q[got:])
	}
	if got := topLevel("SELECT fromage FROM t", "FROM"); got != 15 {
		t.Errorf("FROM in a word: %d", got)
	}
	if got := splitTopLevel(" a, sum(if(x, 1, 0)) AS n, 'a,b' "); len(got) != 3 || got[1] != "sum(if(x, 1, 0)) AS n" {
		t.Errorf("split: %q", got)
	}
}

// clusterEngine is the store contract's engine over a cluster: each
// location (a new database) is reached through the next server, and every
// store of one location through the same server, as docs/CLUSTER.md asks
// of the dmarcd processes sharing a store.
func clusterEngine(c *testserver.ClickHouseCluster) storetest.Engine {
	var next atomic.Int64
	return contractEngine(func(testing.TB) string {
		_, db, _ := strings.Cut(strings.TrimPrefix(c.NewDSN(), Scheme), "/")
		db, _, _ = strings.Cut(db, "?")
		return c.DSN(int(next.Add(1)-1)%len(c.Nodes), db)
	})
}

// TestClusterContract runs the store contract on a cluster of two shards
// of two replicas: a database per case, each through the next server.
func TestClusterContract(t *testing.T) {
	c := testserver.StartClickHouseCluster(t, 2, 2)
	e := clusterEngine(c)
	e.Parallel = true
	storetest.Run(t, e)
}

// TestClusterMode: a store made on a cluster is refused without the
// cluster in the DSN, one made on one server with it, and a cluster the
// servers do not know is named with those they know.
func TestClusterMode(t *testing.T) {
	c := testserver.StartClickHouseCluster(t, 1, 2)
	ctx := context.Background()
	dsn := c.NewDSN()
	s, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	plain, _, _ := strings.Cut(dsn, "?")
	if s, err := Open(ctx, plain); err == nil || !strings.Contains(err.Error(), "was made on a cluster") {
		if err == nil {
			s.Close()
		}
		t.Errorf("a cluster store opened without its cluster: %v", err)
	}
	single := testserver.ClickHouseDatabase(c.Nodes[0].DSN("x"))
	if s, err := Open(ctx, single); err != nil {
		t.Fatal(err)
	} else {
		s.Close()
	}
	if s, err := Open(ctx, single+"?cluster="+testserver.ClusterName); err == nil || !strings.Contains(err.Error(), "was made on one server") {
		if err == nil {
			s.Close()
		}
		t.Errorf("a single-server store opened on a cluster: %v", err)
	}
	if s, err := Open(ctx, plain+"?cluster=nosuch"); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("no cluster nosuch (its remote_servers define: %s)", testserver.ClusterName)) {
		if err == nil {
			s.Close()
		}
		t.Errorf("an unknown cluster: %v", err)
	}
}

// TestClusterLeases: daemons connected to different replicas race for
// leases, and at most one holds each, round after round; with a replica of
// the shard stopped, a lease is neither taken nor renewed (its inserts
// find no quorum), and once it is back, it is.
func TestClusterLeases(t *testing.T) {
	c := testserver.StartClickHouseCluster(t, 1, 2)
	ctx := context.Background()
	dsn := c.NewDSN()
	_, db, _ := strings.Cut(strings.TrimPrefix(dsn, Scheme), "/")
	db, _, _ = strings.Cut(db, "?")
	var stores []*Store
	for i := range 4 {
		s, err := Open(ctx, c.DSN(i%len(c.Nodes), db))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores = append(stores, s)
	}
	if q := stores[0].leaseQuorum; q != 2 {
		t.Fatalf("lease quorum %d on two replicas, want 2", q)
	}
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	for round := range 10 {
		at := t0.Add(time.Duration(round) * time.Hour)
		held := make([]bool, len(stores))
		var wg sync.WaitGroup
		for i, s := range stores {
			wg.Go(func() {
				ok, err := s.HoldLease(ctx, "mailbox/race", fmt.Sprint("daemon", i), at, at.Add(time.Minute))
				if err != nil {
					t.Error(err)
				}
				held[i] = ok
			})
		}
		wg.Wait()
		if n := strings.Count(fmt.Sprint(held), "true"); n > 1 {
			t.Fatalf("round %d: %d daemons on two replicas hold one lease: %v", round, n, held)
		}
	}

	a := stores[0] // on replica 1
	if ok, err := a.HoldLease(ctx, "mailbox/x", "a", t0, t0.Add(time.Minute)); !ok || err != nil {
		t.Fatalf("taking a free lease: %v %v", ok, err)
	}
	c.Nodes[1].Stop()
	if ok, err := a.HoldLease(ctx, "mailbox/x", "a", t0.Add(10*time.Second), t0.Add(time.Minute)); ok || err == nil {
		t.Errorf("renewed a lease with one replica of two: %v %v", ok, err)
	} else {
		t.Logf("without a quorum: %v", err)
	}
	if ok, err := a.HoldLease(ctx, "mailbox/y", "a", t0, t0.Add(time.Minute)); ok || err == nil {
		t.Errorf("took a lease with one replica of two: %v %v", ok, err)
	}
	if err := c.Nodes[1].Start(); err != nil {
		t.Fatal(err)
	}
	var ok bool
	var err error
	for range 50 { // the replica rejoins ZooKeeper within a few seconds
		if ok, err = a.HoldLease(ctx, "mailbox/y", "a", t0, t0.Add(time.Minute)); ok {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !ok {
		t.Errorf("no lease once the replica was back: %v", err)
	}
}
