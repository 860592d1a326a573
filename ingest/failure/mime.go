package failure

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"regexp"
	"strconv"
	"strings"

	"github.com/emersion/go-message/charset"
)

// message is a report mail read into its header and its MIME leaves.
type message struct {
	header    header
	mediaType string // of the top-level entity, lower case
	params    map[string]string
	leaves    []*entity
	tol       tolerations
}

// entity is one leaf MIME entity of a message: not a multipart. A
// message/rfc822 entity is a leaf too: it is the reported message, not part
// of the report.
type entity struct {
	index     string // position, dotted and 1-based: "2", "3.1"; "" for a single-part message
	mediaType string // lower case, "text/plain" when absent (RFC 2045 §5.2)
	params    map[string]string
	header    header
	// typed is false when the entity has no Content-Type field.
	typed bool
	cte   string // lower case
	// raw is the entity as written: its header block and its body.
	raw []byte
	// body is the entity's body before transfer decoding.
	body []byte
	// truncated is set when the entity is the last of a multipart that has
	// no close delimiter: it may have been cut short.
	truncated bool
}

// name says which entity this is, for errors: "part 2", "part (message
// body)".
func (e *entity) name() string {
	if e.index == "" {
		return "part (message body)"
	}
	return "part " + e.index
}

// readMessage reads the report mail's header and walks its MIME structure.
func readMessage(msg []byte) (*message, error) {
	if len(msg) > MaxMessageBytes {
		return nil, fmt.Errorf("message of %d bytes is larger than MaxMessageBytes (%d)", len(msg), MaxMessageBytes)
	}
	m := &message{}
	msg = bytes.TrimLeft(msg, "\r\n")
	// An mbox "From " line (RFC 4155) before the header, as when a report
	// was saved from a mailbox file.
	if bytes.HasPrefix(msg, []byte("From ")) {
		_, msg = cutLine(msg)
		m.tol.add("mbox-from-line")
	}
	hb, err := readHeader(msg, MaxHeaderFields, false)
	if err != nil {
		return nil, fmt.Errorf("reading mail header: %w", err)
	}
	if len(hb.fields) == 0 || hb.firstBad {
		return nil, fmt.Errorf("%w: not a mail message: no header field at the start", ErrNotFailureReport)
	}
	if hb.badLines > 0 {
		m.tol.add("bad-header-line")
	}
	m.header = hb.fields
	body := hb.body
	if body == nil {
		body = []byte{}
	}
	m.mediaType, m.params = m.contentType(hb.fields)
	w := walker{m: m}
	if err := w.walk(hb.fields, msg, body, "", 0, false); err != nil {
		return nil, err
	}
	return m, nil
}

// boundaryParam finds a boundary parameter in a Content-Type that
// mime.ParseMediaType rejects.
var boundaryParam = regexp.MustCompile(`(?i);\s*boundary\s*=\s*(?:"([^"]*)"|([^\s;]+))`)

// contentType returns the media type and parameters of an entity, lower
// case, "text/plain" when absent (RFC 2045 §5.2). A malformed Content-Type
// is read as far as possible.
func (m *message) contentType(h header) (string, map[string]string) {
	v := h.get("Content-Type")
	if v == "" {
		return "text/plain", map[string]string{}
	}
	mt, params, err := mime.ParseMediaType(v)
	if err == nil {
		return mt, params
	}
	m.tol.add("bad-content-type")
	if mt == "" {
		mt, _, _ = strings.Cut(v, ";")
		mt = strings.ToLower(strings.TrimSpace(mt))
		if !strings.Contains(mt, "/") {
			mt = "text/plain"
		}
	}
	params = map[string]string{}
	if sm := boundaryParam.FindStringSubmatch(v); sm != nil {
		params["boundary"] = sm[1] + sm[2]
	}
	return mt, params
}

// walker walks the MIME tree of a message, collecting its leaves.
type walker struct {
	m        *message
	entities int
}

// walk visits one entity with header h, written as raw, with body body.
func (w *walker) walk(h header, raw, body []byte, index string, depth int, truncated bool) error {
	w.entities++
	if w.entities > MaxMIMEParts {
		return fmt.Errorf("more than %d MIME parts (MaxMIMEParts)", MaxMIMEParts)
	}
	where := "message"
	if index != "" {
		where = "part " + index
	}
	mt, params := w.m.contentType(h)
	if !strings.HasPrefix(mt, "multipart/") {
		w.m.leaves = append(w.m.leaves, &entity{
			index:     index,
			mediaType: mt,
			params:    params,
			header:    h,
			typed:     h.has("Content-Type"),
			cte:       transferEncoding(h),
			raw:       raw,
			body:      body,
			truncated: truncated,
		})
		return nil
	}
	if depth >= MaxMIMEDepth {
		return fmt.Errorf("%s: multipart nested deeper than %d (MaxMIMEDepth)", where, MaxMIMEDepth)
	}
	boundary := params["boundary"]
	if boundary == "" {
		return fmt.Errorf("%s: %s without boundary parameter (RFC 2046 §5.1.1)", where, mt)
	}
	parts, closed := splitMultipart(body, boundary, MaxMIMEParts-w.entities+1)
	if len(parts) > MaxMIMEParts-w.entities {
		return fmt.Errorf("more than %d MIME parts (MaxMIMEParts)", MaxMIMEParts)
	}
	if len(parts) == 0 {
		return fmt.Errorf("%s: %s: no delimiter line --%s in the body", where, mt, boundary)
	}
	if !closed {
		w.m.tol.add("truncated-mime")
	}
	for i, p := range parts {
		hb, err := readHeader(p, MaxHeaderFields, false)
		if err != nil {
			return fmt.Errorf("%s: part %d header: %w", where, i+1, err)
		}
		if hb.badLines > 0 {
			w.m.tol.add("bad-header-line")
		}
		child := strconv.Itoa(i + 1)
		if index != "" {
			child = index + "." + child
		}
		b := hb.body
		if b == nil {
			// No empty line: a part of header only.
			b = []byte{}
		}
		last := i == len(parts)-1
		if err := w.walk(hb.fields, p, b, child, depth+1, truncated || (last && !closed)); err != nil {
			return err
		}
	}
	return nil
}

