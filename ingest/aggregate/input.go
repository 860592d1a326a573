package aggregate

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"
)

// sniffBytes is how much of the start of a document is examined for a
// byte-order mark and the encoding in the XML declaration.
const sniffBytes = 4096

// maxEmptyReads is how many reads in a row may return nothing before the
// input fails with io.ErrNoProgress, as bufio does.
const maxEmptyReads = 100

// errTokenTooLong is returned by input.ReadByte when one XML token (a tag, a
// run of text, a comment) exceeds MaxTokenBytes, so that encoding/xml, which
// buffers a whole token, never holds more than that.
var errTokenTooLong = fmt.Errorf("an XML tag, text or comment longer than %d bytes (MaxTokenBytes)", MaxTokenBytes)

// input is the byte source of the XML decoder. It replaces bytes that are
// not UTF-8 or not XML characters by U+FFFD instead of letting encoding/xml
// fail on them, notes what it replaced, and limits the bytes that one
// XML token may take (see Decoder.token).
type input struct {
	r          io.Reader
	buf        []byte // bytes read from r
	clean      []byte // buf with replacements, when any were needed
	out        []byte // bytes ready for the XML decoder: buf or clean
	pos        int
	carry      [utf8.UTFMax]byte // an incomplete UTF-8 sequence at the end of the last read
	ncarry     int
	err        error
	emptyReads int
	sanitize   bool // replace invalid UTF-8 and characters XML forbids
	scanAmp    bool // look for '&' that does not start an XML entity

	// n counts the bytes given out by ReadByte and Read, or taken by the
	// scanner; ReadByte fails once n reaches limit.
	n, limit int64

	// filled counts the bytes that fill made ready; the offsets below are
	// in that stream.
	filled int64

	// An '&' at the end of a read, its offset, and the bytes after it so
	// far.
	ampCut bool
	ampAt  int64
	amp    []byte

	// The offset of the first byte replaced or let through of each kind,
	// notSeen for none. What was seen is noted as a toleration once the
	// decoder has read that far (Decoder.noteInput), so that the codes of
	// a report do not depend on how far ahead its input was read.
	invalidUTF8At, invalidCharAt, bareAmpAt, htmlEntityAt int64
}

// notSeen is the offset of what an input has not seen.
const notSeen = math.MaxInt64

// inputBufferBytes is the size of the reads from the source.
const inputBufferBytes = 16 << 10

func newInput(r io.Reader, sanitize bool) *input {
	return &input{r: r, buf: make([]byte, inputBufferBytes), sanitize: sanitize, scanAmp: true, limit: 1<<63 - 1,
		invalidUTF8At: notSeen, invalidCharAt: notSeen, bareAmpAt: notSeen, htmlEntityAt: notSeen}
}

// seen says whether the input saw something at offset at, among the bytes
// read from it.
func (in *input) seen(at int64) bool { return at < in.n }

// keepFirst keeps the first offset at which something was seen.
func keepFirst(at *int64, offset int64) {
	if offset < *at {
		*at = offset
	}
}

// ReadByte is what encoding/xml calls for each byte.
func (in *input) ReadByte() (byte, error) {
	if in.pos >= len(in.out) {
		if err := in.fill(); err != nil {
			return 0, err
		}
	}
	if in.n >= in.limit {
		return 0, errTokenTooLong
	}
	b := in.out[in.pos]
	in.pos++
	in.n++
	return b, nil
}

// Read serves a charset decoder stacked on this input (see
// Decoder.charsetReader); it is not subject to the token limit.
func (in *input) Read(p []byte) (int, error) {
	if in.pos >= len(in.out) {
		if err := in.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, in.out[in.pos:])
	in.pos += n
	in.n += int64(n)
	return n, nil
}

func (in *input) fill() error {
	for {
		if in.err != nil {
			if in.ncarry > 0 {
				// The document ends inside a UTF-8 sequence.
				in.ncarry = 0
				keepFirst(&in.invalidUTF8At, in.filled)
				in.out = append(in.clean[:0], "\uFFFD"...)
				in.pos = 0
				in.filled += int64(len(in.out))
				return nil
			}
			return in.err
		}
		k := copy(in.buf, in.carry[:in.ncarry])
		in.ncarry = 0
		n, err := in.r.Read(in.buf[k:])
		in.err = err
		data := in.buf[:k+n]
		if n == 0 && err == nil {
			if in.emptyReads++; in.emptyReads >= maxEmptyReads {
				in.err = io.ErrNoProgress
			}
		} else {
			in.emptyReads = 0
		}
		if len(data) == 0 {
			continue
		}
		if in.sanitize {
			if in.err == nil {
				if t := incompleteTail(data); t > 0 {
					in.ncarry = copy(in.carry[:], data[len(data)-t:])
					data = data[:len(data)-t]
					if len(data) == 0 {
						continue
					}
				}
			}
			data = in.replaceInvalid(data)
		}
		if in.scanAmp {
			in.checkAmpersands(data)
		}
		in.out = data
		in.pos = 0
		in.filled += int64(len(data))
		return nil
	}
}

