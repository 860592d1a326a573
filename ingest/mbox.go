package ingest

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// An mbox file (RFC 4155) holds many mail messages, each after a "From "
// line: what mail clients export (Thunderbird, mutt) and what Google
// Takeout gives for a Gmail label. Files reads each message of an mbox
// input as an input of its own, one at a time, so that an mbox of any
// size is read in the memory of one message.
//
// A message starts at a "From " line that follows an empty line (or starts
// the file) and looks like a separator: "From", a sender, and a date with
// a four-digit year ("From - Sat Nov 28 10:00:00 2026", "From
// 1234@xxx Sat Nov 28 10:00:00 +0000 2026"). The empty line before a
// separator, and the one that ends the file, belong to the mbox, not to
// the message. Lines quoted as ">From ", ">>From " (mboxrd) lose one ">".

// maxMboxLineBytes bounds one line of an mbox file kept whole; a longer
// line (a report is seldom one line, base64 never) is read in pieces.
const maxMboxLineBytes = 64 << 10

// isMboxSeparator says whether line (without its line end) is an mbox
// "From " line.
func isMboxSeparator(line []byte) bool {
	if !bytes.HasPrefix(line, []byte("From ")) {
		return false
	}
	fields := bytes.Fields(line)
	if len(fields) < 3 {
		return false
	}
	for _, f := range fields[2:] {
		if len(f) == 4 && f[0] >= '1' && f[0] <= '2' && isDigits(f) {
			return true
		}
	}
	return false
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

// mboxReader reads the messages of an mbox file one at a time.
type mboxReader struct {
	r *bufio.Reader
	// max bounds one message: the bytes beyond it are read and dropped.
	max     int
	started bool // the first separator was read
	done    bool
	n       int // messages returned
}

func newMboxReader(r io.Reader, max int) *mboxReader {
	return &mboxReader{r: bufio.NewReaderSize(r, maxMboxLineBytes), max: max}
}

// line reads one line with its line end; a line longer than the buffer is
// returned in pieces, the first with whole set.
func (m *mboxReader) line() (line []byte, whole bool, err error) {
	line, err = m.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return line, false, nil
	}
	return line, true, err
}

// next returns the next message (its bytes, at most max of them, and
// whether it was longer), or io.EOF after the last.
func (m *mboxReader) next() (msg []byte, truncated bool, err error) {
	if m.done {
		return nil, false, io.EOF
	}
	if !m.started {
		// The first line is the first separator (the caller sniffed it).
		for {
			_, whole, err := m.line()
			if err != nil {
				m.done = true
				if errors.Is(err, io.EOF) {
					return nil, false, io.EOF
				}
				return nil, false, err
			}
			if whole {
				break
			}
		}
		m.started = true
	}
	var buf bytes.Buffer
	add := func(b []byte) {
		if buf.Len()+len(b) > m.max {
			b = b[:max(m.max-buf.Len(), 0)]
			truncated = true
		}
		buf.Write(b)
	}
	prevBlank, atLineStart := false, true
	for {
		line, whole, err := m.line()
		if len(line) > 0 {
			if atLineStart && whole {
				text := bytes.TrimRight(line, "\r\n")
				if prevBlank && isMboxSeparator(text) {
					m.n++
					return trimBlankLine(buf.Bytes()), truncated, nil
				}
				// mboxrd: >From, >>From ... lose one '>'.
				if q := bytes.TrimLeft(text, ">"); len(q) < len(text) && bytes.HasPrefix(q, []byte("From ")) {
					line = line[1:]
				}
				prevBlank = len(text) == 0
			} else {
				prevBlank = false
			}
			add(line)
			atLineStart = whole
		}
		if err != nil {
			m.done = true
			if !errors.Is(err, io.EOF) {
				return nil, false, err
			}
			if buf.Len() == 0 && m.n > 0 {
				return nil, false, io.EOF
			}
			m.n++
			// Writers end the last message with an empty line too.
			return trimBlankLine(buf.Bytes()), truncated, nil
		}
	}
}

// trimBlankLine drops the empty line that precedes a separator.
func trimBlankLine(b []byte) []byte {
	switch {
	case bytes.HasSuffix(b, []byte("\r\n\r\n")):
		return b[:len(b)-2]
	case bytes.HasSuffix(b, []byte("\n\n")):
		return b[:len(b)-1]
	}
	return b
}
