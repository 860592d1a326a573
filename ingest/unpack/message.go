package unpack

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"

	"github.com/dmarcd/dmarcd/ingest/failure"
)

// message descends into a mail message (RFC 5322, MIME RFC 2045-2046).
// A failure report is handed over whole; otherwise every leaf part is
// sniffed, whatever its label says.
func (w *walker) message(r io.Reader, part string, depth int) error {
	var data []byte
	if part == "" && w.whole != nil {
		data = w.whole // the top of the input, already in memory
	} else {
		var err error
		if data, err = readAtMost(r, MaxMessageBytes, part, "MaxMessageBytes"); err != nil {
			return err
		}
	}
	data = skipMboxFromLine(data)
	if failure.IsFailureReport(data) {
		return w.emit(Failure, part, bytes.NewReader(data))
	}
	msg, err := mail.ReadMessage(bufio.NewReader(bytes.NewReader(data)))
	if err != nil {
		return fmt.Errorf("%s: reading mail header: %w", where(part), err)
	}
	return w.entity(textproto.MIMEHeader(msg.Header), msg.Body, part, "", depth)
}

// entity walks one MIME entity: a multipart's children, or a leaf. idx is
// the dotted position of the entity in the message ("" for the top, "2",
// "2.1"), written into the payload's Part like the corpus notation:
// ">mime.2[application/gzip]".
func (w *walker) entity(h textproto.MIMEHeader, body io.Reader, part, idx string, depth int) error {
	if depth > MaxNestingDepth {
		return fmt.Errorf("%s: %w: MIME parts nested deeper than MaxNestingDepth (%d)", where(part), ErrTooLarge, MaxNestingDepth)
	}
	mediaType, params := contentType(h)
	if strings.HasPrefix(mediaType, "multipart/") && params["boundary"] != "" {
		return w.multipart(body, params["boundary"], part, idx, depth)
	}
	leaf := part + ">mime"
	if idx != "" {
		leaf += "." + idx
	}
	leaf += "[" + mediaType + "]"
	decoded := decodeTransfer(h.Get("Content-Transfer-Encoding"), body)
	// A forwarded report, or one labelled as generic binary data with a
	// mail inside, is descended into as a message.
	allowMail := strings.HasPrefix(mediaType, "message/") || mediaType == "application/octet-stream" ||
		strings.HasSuffix(strings.ToLower(filename(h)), ".eml")
	return w.stream(decoded, leaf, depth+1, mediaType, allowMail)
}

func (w *walker) multipart(body io.Reader, boundary, part, idx string, depth int) error {
	mr := multipart.NewReader(body, boundary)
	for i := 1; ; i++ {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if w.found > 0 && errors.Is(err, io.ErrUnexpectedEOF) {
				// A missing closing boundary after the report: tolerated.
				return nil
			}
			return fmt.Errorf("%s: reading MIME part %d: %w", where(part), i, err)
		}
		w.parts++
		if w.parts > MaxMIMEParts {
			return fmt.Errorf("%s: %w: more than MaxMIMEParts (%d) MIME parts", where(part), ErrTooLarge, MaxMIMEParts)
		}
		child := fmt.Sprint(i)
		if idx != "" {
			child = idx + "." + child
		}
		if err := w.entity(p.Header, p, part, child, depth+1); err != nil {
			return err
		}
	}
}

// contentType returns the lower-case media type and its parameters,
// text/plain when absent (RFC 2045 §5.2). A header that does not parse
// still gives its type when one can be read.
func contentType(h textproto.MIMEHeader) (string, map[string]string) {
	v := h.Get("Content-Type")
	if v == "" {
		return "text/plain", nil
	}
	mediaType, params, err := mime.ParseMediaType(v)
	if err != nil && mediaType == "" {
		mediaType, _, _ = strings.Cut(v, ";")
		mediaType = strings.ToLower(strings.TrimSpace(mediaType))
	}
	if mediaType == "" {
		mediaType = "application/octet-stream"
	}
	return mediaType, params
}

// filename returns the attachment's file name, from Content-Disposition or
// the older name parameter of Content-Type.
func filename(h textproto.MIMEHeader) string {
	if _, params, err := mime.ParseMediaType(h.Get("Content-Disposition")); err == nil && params["filename"] != "" {
		return params["filename"]
	}
	if _, params, err := mime.ParseMediaType(h.Get("Content-Type")); err == nil {
		return params["name"]
	}
	return ""
}

// decodeTransfer undoes a Content-Transfer-Encoding (RFC 2045 §6).
func decodeTransfer(cte string, r io.Reader) io.Reader {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "base64":
		// Encoders wrap lines and some pad them with blanks; RFC 2045 §6.8
		// says to ignore characters outside the alphabet.
		return base64.NewDecoder(base64.StdEncoding, &base64Filter{r: r})
	case "quoted-printable":
		return quotedprintable.NewReader(r)
	}
	return r
}

// base64Filter drops the bytes that are not of the base64 alphabet.
type base64Filter struct{ r io.Reader }

func (f *base64Filter) Read(p []byte) (int, error) {
	for {
		n, err := f.r.Read(p)
		j := 0
		for _, c := range p[:n] {
			if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=' {
				p[j] = c
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}

// skipMboxFromLine drops the "From sender date" line that mbox files and
// some Maildir deliveries put before the header.
func skipMboxFromLine(data []byte) []byte {
	if !bytes.HasPrefix(data, []byte("From ")) {
		return data
	}
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return data[i+1:]
	}
	return data
}