// splitMultipart splits a multipart body at its delimiter lines (RFC 2046
// §5.1.1): "--" boundary, optional white space, at the start of a line; the
// line ending before a delimiter belongs to it. The preamble before the first
// delimiter and the epilogue after the close delimiter ("--" boundary "--")
// are dropped. closed is false when there is no close delimiter. It stops
// after maxParts parts.
func splitMultipart(body []byte, boundary string, maxParts int) (parts [][]byte, closed bool) {
	delim := []byte("--" + boundary)
	start := -1 // start of the current part, -1 before the first delimiter
	pos := 0
	for pos < len(body) {
		line, next := cutLine(body[pos:])
		nextPos := len(body) - len(next)
		if next == nil {
			nextPos = len(body)
		}
		if bytes.HasPrefix(line, delim) {
			tail := bytes.TrimRight(line[len(delim):], " \t")
			isClose := bytes.Equal(tail, []byte("--"))
			if len(tail) == 0 || isClose {
				if start >= 0 {
					parts = append(parts, trimLineEnding(body[start:pos]))
					if len(parts) >= maxParts {
						return parts, false
					}
				}
				if isClose {
					return parts, true
				}
				start = nextPos
			}
		}
		pos = nextPos
	}
	if start >= 0 {
		parts = append(parts, body[start:])
	}
	return parts, false
}

// trimLineEnding removes one trailing CRLF or LF.
func trimLineEnding(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}

// transferEncoding returns the Content-Transfer-Encoding, lower case,
// without comments.
func transferEncoding(h header) string {
	return strings.ToLower(strings.TrimSpace(stripComments(h.get("Content-Transfer-Encoding"))))
}

// decode returns the body of e with its transfer encoding (RFC 2045 §6)
// undone.
func (m *message) decode(e *entity) []byte {
	switch e.cte {
	case "", "7bit", "8bit", "binary":
		return e.body
	case "quoted-printable":
		return decodeQuotedPrintable(e.body)
	case "base64":
		b, ok := decodeBase64(e.body)
		if !ok {
			m.tol.add("bad-cte")
		}
		return b
	default:
		m.tol.add("unknown-cte")
		return e.body
	}
}

// text returns the body of a text entity decoded, in UTF-8. A charset that
// is unknown is read as is.
func (m *message) text(e *entity) []byte {
	b := m.decode(e)
	cs := strings.ToLower(strings.TrimSpace(e.params["charset"]))
	switch cs {
	case "", "us-ascii", "utf-8", "utf8", "ascii":
		return b
	}
	r, err := charset.Reader(cs, bytes.NewReader(b))
	if err != nil {
		m.tol.add("unknown-charset")
		return b
	}
	out, err := io.ReadAll(r)
	if err != nil {
		m.tol.add("unknown-charset")
		return b
	}
	return out
}

// decodeQuotedPrintable undoes quoted-printable (RFC 2045 §6.7) leniently:
// an "=" that starts no valid escape is kept as written, as RFC 2045 §6.7
// (1) suggests, and trailing white space is kept.
func decodeQuotedPrintable(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '=' {
			out = append(out, c)
			continue
		}
		// Soft line break: "=", optional white space, line ending.
		j := i + 1
		for j < len(b) && (b[j] == ' ' || b[j] == '\t') {
			j++
		}
		if j < len(b) && b[j] == '\n' {
			i = j
			continue
		}
		if j+1 < len(b) && b[j] == '\r' && b[j+1] == '\n' {
			i = j + 1
			continue
		}
		if j == len(b) {
			break
		}
		if i+2 < len(b) {
			if h, ok := unhex(b[i+1]); ok {
				if l, ok := unhex(b[i+2]); ok {
					out = append(out, h<<4|l)
					i += 2
					continue
				}
			}
		}
		out = append(out, c)
	}
	return out
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// decodeBase64 undoes base64 (RFC 2045 §6.8), skipping line breaks and white
// space. Characters outside the alphabet are skipped too, as RFC 2045 §6.8
// says, but reported with ok false, as are a bad length and data after
// padding (two encodings run together, each decoded on its own).
func decodeBase64(b []byte) (out []byte, ok bool) {
	ok = true
	out = make([]byte, 0, base64.RawStdEncoding.DecodedLen(len(b)))
	seg := make([]byte, 0, len(b))
	flush := func() {
		if len(seg)%4 == 1 {
			seg = seg[:len(seg)-1]
			ok = false
		}
		buf := make([]byte, base64.RawStdEncoding.DecodedLen(len(seg)))
		n, err := base64.RawStdEncoding.Decode(buf, seg)
		if err != nil {
			ok = false
		}
		out = append(out, buf[:n]...)
		seg = seg[:0]
	}
	padding := false
	for _, c := range b {
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '+', c == '/':
			if padding {
				flush()
				padding = false
				ok = false
			}
			seg = append(seg, c)
		case c == '=':
			padding = true
		case c == ' ', c == '\t', c == '\r', c == '\n':
		default:
			ok = false
		}
	}
	flush()
	return out, ok
}
