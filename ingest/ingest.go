// Package ingest turns what a source delivers (a file, a folder, a Maildir,
// standard input, an IMAP mailbox) into stored reports: it unpacks each
// input (ingest/unpack), parses the reports in it (ingest/aggregate,
// ingest/failure, ingest/tlsrpt) and hands them to a dmarcd.Store.
//
// Nothing is lost: input that holds a report that cannot be parsed is
// quarantined whole with its reason; a report stored before is counted as a
// duplicate, not stored again. Only a store failure is an error, after which
// the caller must not discard the input (IMAP leaves the message in place).
package ingest

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/mail"
	"strings"
	"time"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/ingest/aggregate"
	"github.com/dmarcd/dmarcd/ingest/failure"
	"github.com/dmarcd/dmarcd/ingest/tlsrpt"
	"github.com/dmarcd/dmarcd/ingest/unpack"
)

// MaxMessageBytes bounds one input (a mail message or a file).
const MaxMessageBytes = unpack.MaxMessageBytes

// Options configure an Ingester.
type Options struct {
	// KeepFailureBody keeps the body of the reported message in failure
	// reports. Off by default: it is personal data (RFC 9991 §7), and the
	// headers are what a postmaster needs.
	KeepFailureBody bool
	// NonReportKeepBytes bounds what the quarantine keeps of an input
	// that holds no report at all (a newsletter, a bounce, a scan sent to
	// the report address): its header and the first bytes of its body, up
	// to this many bytes in all; DefaultNonReportKeepBytes when 0. An
	// input with a report that failed to parse is kept whole: it is what
	// a bug report needs.
	NonReportKeepBytes int
	// SkipNonReports quarantines nothing of an input that holds no
	// report at all: its Outcome says NotReport, and the caller leaves it
	// where it is (the IMAP poller's non_reports = "leave").
	SkipNonReports bool
	Logger         *slog.Logger
	// Now returns the time stored as received_at; time.Now when nil.
	Now func() time.Time
}

// DefaultNonReportKeepBytes is what the quarantine keeps of an input that
// holds no report: enough for its header and the start of its text, to
// tell what it was.
const DefaultNonReportKeepBytes = 64 << 10

// Ingester stores the reports found in inputs.
type Ingester struct {
	store dmarcd.Store
	opts  Options
	log   *slog.Logger
}

// New returns an Ingester that stores into store.
func New(store dmarcd.Store, opts Options) *Ingester {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Ingester{store: store, opts: opts, log: log}
}

// Outcome is what one input gave.
type Outcome struct {
	Aggregate  int // aggregate reports stored
	Records    int64
	Failure    int // failure reports stored
	TLS        int // SMTP TLS reports stored
	Duplicates int // reports stored before
	Skipped    int // reports the store does not keep (TLS reports, in a store without dmarcd.TLSStore)
	// Quarantined is set when some or all of the input could not be
	// parsed; Reason says why. The input was kept whole in the
	// quarantine, or its header and first bytes when it held no report at
	// all (NotReport).
	Quarantined bool
	NotReport   bool
	Reason      string
}

// Reports is the number of reports the input held, stored or not.
func (o Outcome) Reports() int { return o.Aggregate + o.Failure + o.TLS + o.Duplicates + o.Skipped }

// storeError marks a failure of the store, as opposed to bad input.
type storeError struct{ err error }

func (e *storeError) Error() string { return e.err.Error() }
func (e *storeError) Unwrap() error { return e.err }

