package dmarcd

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// ErrDuplicate is returned by a Store when the report is stored already.
// It is not a failure: the same report arrives twice whenever a reporter
// resends or a mailbox is read twice.
var ErrDuplicate = errors.New("report already stored")

// Origin says where a report came from.
type Origin struct {
	// Source names the file, folder or mailbox message, for example
	// "file:/var/reports/x.xml.gz" or "imap://dmarc@mail.example.com/INBOX;UIDVALIDITY=7;UID=42".
	Source string
	// Part is the path of the report inside its container, for example
	// ">mime.2[application/gzip]>gunzip"; empty for a bare file.
	Part string
	// MessageID is the Message-ID of the mail that carried the report.
	MessageID string
	// ReceivedAt is when dmarcd read it.
	ReceivedAt time.Time
}

// Quarantined is input that could not be parsed, kept with the reason so
// that nothing is lost: a user can inspect it, fix the parser, and ingest
// it again.
type Quarantined struct {
	Origin Origin
	Reason string
	// Raw holds the bytes as received (the whole mail or file).
	Raw []byte
}

// A Store keeps reports. Implementations: schema/sqlite (the embedded
// default) and schema/clickhouse.
//
// Every method is safe for concurrent use. A report is stored exactly once:
// a second report with the same key gives ErrDuplicate.
type Store interface {
	// BeginAggregate starts storing an aggregate report whose header (all
	// but its records) was read. It returns ErrDuplicate when a report with
	// the same Key is stored, or committed and waiting for Flush. Nothing
	// is visible to readers before Commit.
	BeginAggregate(ctx context.Context, r *AggregateReport, o Origin) (RecordWriter, error)

	// AddFailure stores a failure report, or returns ErrDuplicate.
	AddFailure(ctx context.Context, f *FailureReport, o Origin) error

	// Quarantine keeps input that could not be parsed. The same bytes
	// quarantined twice are kept once.
	Quarantine(ctx context.Context, q Quarantined) error

	// Query runs read-only SQL over the documented views.
	Query(ctx context.Context, query string, args ...any) (*sql.Rows, error)

	Close() error
}

// Flusher is a Store that groups the reports it is given, to write many in
// one go. Both stores do: each insert costs ClickHouse a fixed time, large
// against the rows of a small report, and each commit costs SQLite a write
// of every page it changed. Commit (and AddFailure or AddTLSReport) hands
// the report to the group, and it is stored once the group is written:
// when it is full, when it is old enough, on Flush, or on Close.
//
// Flush writes the group. When it returns nil, every report whose Commit
// or AddFailure returned before Flush was called is stored; until then
// such a report dies with the process. So a caller that discards its input
// once the input is stored (the IMAP poller moves the message to the
// archive) must Flush first, and keep the input when Flush fails: offered
// again, its reports are stored, or said to be duplicates (ErrDuplicate)
// when they were stored or are still waiting in the group. Quarantine is
// not grouped: what it returns nil for is stored. The SQLite store, whose
// commits reach the disk at its next checkpoint, also syncs in Flush, so
// that a crash of the host loses nothing flushed either.
type Flusher interface {
	Flush(ctx context.Context) error
}

// RecordWriter receives the records of one aggregate report.
type RecordWriter interface {
	// Write adds one record.
	Write(ctx context.Context, rec *Record) error
	// Commit makes the report and its records visible, or, in a Store that
	// is a Flusher, hands them to be written by Flush. r is the header as
	// it stands after all records were read (counts, tolerations).
	Commit(ctx context.Context, r *AggregateReport) error
	// Abort discards everything written. It is safe after Commit (a no-op).
	Abort() error
}
