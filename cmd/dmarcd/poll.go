package main

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/dmarcd/dmarcd"
	imapingest "github.com/dmarcd/dmarcd/ingest/imap"
)

// MailboxConfig is a [[mailbox]] table of the configuration file: an IMAP
// account to read reports from. ingest/imap documents its keys and
// defaults.
type MailboxConfig = imapingest.Mailbox

// validateMailboxes checks each [[mailbox]] and that their names differ.
func validateMailboxes(mailboxes []MailboxConfig) error {
	names := map[string]int{}
	for i, mb := range mailboxes {
		if err := mb.Validate(); err != nil {
			return fmt.Errorf("config: [[mailbox]] number %d: %w", i+1, err)
		}
		if j, ok := names[mb.Label()]; ok {
			return fmt.Errorf("config: [[mailbox]] number %d and %d are both named %q; give them distinct names", j+1, i+1, mb.Label())
		}
		names[mb.Label()] = i
	}
	return nil
}

type pollCmd struct {
	Once bool `help:"Read every mailbox once, file what was read, and exit (for cron; dmarcd run is the daemon)."`
}

func (c *pollCmd) Run(e *env) error {
	if !c.Once {
		return &exitError{code: exitUsage, err: errors.New("poll: only --once is supported; dmarcd run polls continuously")}
	}
	if len(e.cfg.Mailboxes) == 0 {
		return &exitError{code: exitUsage, err: errors.New("poll: the config file has no [[mailbox]] (see dmarcd.example.toml)")}
	}
	for _, mb := range e.cfg.Mailboxes {
		if err := mb.CheckFiles(); err != nil {
			return &exitError{code: exitUsage, err: fmt.Errorf("config: %w", err)}
		}
	}
	st, err := e.openStore()
	if err != nil {
		return err
	}
	defer st.Close()
	pollers, err := newPollers(e, st, nil)
	if err != nil {
		return err
	}

	type result struct {
		sum     imapingest.Summary
		err     error
		elapsed time.Duration
	}
	results := make([]result, len(pollers))
	var wg sync.WaitGroup
	for i, p := range pollers {
		wg.Go(func() {
			start := time.Now()
			sum, err := p.Once(e.ctx)
			results[i] = result{sum, err, time.Since(start)}
		})
	}
	wg.Wait()

	var errs []error
	quarantined := 0
	code := exitFailure
	for i, p := range pollers {
		r := results[i]
		printPollSummary(e.stdout, p.Mailbox().Name, r.sum, r.elapsed)
		quarantined += r.sum.Quarantined
		if r.err != nil {
			errs = append(errs, fmt.Errorf("mailbox %s: %w", p.Mailbox().Name, r.err))
			if imapingest.Kind(r.err) == imapingest.ErrCredentials {
				code = exitUsage // the configured secrets cannot be used
			}
		}
	}
	if len(errs) > 0 {
		return &exitError{code: code, err: errors.Join(errs...)}
	}
	if quarantined > 0 {
		return &exitError{code: exitQuarantined}
	}
	return nil
}

// newPollers makes a poller of every configured mailbox. Nil metrics are
// not exported.
func newPollers(e *env, st dmarcd.Store, m *imapingest.Metrics) ([]*imapingest.Poller, error) {
	return makePollers(e, st, m, nil)
}

// makePollers makes a poller of every configured mailbox, each under a
// lease of owner's in the store when the store keeps leases and owner is
// set (the daemon).
func makePollers(e *env, st dmarcd.Store, m *imapingest.Metrics, owner *string) ([]*imapingest.Poller, error) {
	var lease *imapingest.Lease
	if ls, ok := st.(dmarcd.LeaseStore); ok && owner != nil {
		lease = &imapingest.Lease{Store: ls, Owner: *owner, Duration: e.cfg.leaseDuration()}
	}
	var pollers []*imapingest.Poller
	for _, mb := range e.cfg.Mailboxes {
		if err := mb.CheckFiles(); err != nil {
			return nil, &exitError{code: exitUsage, err: fmt.Errorf("config: %w", err)}
		}
		p, err := imapingest.New(mb, imapingest.Options{
			Store:   st,
			Ingest:  e.cfg.Ingest.options(),
			Metrics: m,
			Logger:  e.log,
			Lease:   lease,
		})
		if err != nil {
			return nil, &exitError{code: exitUsage, err: err}
		}
		pollers = append(pollers, p)
	}
	return pollers, nil
}

func printPollSummary(w io.Writer, name string, s imapingest.Summary, elapsed time.Duration) {
	fmt.Fprintf(w, "mailbox %s: %d messages read in %s\n", name, s.Messages, elapsed.Round(time.Millisecond))
	fmt.Fprintf(w, "  aggregate reports stored  %d (%d records)\n", s.Aggregate, s.Records)
	fmt.Fprintf(w, "  failure reports stored    %d\n", s.Failure)
	fmt.Fprintf(w, "  TLS reports stored        %d\n", s.TLS)
	fmt.Fprintf(w, "  duplicates (not stored)   %d\n", s.Duplicates)
	if s.Skipped > 0 {
		fmt.Fprintf(w, "  skipped (not kept)        %d\n", s.Skipped)
	}
	fmt.Fprintf(w, "  quarantined messages      %d\n", s.Quarantined)
	fmt.Fprintf(w, "  archived                  %d\n", s.Archived)
	fmt.Fprintf(w, "  moved to invalid          %d\n", s.Invalid)
	if s.Left > 0 {
		fmt.Fprintf(w, "  left (no report)          %d\n", s.Left)
	}
	if s.Deleted > 0 {
		fmt.Fprintf(w, "  deleted                   %d\n", s.Deleted)
	}
	if s.Quarantined > 0 {
		fmt.Fprintln(w, "  quarantined input is kept with its reason: dmarcd query 'SELECT * FROM quarantined'")
	}
}
