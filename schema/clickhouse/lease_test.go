package clickhouse

import (
	"context"
	"testing"
	"time"
)

// TestLeaseLogCollapses: the renewals of a lease are rows until the parts
// merge (the server merges small parts within seconds), then one: the log
// grows with the terms, not with the renewals, and a lease reads the same
// before and after the merge.
func TestLeaseLogCollapses(t *testing.T) {
	s, _ := openTemp(t, Options{})
	ctx := context.Background()
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	const renewals = 30
	for i := range renewals {
		at := t0.Add(time.Duration(i) * 20 * time.Second)
		if ok, err := s.HoldLease(ctx, "mailbox/a", "daemon1", at, at.Add(time.Minute)); !ok || err != nil {
			t.Fatalf("renewal %d: %v %v", i, ok, err)
		}
	}
	rows := func() uint64 {
		var n uint64
		if err := s.conn.QueryRow(ctx, "SELECT count() FROM lease_log WHERE name = 'mailbox/a'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// The bid, the first hold and the renewals, less what the server
	// merged already.
	if n := rows(); n < 2 || n > renewals+1 {
		t.Fatalf("%d rows before the merge, want 2 to %d", n, renewals+1)
	}
	before, err := s.readLease(ctx, "mailbox/a")
	if err != nil {
		t.Fatal(err)
	}
	// What a merge keeps: FINAL merges at read time.
	var final uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM lease_log FINAL WHERE name = 'mailbox/a'").Scan(&final); err != nil {
		t.Fatal(err)
	}
	if final != 2 {
		t.Errorf("%d rows merged, want 2 (the bid and the latest hold)", final)
	}
	// The merge itself: OPTIMIZE returns without merging when the server
	// merges those parts already (a loaded machine); try again a while.
	for deadline := time.Now().Add(30 * time.Second); ; {
		if err := s.conn.Exec(ctx, "OPTIMIZE TABLE lease_log FINAL"); err != nil {
			t.Fatal(err)
		}
		n := rows()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d rows after merging, want 2 (the bid and the latest hold)", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	after, err := s.readLease(ctx, "mailbox/a")
	if err != nil {
		t.Fatal(err)
	}
	if after.term != before.term || after.holder != "daemon1" || !after.until.Equal(before.until) {
		t.Errorf("the lease before the merge %+v, after %+v", before, after)
	}
	// Another daemon still cannot take it; its holder renews it.
	at := t0.Add(renewals * 20 * time.Second)
	if ok, err := s.HoldLease(ctx, "mailbox/a", "daemon2", at, at.Add(time.Minute)); ok || err != nil {
		t.Errorf("another daemon took a held lease: %v %v", ok, err)
	}
	if ok, err := s.HoldLease(ctx, "mailbox/a", "daemon1", at, at.Add(time.Minute)); !ok || err != nil {
		t.Errorf("its holder could not renew it after the merge: %v %v", ok, err)
	}
}
