package testserver

import (
	"context"
	"fmt"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
)

// TestClickHouseCluster starts one shard of two replicas: a table created
// ON CLUSTER is replicated, a row written on one replica shows on the
// other, also on one that was stopped while it was written.
func TestClickHouseCluster(t *testing.T) {
	start := time.Now()
	c := StartClickHouseCluster(t, 1, 2)
	t.Logf("ZooKeeper and 2 servers answered in %v", time.Since(start).Round(time.Millisecond))
	ctx := context.Background()
	open := func(n *ClickHouseNode) ch.Conn {
		t.Helper()
		conn, err := ch.Open(&ch.Options{Addr: []string{fmt.Sprintf("127.0.0.1:%d", n.Port)}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	a, b := open(c.Nodes[0]), open(c.Nodes[1])
	for _, q := range []string{
		"CREATE DATABASE IF NOT EXISTS t ON CLUSTER " + ClusterName,
		"CREATE TABLE t.x ON CLUSTER " + ClusterName + " (s String) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/t/x', '{replica}') ORDER BY s",
	} {
		if err := a.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	insert := func(conn ch.Conn, s string) {
		t.Helper()
		batch, err := conn.PrepareBatch(ctx, "INSERT INTO t.x (s)")
		if err != nil {
			t.Fatal(err)
		}
		if err := batch.Append(s); err != nil {
			t.Fatal(err)
		}
		if err := batch.Send(); err != nil {
			t.Fatal(err)
		}
	}
	// waitFor waits until conn's replica holds n rows.
	waitFor := func(conn ch.Conn, n uint64) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			var got uint64
			if err := conn.QueryRow(ctx, "SELECT count() FROM t.x").Scan(&got); err == nil && got == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the replica does not hold %d rows after 30 s", n)
			}
		}
	}
	insert(a, "one")
	waitFor(b, 1)

	stop := time.Now()
	c.Nodes[1].Stop()
	t.Logf("a replica stopped in %v", time.Since(stop).Round(time.Millisecond))
	insert(a, "two")
	if err := c.Nodes[1].Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(open(c.Nodes[1]), 2)
	t.Logf("it started again and caught up in %v", time.Since(stop).Round(time.Millisecond))
}