// incompleteTail returns the length of a UTF-8 sequence cut off at the end
// of b, 0 if there is none.
func incompleteTail(b []byte) int {
	for k := 1; k < utf8.UTFMax && k <= len(b); k++ {
		c := b[len(b)-k]
		if c < utf8.RuneSelf {
			return 0
		}
		if c >= 0xC0 { // a leading byte
			need := 2
			if c >= 0xF0 {
				need = 4
			} else if c >= 0xE0 {
				need = 3
			}
			if need > k {
				return k
			}
			return 0
		}
	}
	return 0
}

// notPlain marks the bytes other than printable ASCII (0x20 <= c < 0x80),
// tab, LF and CR: those that replaceInvalid must look at.
var notPlain = func() (t [256]byte) {
	for c := range 256 {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' || c >= 0x80 {
			t[c] = 1
		}
	}
	return t
}()

// replaceInvalid returns b with each invalid UTF-8 byte and each character
// that XML 1.0 §2.2 does not allow (control characters other than tab, LF
// and CR; U+FFFE and U+FFFF) replaced by U+FFFD.
func (in *input) replaceInvalid(b []byte) []byte {
	i := 0
	for i+8 <= len(b) && notPlain[b[i]]|notPlain[b[i+1]]|notPlain[b[i+2]]|notPlain[b[i+3]]|
		notPlain[b[i+4]]|notPlain[b[i+5]]|notPlain[b[i+6]]|notPlain[b[i+7]] == 0 {
		i += 8
	}
	for i < len(b) && notPlain[b[i]] == 0 {
		i++
	}
	if i == len(b) {
		return b
	}
	out := append(in.clean[:0], b[:i]...)
	for i < len(b) {
		c := b[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 || c == '\n' || c == '\t' || c == '\r' {
				out = append(out, c)
			} else {
				keepFirst(&in.invalidCharAt, in.filled+int64(len(out)))
				out = append(out, "\uFFFD"...)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			keepFirst(&in.invalidUTF8At, in.filled+int64(len(out)))
			out = append(out, "\uFFFD"...)
		case r == 0xFFFE || r == 0xFFFF:
			keepFirst(&in.invalidCharAt, in.filled+int64(len(out)))
			out = append(out, "\uFFFD"...)
		default:
			out = append(out, b[i:i+size]...)
		}
		i += size
	}
	in.clean = out
	return out
}

// checkAmpersands notes an '&' that does not start a character or entity
// reference (XML 1.0 §4.1), and an HTML entity such as &nbsp;. The decoder
// keeps the former as text and decodes the latter (Decoder.Strict is off).
// An '&' inside a comment or CDATA section is judged as if it were text.
// b is the next part of the stream, from offset in.filled.
func (in *input) checkAmpersands(b []byte) {
	if in.bareAmpAt != notSeen && in.htmlEntityAt != notSeen {
		// Both were seen: later ones cannot come first.
		return
	}
	if in.ampCut {
		// The reference after the '&' at the end of the last read goes on.
		in.amp = append(in.amp, b[:min(len(b), maxEntityName+1)]...)
		if in.judgeReference(in.amp, in.ampAt) {
			in.ampCut = false
		}
	}
	off := in.filled
	for {
		i := bytes.IndexByte(b, '&')
		if i < 0 {
			return
		}
		at := off + int64(i)
		b = b[i+1:]
		off = at + 1
		if !in.judgeReference(b, at) {
			in.ampCut = true
			in.ampAt = at
			in.amp = append(in.amp[:0], b...)
			return
		}
	}
}

// maxEntityName is longer than any entity name of HTML.
const maxEntityName = 32

// judgeReference judges the bytes after an '&' at offset at. It returns
// false when they end before the reference can be judged.
func (in *input) judgeReference(b []byte, at int64) bool {
	j := 0
	for j < len(b) && j <= maxEntityName && isNameByte(b[j]) {
		j++
	}
	switch {
	case j == len(b) && j <= maxEntityName:
		return false
	case j > maxEntityName || j == 0 || b[j] != ';':
		keepFirst(&in.bareAmpAt, at)
	default:
		switch name := b[:j]; {
		case xmlEntity(name):
		case name[0] == '#':
		default:
			keepFirst(&in.htmlEntityAt, at)
		}
	}
	return true
}

// xmlEntity says whether name is one of the entities that XML 1.0 §4.6
// predefines.
func xmlEntity(name []byte) bool {
	switch string(name) {
	case "lt", "gt", "amp", "apos", "quot":
		return true
	}
	return false
}

func isNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '#' || c == '_' || c == '-' || c == '.' || c == ':'
}

