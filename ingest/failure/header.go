package failure

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
)

// field is one "Name: value" line of a header block or of a feedback part,
// its continuation lines joined.
type field struct {
	name  string // as written
	value string // unfolded: continuation lines joined with one space, trimmed
}

// header is a header block, its fields in order.
type header []field

// get returns the value of the first field named name (case-insensitive), or
// "".
func (h header) get(name string) string {
	for _, f := range h {
		if strings.EqualFold(f.name, name) {
			return f.value
		}
	}
	return ""
}

func (h header) has(name string) bool {
	for _, f := range h {
		if strings.EqualFold(f.name, name) {
			return true
		}
	}
	return false
}

// headerBlock is a header block read from the start of some bytes.
type headerBlock struct {
	fields header
	// raw is the block as written, each line with its line ending, without
	// the empty line that ends it.
	raw []byte
	// body is what follows the empty line; nil when no empty line ends the
	// block.
	body []byte
	// badLines counts lines that are neither a field nor a continuation.
	badLines int
	// firstBad is set when the very first line is not a field.
	firstBad bool
}

var errTooManyFields = errors.New("too many fields")

// readHeader reads the header block at the start of b (RFC 5322 §2.2): lines
// ending in LF or CRLF, continuation lines starting with a space or tab, an
// empty line ending the block. With blankLines, empty lines do not end the
// block but are skipped, as in a feedback part. At most maxFields fields are
// read; one more is errTooManyFields, with the block read so far.
func readHeader(b []byte, maxFields int, blankLines bool) (headerBlock, error) {
	var hb headerBlock
	rest := b
	cur := -1 // index in hb.fields of the field being continued, -1 for none
	var value strings.Builder
	flush := func() {
		if cur >= 0 {
			hb.fields[cur].value = value.String()
			value.Reset()
			cur = -1
		}
	}
	lineNo := 0
	for len(rest) > 0 {
		line, next := cutLine(rest)
		lineNo++
		if len(line) == 0 {
			if !blankLines {
				hb.raw = b[:len(b)-len(rest)]
				hb.body = next
				if hb.body == nil {
					hb.body = []byte{}
				}
				flush()
				return hb, nil
			}
			flush()
			rest = next
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if cur >= 0 {
				if t := bytes.TrimSpace(line); len(t) > 0 {
					if value.Len() > 0 {
						value.WriteByte(' ')
					}
					value.Write(t)
				}
			} else {
				hb.badLines++
				if lineNo == 1 {
					hb.firstBad = true
				}
			}
			rest = next
			continue
		}
		flush()
		name, val, ok := splitField(line)
		if !ok {
			hb.badLines++
			if lineNo == 1 {
				hb.firstBad = true
			}
			rest = next
			continue
		}
		if len(hb.fields) >= maxFields {
			hb.raw = b[:len(b)-len(rest)]
			return hb, fmt.Errorf("%w: more than %d", errTooManyFields, maxFields)
		}
		hb.fields = append(hb.fields, field{name: name})
		cur = len(hb.fields) - 1
		value.Write(val)
		rest = next
	}
	flush()
	hb.raw = b
	return hb, nil
}

// cutLine returns the first line of b without its line ending (LF or CRLF),
// and what follows it.
func cutLine(b []byte) (line, rest []byte) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		line, rest = b, nil
	} else {
		line, rest = b[:i], b[i+1:]
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

// splitField splits "Name: value". The name is printable US-ASCII without
// colon (RFC 5322 §3.6.8); white space before the colon is the obsolete
// syntax of RFC 5322 §4.5 and accepted.
func splitField(line []byte) (name string, value []byte, ok bool) {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return "", nil, false
	}
	n := bytes.TrimRight(line[:i], " \t")
	if len(n) == 0 {
		return "", nil, false
	}
	for _, c := range n {
		if c < 33 || c > 126 {
			return "", nil, false
		}
	}
	return string(n), bytes.TrimSpace(line[i+1:]), true
}

// headerEnd returns the offset in b of the body after the header block, and
// the length of the block without its ending empty line. Without an empty
// line, the whole of b is the block and body is len(b).
func headerEnd(b []byte) (blockLen, body int) {
	rest := b
	for len(rest) > 0 {
		line, next := cutLine(rest)
		if len(line) == 0 {
			return len(b) - len(rest), len(b) - len(next)
		}
		rest = next
	}
	return len(b), len(b)
}

// wordDecoder decodes RFC 2047 encoded words, in any charset go-message
// knows.
var wordDecoder = &mime.WordDecoder{CharsetReader: charset.Reader}

// decodeWords decodes the RFC 2047 encoded words of a header value. A value
// that does not decode is kept as written. The result is valid UTF-8.
func decodeWords(s string) string {
	if strings.Contains(s, "=?") {
		if d, err := wordDecoder.DecodeHeader(s); err == nil {
			s = d
		}
	}
	return validUTF8(s)
}

func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// obsoleteZones are the zone names of RFC 5322 §4.3 with their offsets in
// hours. They are replaced by numeric offsets before parsing: time.Parse
// knows a zone name only when the local zone uses it (and then with the
// local meaning, "CST" in China is +0800), and else gives it offset zero.
var obsoleteZones = map[string]int{
	"UT": 0, "GMT": 0,
	"EST": -5, "EDT": -4, "CST": -6, "CDT": -5,
	"MST": -7, "MDT": -6, "PST": -8, "PDT": -7,
}

// fallbackDateLayouts are tried when net/mail.ParseDate fails: ISO 8601
// forms and the C library's forms that some reporters write.
var fallbackDateLayouts = []string{
	time.RFC3339,
	"2006-01-02T15:04:05",
	"2006-01-02 15:04:05 -0700",
	"2006-01-02 15:04:05 MST",
	"2006-01-02 15:04:05",
	"Mon Jan _2 15:04:05 -0700 2006",
	time.UnixDate,
	time.ANSIC,
	time.RFC850,
	"Mon, 2 Jan 2006 15:04:05",
	"2 Jan 2006 15:04:05",
	"Mon, 2 January 2006 15:04:05 -0700",
	"2 January 2006 15:04:05 -0700",
}

// parseDate parses a date-time as mail writes it: RFC 5322 §3.3 with its
// obsolete forms (§4.3), then a few other common forms. Comments are
// removed and white space collapsed first.
func parseDate(s string) (time.Time, bool) {
	words := strings.Fields(stripComments(s))
	if len(words) == 0 {
		return time.Time{}, false
	}
	if h, ok := obsoleteZones[strings.ToUpper(words[len(words)-1])]; ok {
		words[len(words)-1] = fmt.Sprintf("%+03d00", h)
	}
	d := strings.Join(words, " ")
	if t, err := mail.ParseDate(d); err == nil {
		return t, true
	}
	for _, layout := range fallbackDateLayouts {
		if t, err := time.Parse(layout, d); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// stripComments removes RFC 5322 §3.2.2 comments, "(...)" nested, from s.
func stripComments(s string) string {
	if !strings.Contains(s, "(") {
		return s
	}
	var b strings.Builder
	depth := 0
	escaped := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case depth > 0 && escaped:
			escaped = false
		case depth > 0 && c == '\\':
			escaped = true
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth == 0:
			b.WriteByte(c)
		}
	}
	return b.String()
}
