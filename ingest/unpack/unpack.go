// Package unpack finds the DMARC reports inside what a source delivers: a
// mail message (with the report attached, or as its whole body, possibly
// nested in a forwarded message), a zip or gzip file (gzip inside gzip
// too), or bare XML. It sniffs content instead of trusting labels, because
// reporters label gzip as application/octet-stream, zip as
// application/x-zip-compressed, XML as text/plain.
//
// Every container is read within named bounds (MaxMessageBytes,
// MaxReportBytes, MaxNestingDepth, MaxMIMEParts, MaxZipMembers), so a zip
// or gzip bomb is refused without exhausting memory.
//
// unpack only finds and opens reports; ingest/aggregate and ingest/failure
// parse them.
package unpack

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Limits. Each is stated once, here.
const (
	// MaxMessageBytes bounds a mail message or file as read from a source.
	// The largest real aggregate report mails are a few MB (compressed).
	MaxMessageBytes = 64 << 20
	// MaxReportBytes bounds one decompressed report. An aggregate report
	// of 1,000,000 records is about 600 MB of XML, far above what any
	// reporter sends; a gzip bomb stops here.
	MaxReportBytes = 1 << 30
	// MaxZipBytes bounds a zip archive that must be held in memory to be
	// read (a zip is read from its end), after any outer decompression.
	MaxZipBytes = 64 << 20
	// MaxNestingDepth bounds containers inside containers (mail in mail,
	// gzip in gzip, zip in mail).
	MaxNestingDepth = 8
	// MaxMIMEParts bounds the parts of one mail message, all levels.
	MaxMIMEParts = 200
	// MaxZipMembers bounds the files in one zip archive.
	MaxZipMembers = 32
	// sniffBytes is how much of a stream is looked at to tell its kind.
	sniffBytes = 512
)

// Kind says what a payload holds.
type Kind int

const (
	// Aggregate is the XML of an aggregate report (RFC 9990).
	Aggregate Kind = iota + 1
	// Failure is a whole failure report mail (RFC 6591, RFC 9991).
	Failure
	// TLSReport is an SMTP TLS report (RFC 8460), recognised so that it
	// is not mistaken for broken input, but not parsed by dmarcd.
	TLSReport
)

func (k Kind) String() string {
	switch k {
	case Aggregate:
		return "aggregate"
	case Failure:
		return "failure"
	case TLSReport:
		return "tls-report"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Payload is one report found inside the input.
type Payload struct {
	Kind Kind
	// Part is the path to the report inside the input, in the notation
	// of the test corpus: ">mime.2[application/gzip]>gunzip",
	// ">zip:report.xml"; empty for bare input.
	Part string
	// Body reads the report: the decompressed XML for Aggregate, the
	// whole mail message for Failure, the JSON for TLSReport. It is valid
	// only during the call to the walk function, and fails with an error
	// wrapping ErrTooLarge beyond MaxReportBytes.
	Body io.Reader
}

var (
	// ErrNoReport means the input holds no report that dmarcd knows.
	ErrNoReport = errors.New("no DMARC report found")
	// ErrTooLarge means a bound was exceeded.
	ErrTooLarge = errors.New("input exceeds a size bound")
)

// Walk calls fn for each report found in data, in document order. It
// returns the first error of fn, or an error wrapping ErrNoReport (with
// what was found instead) when data holds no report.
func Walk(data []byte, fn func(*Payload) error) error {
	if len(data) > MaxMessageBytes {
		return fmt.Errorf("%w: %d bytes, more than MaxMessageBytes (%d)", ErrTooLarge, len(data), MaxMessageBytes)
	}
	w := &walker{fn: fn, whole: data}
	if err := w.stream(bytes.NewReader(data), "", 0, "", true); err != nil {
		return err
	}
	if w.found == 0 {
		if len(w.skipped) == 0 {
			return fmt.Errorf("%w: empty input", ErrNoReport)
		}
		return fmt.Errorf("%w: found %s", ErrNoReport, joinSkipped(w.skipped))
	}
	return nil
}

type walker struct {
	fn func(*Payload) error
	// whole is the input of Walk: a mail at the top is parsed from it in
	// place rather than read into a copy (a large mail costs its size
	// once, not twice).
	whole   []byte
	found   int
	parts   int
	skipped []string // what was seen that is not a report, for the error
}

// stream sniffs r and descends into it. part is the path so far; label is
// the MIME type the container claimed, used only in messages. allowMail
// says whether content that looks like a mail header is read as a message:
// at the top and in message parts, not in text parts, whose prose may look
// like header lines.
func (w *walker) stream(r io.Reader, part string, depth int, label string, allowMail bool) error {
	if depth > MaxNestingDepth {
		return fmt.Errorf("%s: %w: containers nested deeper than MaxNestingDepth (%d)", where(part), ErrTooLarge, MaxNestingDepth)
	}
	br := bufio.NewReaderSize(r, sniffBytes)
	head, err := br.Peek(sniffBytes)
	if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
		return fmt.Errorf("%s: reading: %w", where(part), err)
	}
	switch sniff(head) {
	case kindGzip:
		return w.gunzip(br, part, depth)
	case kindZip:
		return w.unzip(br, part, depth)
	case kindXML:
		return w.emit(Aggregate, part, br)
	case kindJSON:
		return w.emit(TLSReport, part, br)
	case kindMail:
		if allowMail {
			return w.message(br, part, depth)
		}
	case kindEmpty:
		w.skipped = append(w.skipped, describe(part, label, "empty"))
		return nil
	}
	w.skipped = append(w.skipped, describe(part, label, "unrecognised content"))
	return nil
}

func (w *walker) emit(k Kind, part string, body io.Reader) error {
	w.found++
	return w.fn(&Payload{Kind: k, Part: part, Body: &limitedReader{r: body, left: MaxReportBytes, part: part}})
}

func where(part string) string {
	if part == "" {
		return "input"
	}
	return "input" + part
}

func describe(part, label, what string) string {
	s := where(part)
	if label != "" {
		s += " (" + label + ")"
	}
	return s + ": " + what
}

func joinSkipped(s []string) string {
	const show = 5
	var b bytes.Buffer
	for i, x := range s {
		if i == show {
			fmt.Fprintf(&b, "; and %d more", len(s)-show)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(x)
	}
	return b.String()
}

// limitedReader fails, rather than truncating silently, beyond its bound.
type limitedReader struct {
	r    io.Reader
	left int64
	part string
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// One byte more tells a stream of exactly the bound from a larger one.
		var one [1]byte
		if n, err := l.r.Read(one[:]); n == 0 {
			return 0, err
		}
		return 0, fmt.Errorf("%s: %w: decompressed report larger than MaxReportBytes (%d)", where(l.part), ErrTooLarge, int64(MaxReportBytes))
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}