// Ingest stores every report in raw, the bytes of one mail message or file.
// It returns an error only when the store fails; the input must then be
// kept and offered again, which is safe: what was stored is recognised as
// a duplicate.
func (in *Ingester) Ingest(ctx context.Context, raw []byte, o dmarcd.Origin) (Outcome, error) {
	if o.ReceivedAt.IsZero() {
		o.ReceivedAt = in.opts.Now().UTC()
	}
	if o.MessageID == "" {
		o.MessageID = messageID(raw)
	}
	var out Outcome
	var problems []string
	err := unpack.Walk(raw, func(p *unpack.Payload) error {
		po := o
		po.Part = p.Part
		var err error
		switch p.Kind {
		case unpack.Aggregate:
			var n int64
			n, err = in.aggregate(ctx, p.Body, po)
			if err == nil {
				out.Aggregate++
				out.Records += n
			}
		case unpack.Failure:
			err = in.failure(ctx, p.Body, po)
			if err == nil {
				out.Failure++
			}
		case unpack.TLSReport:
			ts, ok := in.store.(dmarcd.TLSStore)
			if !ok {
				out.Skipped++
				in.log.Debug("skipping a TLS report: the store does not keep them", "source", o.Source, "part", p.Part)
				break
			}
			err = in.tls(ctx, ts, p.Body, po)
			if err == nil {
				out.TLS++
			}
		default:
			out.Skipped++
			in.log.Debug("skipping report dmarcd does not keep", "kind", p.Kind, "source", o.Source, "part", p.Part)
		}
		var se *storeError
		switch {
		case err == nil:
		case errors.Is(err, dmarcd.ErrDuplicate):
			out.Duplicates++
		case errors.As(err, &se):
			return err
		default:
			problems = append(problems, err.Error())
		}
		return nil
	})
	var se *storeError
	if errors.As(err, &se) {
		return out, se.err
	}
	if err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		out.Quarantined = true
		out.Reason = strings.Join(problems, "; ")
		kept := raw
		if out.Reports() == 0 && errors.Is(err, unpack.ErrNoReport) {
			out.NotReport = true
			if in.opts.SkipNonReports {
				out.Quarantined = false
				return out, nil
			}
			if keep := cmp.Or(in.opts.NonReportKeepBytes, DefaultNonReportKeepBytes); len(raw) > keep {
				kept = raw[:keep]
				out.Reason += fmt.Sprintf(" (kept: the first %d of its %d bytes)", keep, len(raw))
			}
		}
		q := dmarcd.Quarantined{Origin: o, Reason: out.Reason, Raw: kept}
		if err := in.store.Quarantine(ctx, q); err != nil {
			return out, err
		}
		in.log.Warn("quarantined input that could not be parsed", "source", o.Source, "reason", out.Reason)
	}
	return out, nil
}

// tls parses one SMTP TLS report and stores it.
func (in *Ingester) tls(ctx context.Context, ts dmarcd.TLSStore, body io.Reader, o dmarcd.Origin) error {
	r, err := tlsrpt.Parse(body)
	if err != nil {
		return fmt.Errorf("TLS report: %w", err)
	}
	if err := ts.AddTLSReport(ctx, r, o); err != nil {
		if errors.Is(err, dmarcd.ErrDuplicate) {
			return err
		}
		return &storeError{err}
	}
	return nil
}

// aggregate streams one aggregate report into the store.
func (in *Ingester) aggregate(ctx context.Context, body io.Reader, o dmarcd.Origin) (int64, error) {
	dec := aggregate.NewDecoder(body)
	hdr, err := dec.Header()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", partName(o), err)
	}
	w, err := in.store.BeginAggregate(ctx, hdr, o)
	if errors.Is(err, dmarcd.ErrDuplicate) {
		in.log.Debug("duplicate aggregate report", "key", hdr.Key(), "source", o.Source)
		return 0, err
	}
	if err != nil {
		return 0, &storeError{err}
	}
	defer w.Abort()
	var n int64
	for {
		rec, err := dec.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("%s: %w", partName(o), err)
		}
		if err := w.Write(ctx, rec); err != nil {
			return 0, &storeError{err}
		}
		n++
	}
	if err := w.Commit(ctx, dec.Report()); err != nil {
		return 0, &storeError{err}
	}
	in.log.Debug("stored aggregate report", "key", hdr.Key(), "records", n, "source", o.Source)
	return n, nil
}

// failure parses and stores one failure report mail.
func (in *Ingester) failure(ctx context.Context, body io.Reader, o dmarcd.Origin) error {
	msg, err := io.ReadAll(body)
	if err != nil {
		return fmt.Errorf("%s: %w", partName(o), err)
	}
	f, err := failure.Parse(msg, failure.Options{KeepBody: in.opts.KeepFailureBody})
	if err != nil {
		return fmt.Errorf("%s: %w", partName(o), err)
	}
	if err := in.store.AddFailure(ctx, f, o); err != nil {
		if errors.Is(err, dmarcd.ErrDuplicate) {
			return err
		}
		return &storeError{err}
	}
	return nil
}

func partName(o dmarcd.Origin) string {
	if o.Part == "" {
		return "report"
	}
	return "report at " + o.Part
}

// messageID returns the Message-ID of raw when it is a mail message.
func messageID(raw []byte) string {
	msg, err := mail.ReadMessage(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(msg.Header.Get("Message-Id"))
}
