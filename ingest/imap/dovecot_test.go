package imap

// Integration tests against a real Dovecot, started by the test on a
// loopback port (internal/testserver). They are skipped where Dovecot is not
// installed, and fail then under CI=true.

import (
	"context"
	"fmt"
	"log/slog"
	"path"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/dmarcd/dmarcd/internal/corpus"
	"github.com/dmarcd/dmarcd/internal/reportgen"
	"github.com/dmarcd/dmarcd/internal/testserver"
	"github.com/dmarcd/dmarcd/schema/sqlite"
)

// corpusMessages returns the mail messages of the shared corpus (the .eml
// files of its aggregate, forensic and tls-rpt reports) and its malformed
// reports, attached to mails as they would arrive.
func corpusMessages(t testing.TB) []testMessage {
	t.Helper()
	var out []testMessage
	for _, rel := range corpus.Files(t, "aggregate", "forensic", "tls-rpt") {
		if strings.HasSuffix(rel, ".eml") {
			out = append(out, testMessage{Name: rel, Data: corpus.Read(t, rel)})
		}
	}
	for _, rel := range corpus.Files(t, "malformed") {
		out = append(out, testMessage{Name: rel, Data: attachmentMail(path.Base(rel), "text/xml", corpus.Read(t, rel))})
	}
	return out
}

func dovecotMailbox(s *testserver.DovecotServer) Mailbox {
	return Mailbox{Name: "dovecot", Host: s.Host, Port: s.Port, TLS: TLSNone, Username: s.User, Password: s.Password}
}

// checkFolders asserts that the inbox is empty and that the archive and
// invalid folders hold exactly the messages a direct ingest says.
func checkFolders(t *testing.T, s *testserver.DovecotServer, msgs []testMessage, want expectation) {
	t.Helper()
	var archived, invalid []testMessage
	for _, m := range msgs {
		if want.invalid[m.Name] {
			invalid = append(invalid, m)
		} else {
			archived = append(archived, m)
		}
	}
	if n := len(folderMessages(t, s.Addr(), s.User, s.Password, "INBOX")); n != 0 {
		t.Errorf("%d messages left in INBOX", n)
	}
	for folder, want := range map[string][]testMessage{DefaultArchiveFolder: archived, DefaultInvalidFolder: invalid} {
		got := folderMessages(t, s.Addr(), s.User, s.Password, folder)
		if strings.Join(got, "\x00") != strings.Join(messageTexts(want), "\x00") {
			t.Errorf("%s holds %d messages, want exactly these %d: %v", folder, len(got), len(want), names(want))
		}
	}
}

func names(msgs []testMessage) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.Name)
	}
	return out
}

// TestDovecotCorpus puts the corpus's mail and generated report mail into a
// Dovecot inbox and polls once: every report is stored once (as a direct
// ingest of the same messages stores them), every message is archived or
// invalid as it should, the inbox is empty, and a second pass adds nothing.
func TestDovecotCorpus(t *testing.T) {
	srv := testserver.Dovecot(t)
	msgs := append(corpusMessages(t), generated(21, 3, 4)...)
	want := expect(t, msgs)
	appendAll(t, srv.Addr(), srv.User, srv.Password, "INBOX", msgs)

	st := openStore(t)
	mb := dovecotMailbox(srv)
	mb.BatchSize = 16
	p, m, _ := newPoller(t, mb, st, Options{})
	start := time.Now()
	sum, err := p.Once(context.Background())
	if err != nil {
		t.Fatalf("%v\n%s", err, srv.Log())
	}
	t.Logf("%d messages (%d archived, %d invalid) in %s: %+v; the store holds %s",
		len(msgs), want.Archive, want.Invalid, time.Since(start).Round(time.Millisecond), sum, contentOf(t, st))
	if got := contentOf(t, st); !equalContent(got, want.Content) {
		t.Errorf("store holds %s; a direct ingest %s", got, want.Content)
	}
	if sum.Messages != len(msgs) || sum.Archived != want.Archive || sum.Invalid != want.Invalid {
		t.Errorf("summary %+v, want %d messages, %d archived, %d invalid", sum, len(msgs), want.Archive, want.Invalid)
	}
	checkFolders(t, srv, msgs, want)
	if v := counterValue(t, m.Quarantined.WithLabelValues("dovecot")); v != float64(sum.Quarantined) || v == 0 {
		t.Errorf("quarantined metric %v, summary %d", v, sum.Quarantined)
	}

	sum, err = p.Once(context.Background())
	if err != nil || sum.Messages != 0 {
		t.Errorf("second pass: %+v, %v", sum, err)
	}
	if got := contentOf(t, st); !equalContent(got, want.Content) {
		t.Errorf("after a second pass the store holds %s, want %s", got, want.Content)
	}
}

