package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slack-go/slack/slacktest"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/ingest"
	"github.com/dmarcd/dmarcd/internal/testserver"
	"github.com/dmarcd/dmarcd/schema"
)

// sharedTimeout bounds each wait of TestTwoDaemons: a takeover waits for a
// lease of lease_seconds to lapse (sharedLeaseSeconds).
const (
	sharedTimeout      = 90 * time.Second
	sharedLeaseSeconds = 3
	// midBatch is the message after which the reader is killed: the
	// third of a batch (batch_size 8), after two batches were filed.
	midBatch = 19
)

// daemon is a dmarcd run process of TestTwoDaemons, its log read as it
// writes it.
type daemon struct {
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  strings.Builder
	done chan struct{}
	kill *midBatchKill
}

// midBatchKill SIGKILLs the first daemon that ingests its at-th message,
// as it logs it: the mailbox's reader, in the middle of a batch.
type midBatchKill struct {
	at     int
	once   sync.Once
	victim chan *daemon
}

func startDaemon(t *testing.T, bin, name string, kill *midBatchKill, args ...string) *daemon {
	t.Helper()
	d := &daemon{name: name, cmd: exec.Command(bin, args...), done: make(chan struct{}), kill: kill}
	pipe, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(d.done)
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		ingested := 0
		for sc.Scan() {
			d.mu.Lock()
			d.log.WriteString(sc.Text() + "\n")
			d.mu.Unlock()
			if strings.Contains(sc.Text(), `msg="imap message ingested"`) {
				if ingested++; ingested == d.kill.at {
					d.kill.once.Do(func() {
						d.cmd.Process.Signal(syscall.SIGKILL)
						d.kill.victim <- d
					})
				}
			}
		}
		io.Copy(io.Discard, pipe)
		d.cmd.Wait()
	}()
	t.Cleanup(func() {
		d.cmd.Process.Kill()
		<-d.done
		if t.Failed() {
			t.Logf("%s logged:\n%s", d.name, d.logged())
		}
	})
	return d
}

func (d *daemon) logged() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.String()
}

// count counts the log lines with msg.
func (d *daemon) count(msg string) int { return strings.Count(d.logged(), `msg="`+msg+`"`) }

// stop ends the daemon with SIGTERM and waits for it.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(sharedTimeout):
		t.Fatalf("%s did not stop on SIGTERM", d.name)
	}
}

// slackHook is slacktest's server with an incoming webhook that records
// what is posted to it.
type slackHook struct {
	*slacktest.Server
	mu     sync.Mutex
	posted []string // the text of each message
}

func newSlackHook(t *testing.T) *slackHook {
	h := &slackHook{}
	h.Server = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/services/hook", func(w http.ResponseWriter, r *http.Request) {
			var msg struct {
				Text string `json:"text"`
			}
			if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			h.mu.Lock()
			h.posted = append(h.posted, msg.Text)
			h.mu.Unlock()
			io.WriteString(w, "ok")
		})
	})
	h.Start()
	t.Cleanup(h.Stop)
	return h
}

func (h *slackHook) url() string { return strings.TrimSuffix(h.GetAPIURL(), "/") + "/services/hook" }

func (h *slackHook) messages() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.posted)
}

