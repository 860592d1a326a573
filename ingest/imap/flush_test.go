package imap

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/dmarcd/dmarcd"
)

// flushingStore is a store that groups its writes (dmarcd.Flusher) and
// whose Flush fails while broken. (Its reports are written at Commit; the
// ClickHouse store's group, lost when Flush fails, is tested with
// schema/conformance.)
type flushingStore struct {
	dmarcd.Store
	mu      sync.Mutex
	broken  error
	flushes int
}

func (s *flushingStore) Flush(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flushes++
	return s.broken
}

var errFlush = errors.New("insert cut")

// TestFlushBeforeArchive: the poller flushes the store before it files a
// batch; when Flush fails the messages whose reports it held stay in the
// folder, and the messages without reports still go to the invalid folder.
func TestFlushBeforeArchive(t *testing.T) {
	srv := startMem(t, nil)
	msgs := generated(11, 2, 2)
	want := expect(t, msgs)
	srv.append(t, "INBOX", msgs)
	lite := openStore(t)
	st := &flushingStore{Store: lite, broken: errFlush}
	mb := srv.mailbox()
	mb.BatchSize = 100
	p, m, lb := newPoller(t, mb, st, Options{})
	sum, err := p.Once(context.Background())
	if Kind(err) != ErrStore || !errors.Is(err, errFlush) {
		t.Fatalf("Once with a failing Flush: %v", err)
	}
	counts := srv.counts(t, "INBOX", DefaultArchiveFolder, DefaultInvalidFolder)
	if counts["INBOX"] != want.Archive || counts[DefaultArchiveFolder] != 0 || counts[DefaultInvalidFolder] != want.Invalid {
		t.Errorf("after a failed Flush: folders %v, want %d in INBOX, none archived, %d invalid", counts, want.Archive, want.Invalid)
	}
	if sum.Archived != 0 || st.flushes != 1 {
		t.Errorf("summary %+v, %d flushes", sum, st.flushes)
	}
	if v := counterValue(t, m.Errors.WithLabelValues("mem", ErrStore)); v != 1 {
		t.Errorf("store errors metric %v", v)
	}
	if !strings.Contains(lb.String(), "messages stay in their folder") {
		t.Errorf("no log line about the failed Flush:\n%s", lb)
	}

	st.broken = nil
	sum, err = p.Once(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	counts = srv.counts(t, "INBOX", DefaultArchiveFolder, DefaultInvalidFolder)
	if counts["INBOX"] != 0 || counts[DefaultArchiveFolder] != want.Archive || sum.Duplicates == 0 {
		t.Errorf("after Flush works again: folders %v, summary %+v", counts, sum)
	}
	if got := contentOf(t, lite); !equalContent(got, want.Content) {
		t.Errorf("store holds %s, want %s", got, want.Content)
	}
}
