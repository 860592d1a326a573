package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/dmarcd/dmarcd"
)

// groupingStore is a dmarcd.Store and dmarcd.Flusher in memory: Commit
// adds a report to a group, Flush stores the group, or fails when told.
type groupingStore struct {
	dmarcd.Store // nil: only what ingest calls is here
	mu           sync.Mutex
	pending      map[string]bool
	stored       map[string]bool
	flushes      []int // reports written by each Flush
	failFlush    error
}

func (s *groupingStore) BeginAggregate(_ context.Context, r *dmarcd.AggregateReport, _ dmarcd.Origin) (dmarcd.RecordWriter, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := r.Key().Digest()
	if s.stored[k] || s.pending[k] {
		return nil, dmarcd.ErrDuplicate
	}
	return &groupWriter{s: s, key: k}, nil
}

func (s *groupingStore) Quarantine(context.Context, dmarcd.Quarantined) error { return nil }

func (s *groupingStore) Flush(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failFlush != nil {
		return s.failFlush
	}
	for k := range s.pending {
		s.stored[k] = true
	}
	s.flushes = append(s.flushes, len(s.pending))
	clear(s.pending)
	return nil
}

type groupWriter struct {
	s   *groupingStore
	key string
}

func (w *groupWriter) Write(context.Context, *dmarcd.Record) error { return nil }
func (w *groupWriter) Abort() error                                { return nil }
func (w *groupWriter) Commit(context.Context, *dmarcd.AggregateReport) error {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	w.s.pending[w.key] = true
	return nil
}

const smallReport = `<?xml version="1.0"?>
<feedback>
  <report_metadata><org_name>example.net</org_name><email>dmarc@example.net</email><report_id>%s</report_id>
    <date_range><begin>1764547200</begin><end>1764633599</end></date_range></report_metadata>
  <policy_published><domain>example.com</domain><p>none</p></policy_published>
  <record>
    <row><source_ip>192.0.2.1</source_ip><count>1</count>
      <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated></row>
    <identifiers><header_from>example.com</header_from></identifiers>
    <auth_results><spf><domain>example.com</domain><result>pass</result></spf></auth_results>
  </record>
</feedback>
`

// memInputs returns n inputs, each a report of its own.
func memInputs(n int) []Input {
	out := make([]Input, n)
	for i := range out {
		data := []byte(fmt.Sprintf(smallReport, fmt.Sprint("report-", i)))
		out[i] = Input{Name: fmt.Sprintf("mem/%d.xml", i), open: func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(data)), nil
		}}
	}
	return out
}

// TestFilesFlushes: Files flushes a grouping store every FlushEveryInputs
// inputs and at its end, so that what it counted is stored when it returns.
func TestFilesFlushes(t *testing.T) {
	n := 2*FlushEveryInputs + 7
	s := &groupingStore{pending: map[string]bool{}, stored: map[string]bool{}}
	sum, err := New(s, Options{}).Files(context.Background(), memInputs(n), nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Aggregate != n {
		t.Errorf("stored %d reports, want %d: %+v", sum.Aggregate, n, sum)
	}
	if want := []int{FlushEveryInputs, FlushEveryInputs, 7}; fmt.Sprint(s.flushes) != fmt.Sprint(want) {
		t.Errorf("flushes wrote %v reports, want %v", s.flushes, want)
	}
	if len(s.stored) != n || len(s.pending) != 0 {
		t.Errorf("%d stored, %d pending after Files", len(s.stored), len(s.pending))
	}
}

// TestFilesFlushFails: a failed Flush fails the run, naming the inputs to
// ingest again; ingesting them again stores what the group lost.
func TestFilesFlushFails(t *testing.T) {
	errDown := errors.New("server down")
	s := &groupingStore{pending: map[string]bool{}, stored: map[string]bool{}, failFlush: errDown}
	inputs := memInputs(5)
	_, err := New(s, Options{}).Files(context.Background(), inputs, nil)
	if !errors.Is(err, errDown) || !strings.Contains(err.Error(), "the last 5 inputs, from mem/0.xml on") {
		t.Fatalf("Files with a failing Flush: %v", err)
	}
	// The group was lost (the process died): the retry stores every report.
	s.failFlush = nil
	clear(s.pending)
	sum, err := New(s, Options{}).Files(context.Background(), inputs, nil)
	if err != nil || sum.Aggregate != 5 || len(s.stored) != 5 {
		t.Errorf("retry: %+v, %v; %d stored", sum, err, len(s.stored))
	}
}