// sniff examines the start of the document: a byte-order mark, UTF-16
// without one, and the encoding named by the XML declaration (XML 1.0 §4.3.3
// and Appendix F). It returns the reader to decode, whether that reader
// gives UTF-8 (to be checked and repaired) or bytes of the declared
// charset, which Decoder.charsetReader converts once encoding/xml has read
// the declaration.
func sniff(r io.Reader, tolerate func(string)) (src io.Reader, utf8Input bool, charset string) {
	br := bufio.NewReaderSize(r, 2*sniffBytes)
	head, _ := br.Peek(sniffBytes)
	switch {
	case bytes.HasPrefix(head, []byte("\xEF\xBB\xBF")):
		tolerate("bom")
		br.Discard(3)
		head = head[3:]
	case bytes.HasPrefix(head, []byte("\xFF\xFE")), bytes.HasPrefix(head, []byte("<\x00?\x00")):
		tolerate("charset:utf-16")
		return utf16Reader(br, unicode.LittleEndian), true, "utf-16"
	case bytes.HasPrefix(head, []byte("\xFE\xFF")), bytes.HasPrefix(head, []byte("\x00<\x00?")):
		tolerate("charset:utf-16")
		return utf16Reader(br, unicode.BigEndian), true, "utf-16"
	}
	enc := declaredEncoding(head)
	switch enc {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
		// US-ASCII is a subset of UTF-8.
		return br, true, ""
	}
	if _, ok := charsets[enc]; ok && looksUTF8(head) {
		// A declared 8-bit charset over text that is UTF-8: a common
		// mistake. Text in an 8-bit charset is hardly ever valid UTF-8.
		tolerate("charset-mismatch:" + enc)
		return br, true, enc
	}
	return br, false, enc
}

// looksUTF8 says whether b holds UTF-8 sequences of more than one byte, and
// no byte that is not UTF-8 (a sequence cut at the end aside).
func looksUTF8(b []byte) bool {
	b = b[:len(b)-incompleteTail(b)]
	return slices.ContainsFunc(b, func(c byte) bool { return c >= utf8.RuneSelf }) && utf8.Valid(b)
}

func utf16Reader(r io.Reader, e unicode.Endianness) io.Reader {
	// ExpectBOM: a BOM, where present, says the byte order and is removed.
	return unicode.UTF16(e, unicode.ExpectBOM).NewDecoder().Reader(r)
}

// declaredEncoding returns the lower-cased encoding name of the XML
// declaration at the start of head, or "".
func declaredEncoding(head []byte) string {
	head = bytes.TrimLeft(head, " \t\r\n")
	if !bytes.HasPrefix(head, []byte("<?xml")) {
		return ""
	}
	end := bytes.Index(head, []byte("?>"))
	if end < 0 {
		return ""
	}
	decl := string(head[:end])
	i := strings.Index(decl, "encoding")
	if i < 0 {
		return ""
	}
	rest := strings.TrimLeft(decl[i+len("encoding"):], " \t\r\n")
	if !strings.HasPrefix(rest, "=") {
		return ""
	}
	rest = strings.TrimLeft(rest[1:], " \t\r\n")
	if rest == "" || rest[0] != '"' && rest[0] != '\'' {
		return ""
	}
	q := rest[0]
	rest = rest[1:]
	j := strings.IndexByte(rest, q)
	if j < 0 {
		return ""
	}
	return strings.ToLower(strings.TrimSpace(rest[:j]))
}

// charsets maps the lower-cased names under which reporters declare an
// 8-bit charset to its decoder. ISO 8859-1 and US-ASCII labels are decoded
// as windows-1252, its superset, as web browsers do (WHATWG Encoding §4.2).
var charsets = map[string]encoding.Encoding{
	"windows-1252": charmap.Windows1252,
	"cp1252":       charmap.Windows1252,
	"iso-8859-1":   charmap.Windows1252,
	"iso8859-1":    charmap.Windows1252,
	"iso_8859-1":   charmap.Windows1252,
	"latin1":       charmap.Windows1252,
	"l1":           charmap.Windows1252,
	"iso-8859-15":  charmap.ISO8859_15,
	"latin-9":      charmap.ISO8859_15,
	"iso-8859-2":   charmap.ISO8859_2,
	"windows-1250": charmap.Windows1250,
	"windows-1251": charmap.Windows1251,
	"koi8-r":       charmap.KOI8R,
}

var errUnsupportedCharset = errors.New("unsupported charset")
