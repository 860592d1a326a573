package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/internal/testserver"
	"github.com/dmarcd/dmarcd/schema/clickhouse"
)

// TestRunRetention runs the daemon on a ClickHouse store with
// retention_months: it drops the months past the retention at start, and
// logs what it dropped.
func TestRunRetention(t *testing.T) {
	dsn := testserver.ClickHouse(t)
	ctx := context.Background()
	house, err := clickhouse.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	now := testNow
	old := now.AddDate(0, -4, 0)
	for i, begin := range []time.Time{old, now} {
		r := &dmarcd.AggregateReport{
			Metadata: dmarcd.ReportMetadata{OrgName: "google.com", ReportID: fmt.Sprint("r", i), DateBegin: begin, DateEnd: begin.Add(time.Hour)},
			Policy:   dmarcd.PolicyPublished{Domain: "example.com", P: "none", Pct: dmarcd.PctAbsent},
		}
		w, err := house.BeginAggregate(ctx, r, dmarcd.Origin{Source: "test", ReceivedAt: now})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(ctx, &dmarcd.Record{SourceIP: "192.0.2.1", Count: 3, Disposition: "none", DKIM: "pass", SPF: "pass"}); err != nil {
			t.Fatal(err)
		}
		r.RecordCount, r.MessageCount = 1, 3
		if err := w.Commit(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := house.Close(); err != nil { // writes the reports
		t.Fatal(err)
	}

	// A mailbox nobody answers: the daemon keeps trying it meanwhile.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	path := filepath.Join(t.TempDir(), "dmarcd.toml")
	toml := fmt.Sprintf("retention_months = 1\n[[mailbox]]\nname = \"nobody\"\nhost = \"127.0.0.1\"\nport = %d\ntls = \"plain\"\nusername = \"u\"\npassword = \"p\"\n", port)
	if err := os.WriteFile(path, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store = dsn
	cfg.Web.Listen = "" // no web page: it would take a fixed port

	var logs testserver.Output
	runCtx, stop := context.WithCancel(ctx)
	e := &env{ctx: runCtx, cfg: cfg, log: slog.New(slog.NewTextHandler(&logs, nil)), stdout: io.Discard, stderr: io.Discard, now: testClock}
	done := make(chan error, 1)
	go func() { done <- runCmd{}.Run(e) }()
	oldMonth := fmt.Sprint(old.Year()*100 + int(old.Month()))
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(logs.String(), "retention: old data dropped"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("no retention run logged:\n%s", logs.String())
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
	log := logs.String()
	for _, want := range []string{
		"msg=\"retention: dropping the data of months older than the retention\" retention_months=1",
		"msg=\"dropped old partition\"", "table=aggregate_records month=" + oldMonth, "table=rollup_domains month=" + oldMonth,
		"dropped=",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %q:\n%s", want, log)
		}
	}

	house, err = clickhouse.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer house.Close()
	rows, err := house.Query(ctx, "SELECT report_id FROM reports")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if strings.Join(ids, ",") != "r1" {
		t.Errorf("reports after retention: %v, want only the recent r1", ids)
	}
}
