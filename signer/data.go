package signer

import (
	"bytes"
	"errors"
	"io"
	"net"
	"time"

	"github.com/emersion/go-smtp"
)

// MalformedEndWait is how long the relay waits for more of a message after
// what looks like its end written with a bare CR or LF: a client that sent
// "\r.\r\n" or "\n.\n" believes the message is over and waits for the
// answer, while the SMTP library, which ends DATA at CRLF "." CRLF only
// (RFC 5321 §4.1.1.4), waits for more.
const MalformedEndWait = 2 * time.Second

// errMalformedEnd is the answer to a message whose end was written with a
// bare CR or LF.
var errMalformedEnd = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 6, 0},
	Message: "Message refused: it ends with a bare CR or LF; lines end with CRLF, and the message with CRLF.CRLF (RFC 5321 §2.3.8, §4.1.1.4)"}

// readData reads the message of a DATA command from r, the SMTP library's
// reader, which takes bytes one at a time here: the relay must see each
// byte as it comes to notice a message whose end is malformed (see
// MalformedEndWait). When the bytes read so far end like such an end, the
// next byte gets MalformedEndWait to come; if none comes, the message is
// refused with errMalformedEnd, and the connection's read deadline is left
// in the past so that the library's own wait for the end returns too (it
// sets a new deadline before the next command). Messages with bare CRs or
// LFs that end properly are read whole; CRLF() makes their line ends CRLF
// before signing.
func readData(r io.Reader, conn net.Conn, max int64) ([]byte, error) {
	var buf bytes.Buffer
	one := make([]byte, 1)
	armed := false
	for {
		if int64(buf.Len()) > max {
			return buf.Bytes(), nil // the caller refuses it as too big
		}
		n, err := r.Read(one)
		if n == 1 {
			buf.WriteByte(one[0])
			switch looksLikeEnd := malformedEnd(buf.Bytes()); {
			case looksLikeEnd && !armed:
				_ = conn.SetReadDeadline(time.Now().Add(MalformedEndWait))
				armed = true
			case !looksLikeEnd && armed:
				// More came: a slow client. The library's deadline
				// for the command is gone; give the rest the relay's.
				_ = conn.SetReadDeadline(time.Now().Add(RelayReadTimeout))
				armed = false
			}
		}
		if errors.Is(err, io.EOF) {
			return buf.Bytes(), nil
		}
		if err != nil {
			var ne net.Error
			if armed && errors.As(err, &ne) && ne.Timeout() {
				_ = conn.SetReadDeadline(time.Now())
				return nil, errMalformedEnd
			}
			return nil, err
		}
	}
}

// malformedEnds are how the end of a message written with a bare CR or LF
// reaches the relay through the library, which passes lines on as they
// are but takes away a dot at the start of a line after CRLF: a line
// holding only "." after a bare line end ("\r.\r\n", "\n.\r\n", "\r.\n",
// "\n.\n"), or "." and a bare LF after CRLF ("\r\n\n"). The proper end,
// CRLF "." CRLF, never reaches the relay: the library stops there.
var malformedEnds = [][]byte{[]byte("\r.\r\n"), []byte("\n.\r\n"), []byte("\r.\n"), []byte("\n.\n"), []byte("\r\n\n")}

// malformedEnd says whether b ends like one of malformedEnds. It runs
// after each byte: all of them end in LF, which most bytes are not.
func malformedEnd(b []byte) bool {
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return false
	}
	for _, end := range malformedEnds {
		if bytes.HasSuffix(b, end) {
			return true
		}
	}
	return false
}