// TestDovecotRestart stops Dovecot in the middle of a pass (a batch was
// ingested in part and not moved yet) and starts it again: Once reconnects
// and finishes, and every report is still stored once. Then Run, waiting in
// IDLE, sees the server restart, reconnects, and reads new mail.
func TestDovecotRestart(t *testing.T) {
	srv := testserver.Dovecot(t)
	msgs := generated(22, 12, 6)
	more := generated(23, 2, 2)
	want := expect(t, append(append([]testMessage{}, msgs...), more...))
	appendAll(t, srv.Addr(), srv.User, srv.Password, "INBOX", msgs)

	st := openStore(t)
	mb := dovecotMailbox(srv)
	mb.BatchSize = 10
	mb.PollInterval = time.Hour // only IDLE can wake Run
	p, m, lb := newPoller(t, mb, st, Options{InitialBackoff: 100 * time.Millisecond, MaxBackoff: 400 * time.Millisecond, OnceAttempts: 20})
	var restarted sync.WaitGroup
	n := 0
	p.afterMessage = func(string, imap.UID) {
		if n++; n == 25 {
			srv.Stop()
			restarted.Go(func() {
				time.Sleep(300 * time.Millisecond)
				srv.Start()
			})
		}
	}
	sum, err := p.Once(context.Background())
	restarted.Wait()
	if err != nil {
		t.Fatalf("Once across a restart: %v\n%s", err, lb)
	}
	t.Logf("%d messages across a restart after 25: %+v", len(msgs), sum)
	if sum.Messages < len(msgs) || sum.Duplicates == 0 {
		t.Errorf("summary %+v: want every message read and the unmoved ones read again", sum)
	}
	if v := counterValue(t, m.Errors.WithLabelValues("dovecot", ErrConnect)); v < 1 {
		t.Errorf("connect errors metric %v", v)
	}
	counts := folderCounts(t, srv.Addr(), srv.User, srv.Password, "INBOX", DefaultArchiveFolder, DefaultInvalidFolder)
	if counts["INBOX"] != 0 || counts[DefaultArchiveFolder]+counts[DefaultInvalidFolder] != len(msgs) {
		t.Errorf("folders %v after Once", counts)
	}

	// Run: IDLE, a restart, then new mail.
	p.afterMessage = nil
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	eventually(t, 5*time.Second, "Run is in IDLE", func() bool { return strings.Contains(lb.String(), "imap pass done") })
	time.Sleep(200 * time.Millisecond)
	before := counterValue(t, m.Errors.WithLabelValues("dovecot", ErrConnect))
	srv.Stop()
	time.Sleep(300 * time.Millisecond)
	srv.Start()
	appendAll(t, srv.Addr(), srv.User, srv.Password, "INBOX", more)
	eventually(t, 10*time.Second, "Run read the mail that came after the restart", func() bool {
		return folderCounts(t, srv.Addr(), srv.User, srv.Password, "INBOX")["INBOX"] == 0
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if after := counterValue(t, m.Errors.WithLabelValues("dovecot", ErrConnect)); after <= before {
		t.Errorf("the dropped IDLE connection was not counted (%v, %v)", before, after)
	}
	if got := contentOf(t, st); !equalContent(got, want.Content) {
		t.Errorf("store holds %s, want %s", got, want.Content)
	}
	all := append(append([]testMessage{}, msgs...), more...)
	checkFolders(t, srv, all, want)
}

// TestDovecotBackfill reads a large inbox: in batches, with progress lines,
// and with a live heap that stays small whatever the inbox's size.
func TestDovecotBackfill(t *testing.T) {
	if testing.Short() {
		t.Skip("thousands of messages")
	}
	srv := testserver.Dovecot(t)
	g := reportgen.New(reportgen.Options{Seed: 77, Days: 250, Domains: []string{"example.com", "example.net"}, MessagesPerDay: 20, Sources: 3})
	// Each message carries 32 KiB of text after its last MIME part, as
	// a bulky mail would, so that the inbox is far larger than the bound.
	filler := strings.Repeat("This epilogue is ignored by MIME readers; it only makes the message larger.\r\n", 32<<10/76)
	var msgs [][]byte
	var size int64
	for _, f := range g.Files() {
		if strings.HasSuffix(f.Name, ".eml") {
			m := append(f.Data, filler...)
			msgs = append(msgs, m)
			size += int64(len(m))
		}
	}
	srv.Deliver(msgs...)
	count := len(msgs)
	msgs, g = nil, nil // not to be measured

	mb := dovecotMailbox(srv)
	mb.BatchSize = 100
	// Info, not debug: a log buffer growing by a line a message would
	// be measured too.
	lb := &logBuffer{}
	log := slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelInfo}))
	p, _, _ := newPoller(t, mb, openStore(t), Options{ProgressEvery: 1000, Logger: log})

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	stop, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.GC() // the live heap, not the garbage awaiting collection
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
		}
	}()
	start := time.Now()
	sum, err := p.Once(context.Background())
	close(stop)
	<-sampled
	if err != nil {
		t.Fatal(err)
	}
	growth := int64(peak.Load()) - int64(before.HeapAlloc)
	t.Logf("%d messages (%d MiB) in %s, batches of %d: the live heap grew by at most %d KiB",
		count, size>>20, time.Since(start).Round(time.Millisecond), mb.BatchSize, growth>>10)
	if sum.Messages != count || sum.Archived != count {
		t.Errorf("summary %+v, want %d archived", sum, count)
	}
	if growth > MaxBackfillHeapGrowth {
		t.Errorf("the live heap grew by %d KiB reading %d MiB of mail", growth>>10, size>>20)
	}
	if n := strings.Count(lb.String(), `msg="imap progress"`); n != (count-1)/1000 {
		t.Errorf("%d progress lines:\n%s", n, lb)
	}
}