// TestTwoDaemons runs two dmarcd run against one Dovecot mailbox and one
// store (a SQLite file; a ClickHouse cluster of one shard of two replicas,
// each daemon connected to its own replica), and SIGKILLs the one reading
// the mailbox in the middle of a batch: the other takes the mailbox over
// once the lease lapses, every report is stored once, every message is
// filed once, and each alert reaches Slack once, though both daemons check
// alerts (under a lease) and both queue the weekly recommendation.
func TestTwoDaemons(t *testing.T) {
	if testing.Short() {
		t.Skip("builds dmarcd and runs two daemons")
	}
	testserver.DovecotInstalled(t)
	bin := buildDmarcd(t)
	msgs := pollMessages(t, 71, 6)
	t.Logf("%d messages", len(msgs))
	want := expectPoll(t, msgs)
	ref := testserver.SQLite(t)
	in := ingest.New(ref, ingest.Options{})
	for _, m := range msgs {
		if _, err := in.Ingest(context.Background(), m.data, dmarcd.Origin{Source: "test:" + m.name}); err != nil {
			t.Fatal(err)
		}
	}
	if err := ref.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantContent := sharedContent(t, ref)
	for _, tc := range []struct {
		name   string
		stores func(t *testing.T) (a, b string)
	}{
		{"sqlite", func(t *testing.T) (string, string) {
			db := filepath.Join(t.TempDir(), "d.db")
			return db, db
		}},
		{"clickhouse cluster", func(t *testing.T) (string, string) {
			c := testserver.StartClickHouseCluster(t, 1, 2)
			db := strings.TrimPrefix(c.NewDSN(), "clickhouse://")
			_, db, _ = strings.Cut(db, "/")
			db, _, _ = strings.Cut(db, "?")
			return c.DSN(0, db), c.DSN(1, db)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testserver.Dovecot(t)
			hook := newSlackHook(t)
			dsnA, dsnB := tc.stores(t)
			// Inputs quarantined today: the quarantine alert fires at
			// the first check.
			st, err := schema.Open(context.Background(), dsnA)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				if err := st.Quarantine(context.Background(), dmarcd.Quarantined{Origin: dmarcd.Origin{Source: fmt.Sprint("test:", i), ReceivedAt: time.Now()},
					Reason: "not a report", Raw: []byte(fmt.Sprint("junk ", i))}); err != nil {
					t.Fatal(err)
				}
			}
			st.Close()
			cfg := writePollConfig(t, srv, fmt.Sprintf(`lease_seconds = %d
[dns]
resolver = "127.0.0.1:1"
timeout_seconds = 1
[alerts]
quarantine_per_day = 1
[web]
listen = ""
[slack]
webhook_url = %q
[[domain]]
name = "example.com"
`, sharedLeaseSeconds, hook.url()))
			args := func(dsn string) []string {
				return []string{"--config", cfg, "--store", dsn, "--log-level", "debug", "run"}
			}
			kill := &midBatchKill{at: midBatch, victim: make(chan *daemon, 1)}
			a := startDaemon(t, bin, "daemon A", kill, args(dsnA)...)
			b := startDaemon(t, bin, "daemon B", kill, args(dsnB)...)
			daemons := []*daemon{a, b}
			waitFor := func(what string, cond func() bool) {
				t.Helper()
				for deadline := time.Now().Add(sharedTimeout); !cond(); time.Sleep(50 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatalf("%s did not happen within %v", what, sharedTimeout)
					}
				}
			}
			holders := func(msg string) []*daemon {
				var out []*daemon
				for _, d := range daemons {
					if d.count(msg) > 0 {
						out = append(out, d)
					}
				}
				return out
			}
			waitFor("a daemon reading the mailbox", func() bool { return len(holders("reading the mailbox: this dmarcd holds its lease")) > 0 })
			waitFor("a daemon checking alerts", func() bool { return len(holders("checking alerts: this dmarcd holds the alerts lease")) > 0 })
			waitFor("the other standing by", func() bool {
				return len(holders("another dmarcd reads the mailbox: standing by")) > 0 && len(holders("another dmarcd checks the alerts: standing by")) > 0
			})
			if n := len(holders("reading the mailbox: this dmarcd holds its lease")); n != 1 {
				t.Fatalf("%d daemons read the mailbox at once", n)
			}
			if n := len(holders("checking alerts: this dmarcd holds the alerts lease")); n != 1 {
				t.Fatalf("%d daemons check the alerts at once", n)
			}
			waitFor("the quarantine alert in Slack", func() bool {
				return slices.ContainsFunc(hook.messages(), func(m string) bool { return strings.Contains(m, "inputs quarantined in the last day") })
			})

			reader := holders("reading the mailbox: this dmarcd holds its lease")[0]
			other := a
			if reader == a {
				other = b
			}
			srv.Append("INBOX", datas(msgs)...)
			var victim *daemon
			select {
			case victim = <-kill.victim:
			case <-time.After(sharedTimeout):
				t.Fatalf("the reader did not ingest %d messages within %v", midBatch, sharedTimeout)
			}
			if victim != reader {
				t.Fatalf("%s ingested while %s held the mailbox", victim.name, reader.name)
			}
			<-reader.done
			t.Logf("killed %s after %d messages ingested, %d batches moved", reader.name, reader.count("imap message ingested"), reader.count("imap messages moved"))
			waitFor("the takeover", func() bool { return other.count("reading the mailbox: this dmarcd holds its lease") > 0 })
			waitFor("the mailbox read", func() bool { return len(srv.Messages("INBOX")) == 0 })
			// The quarantine alert again, for the mail without a report,
			// is the alert still firing: nothing new to post.
			waitFor("the alerts taken over", func() bool { return other.count("checking alerts: this dmarcd holds the alerts lease") > 0 })
			passes := other.count("imap pass done")
			waitFor("a pass after", func() bool { return other.count("imap pass done") > passes })
			st, err = schema.Open(context.Background(), dsnA)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			as := st.(dmarcd.AlertStore)
			waitFor("the outbox emptied", func() bool {
				pending, err := as.PendingNotifications(context.Background())
				return err == nil && len(pending) == 0
			})
			other.stop(t)

			if got := sharedContent(t, st); got != wantContent {
				t.Errorf("the store differs from a direct ingest:\n--- polled\n%s--- direct\n%s", got, want.content)
			}
			if got := folderTexts(srv, "dmarc-archive"); !slices.Equal(got, want.archive) {
				t.Errorf("the archive holds %d messages, want exactly the %d with reports, once each", len(got), len(want.archive))
			}
			if got := folderTexts(srv, "dmarc-invalid"); !slices.Equal(got, want.invalid) {
				t.Errorf("the invalid folder holds %d messages, want exactly the %d without", len(got), len(want.invalid))
			}
			posted := hook.messages()
			states, err := as.AlertStates(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			firing := 0
			for _, s := range states {
				if s.State == dmarcd.AlertFiring {
					firing++
				}
			}
			t.Logf("Slack got %d messages, %d alerts firing", len(posted), firing)
			seen := map[string]int{}
			for _, m := range posted {
				seen[m]++
			}
			for m, n := range seen {
				if n > 1 {
					t.Errorf("posted %d times: %s", n, m)
				}
			}
			if firing == 0 || len(posted) < firing {
				t.Errorf("%d messages in Slack for %d firing alerts", len(posted), firing)
			}
		})
	}
}

// sharedContent is storeContent over the views every store has: the
// reports and the quarantine, each once.
func sharedContent(t testing.TB, st dmarcd.Store) string {
	var b strings.Builder
	for _, q := range []string{
		"SELECT report_key FROM reports ORDER BY report_key",
		"SELECT COUNT(*), SUM(count) FROM records",
		"SELECT COUNT(*) FROM failures",
		"SELECT COUNT(*) FROM tls_reports",
	} {
		rows, err := st.Query(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				if i > 0 {
					b.WriteString(" ")
				}
				fmt.Fprint(&b, deref(v))
			}
			b.WriteString("\n")
			n++
		}
		rows.Close()
		fmt.Fprintf(&b, "(%d rows)\n", n)
	}
	return b.String()
}

// deref renders a scanned value the same whichever store gave it.
func deref(v any) any {
	switch v := v.(type) {
	case []byte:
		return string(v)
	case *int64:
		if v == nil {
			return "NULL"
		}
		return *v
	case *uint64:
		if v == nil {
			return "NULL"
		}
		return *v
	case *float64:
		if v == nil {
			return "NULL"
		}
		return *v
	}
	return v
}