// MaxBackfillHeapGrowth bounds the live heap's growth in TestDovecotBackfill:
// one message and the parsers' state at a time, not the inbox.
const MaxBackfillHeapGrowth = 16 << 20

// TestDovecotExpungeIssued: between the FETCH of the sizes and the FETCH
// of the messages, another client moves messages of the batch away (a
// person sorting the mailbox, a second dmarcd). Dovecot then sends those
// messages empty (RFC 9051 §7.5.2; other servers answer NO [EXPUNGEISSUED],
// RFC 5530, which the poller takes the same way): the pass does not fail,
// quarantines nothing for them, and the moved messages are in their new
// folder, the others archived or invalid.
func TestDovecotExpungeIssued(t *testing.T) {
	srv := testserver.Dovecot(t)
	msgs := generated(24, 3, 2)
	appendAll(t, srv.Addr(), srv.User, srv.Password, "INBOX", msgs)

	other, err := imapclient.DialInsecure(srv.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Login(srv.User, srv.Password).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := other.Create("Sorted", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}

	st := openStore(t)
	mb := dovecotMailbox(srv)
	mb.BatchSize = len(msgs) + 10 // one batch
	p, _, lb := newPoller(t, mb, st, Options{})
	const moved = 5
	p.beforeBodies = func(_ string, uids []imap.UID) {
		var set imap.UIDSet
		set.AddRange(uids[2], uids[2+moved-1])
		if _, err := other.Move(set, "Sorted").Wait(); err != nil {
			t.Errorf("the other client's move: %v", err)
		}
	}
	sum, err := p.Once(context.Background())
	if err != nil {
		t.Fatalf("Once with messages moved away mid-batch: %v\n%s", err, lb)
	}
	if !strings.Contains(lb.String(), "vanished=5") {
		t.Errorf("the vanished messages were not noticed:\n%s", lb)
	}
	counts := folderCounts(t, srv.Addr(), srv.User, srv.Password, "INBOX", "Sorted", DefaultArchiveFolder, DefaultInvalidFolder)
	if counts["INBOX"] != 0 || counts["Sorted"] != moved || counts[DefaultArchiveFolder]+counts[DefaultInvalidFolder] != len(msgs)-moved {
		t.Errorf("folders %v after moving %d of %d away", counts, moved, len(msgs))
	}
	if sum.Messages != len(msgs)-moved || sum.Archived+sum.Invalid != len(msgs)-moved {
		t.Errorf("summary %+v, want the %d messages left read and filed", sum, len(msgs)-moved)
	}
}

// syncOrder is the SQLite store, noting at each Flush how many messages
// the inbox still holds.
type syncOrder struct {
	*sqlite.Store
	inbox func() int
	seen  []int
}

func (s *syncOrder) Flush(ctx context.Context) error {
	s.seen = append(s.seen, s.inbox())
	return s.Store.Flush(ctx)
}

// TestDovecotSyncBeforeMove: the store is synced (a WAL checkpoint, see
// sqlite.Store.Flush) before the batch's messages leave the inbox, so that
// a host crash after the MOVE cannot lose their reports.
func TestDovecotSyncBeforeMove(t *testing.T) {
	srv := testserver.Dovecot(t)
	msgs := generated(25, 2, 0)
	appendAll(t, srv.Addr(), srv.User, srv.Password, "INBOX", msgs)
	st := &syncOrder{Store: openStore(t), inbox: func() int {
		return folderCounts(t, srv.Addr(), srv.User, srv.Password, "INBOX")["INBOX"]
	}}
	mb := dovecotMailbox(srv)
	mb.BatchSize = len(msgs)
	p, _, _ := newPoller(t, mb, st, Options{})
	if _, err := p.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(st.seen) != fmt.Sprint([]int{len(msgs)}) {
		t.Errorf("the inbox held %v messages at each sync, want all %d at the one sync, before the move", st.seen, len(msgs))
	}
	if n := folderCounts(t, srv.Addr(), srv.User, srv.Password, "INBOX")["INBOX"]; n != 0 {
		t.Errorf("%d messages left in the inbox", n)
	}
}
