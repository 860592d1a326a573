package aggregate

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"unicode/utf8"
)

// The scanner reads the XML of a report in place of encoding/xml, giving
// the same tokens (see token); the decoder on it runs at 4.5-4.9 times the
// speed it had on encoding/xml. encoding/xml reads its input a byte at a
// time through an interface and makes a new string of every name; its
// tokenizer alone took 88% of the old decoder's time (BENCHMARKS.md, "The
// aggregate decoder: a scanner of its own"), so the decoder could not get
// faster on it.
//
// Why a scanner of our own rather than a library (measured on the same
// 56 MB report, one core, BENCHMARKS.md): encoding/xml's RawToken 39 MB/s;
// github.com/muktihari/xmltokenizer 201 MB/s; github.com/orisano/gosax 663
// MB/s; github.com/tdewolff/parse/v2/xml 249 MB/s but only over the whole
// input in memory. Speed was not what decided: the decoder must give what
// it gave on encoding/xml, records, tolerations and errors alike, and a
// library has leniencies and errors of its own, decodes references and line
// ends its own way or not at all, and hides how far into its input it has
// read. This scanner takes the regular XML that reports are made of and,
// on anything else, stops at the start of the token and hands the rest of
// the input, from that byte on, to encoding/xml, which carries on exactly
// where it would have been had it read from the start: RawToken keeps no
// state from one token to the next but the line number and the end tag of
// an empty element. Nothing is read twice and nothing is held beyond one
// token, so memory stays bounded as before.
//
// What it takes: start and end tags with ASCII names (a prefix and a local
// part, XML 1.0 §2.3, Namespaces in XML §3), attributes with quoted
// values; text with the predefined entities, HTML's and character
// references (XML 1.0 §4.1, §4.6); CR LF and CR made LF (XML 1.0 §2.11);
// CDATA sections, comments and processing instructions; an XML
// declaration of version 1.0 (XML 1.0 §2.8). What it hands over: a
// DOCTYPE or another markup declaration (FallbackDoctype), an XML
// declaration of another form (FallbackDeclaration), and XML that is not
// well-formed or that only encoding/xml's leniency reads, names that are
// not ASCII, a token near MaxTokenBytes, the input ending or failing inside
// a token (FallbackOther). A document in a charset that is converted does
// not reach the scanner (FallbackCharset).

// errHandOver is what scanner.next returns when encoding/xml is to read on
// from the start of the token; scanner.reason says why.
var errHandOver = errors.New("aggregate: the scanner hands over to encoding/xml")

// scanResult says how the scan of one token ended.
type scanResult uint8

const (
	scanned  scanResult = iota // the token is read
	needMore                   // the token goes on past the bytes at hand
	handOver                   // encoding/xml is to read the token
)

// A scanner reads tokens from the bytes that an input made ready: it takes
// them as they come into a window that holds the token being read. The
// window holds at most about twice MaxTokenBytes (see next).
type scanner struct {
	in   *input
	buf  []byte // the window: the token being read and what follows
	base int64  // the offset in the input of buf[0]
	pos  int    // the start of the next token
	done bool   // the input has no more bytes: err says why
	err  error

	// Lines are counted lazily: newlines holds the LFs before
	// buf[counted].
	newlines int
	counted  int

	// afterText says that the last token was text that ended at a '<':
	// encoding/xml has read that '<' as part of the text (see next).
	afterText bool

	// The end tag to return for an empty element, <x/>.
	needClose bool
	closeName xml.Name

	scratch []byte // text with references or CRs, decoded
	label   string // the charset an XML declaration names, until next returns

	// declared is called with the charset that an XML declaration
	// names, other than UTF-8.
	declared func(label string)

	reason string // why the scanner handed over

	rescanned int64 // bytes scanned again, for TestScannerLongTokens
}

func newScanner(in *input, declared func(string)) *scanner {
	return &scanner{in: in, declared: declared}
}

// next reads the next token into t. open is the innermost open element,
// or nil: the end tag of a well-formed document names it, and its strings
// are reused. At the end of the input next returns io.EOF, or the error of
// the input; errHandOver where encoding/xml is to read on from s.pos.
func (s *scanner) next(t *token, open *xml.Name) error {
	if s.needClose {
		s.needClose = false
		t.kind, t.name = tokEnd, s.closeName
		return nil
	}
	for {
		if s.pos == len(s.buf) {
			if s.done {
				return s.err
			}
			s.fill()
			continue
		}
		start, afterText := s.pos, s.afterText
		// encoding/xml counts a token's bytes from the one after the
		// last it read; after text that is the byte after its '<'.
		credit := 0
		if afterText {
			credit = 1
		}
		switch s.scan(t, open) {
		case scanned:
			// MaxTokenBytes, as input.ReadByte applies it to
			// encoding/xml: the bytes it reads for one token, which
			// for text is the '<' after it too.
			read := s.pos - start - credit
			if t.kind == tokText && s.afterText {
				read++
			}
			if read > MaxTokenBytes {
				s.pos, s.afterText, s.needClose, s.label = start, afterText, false, ""
				s.reason = FallbackOther
				return errHandOver
			}
			if s.label != "" {
				s.declared(s.label)
				s.label = ""
			}
			return nil
		case needMore:
			have := len(s.buf) - start
			if s.done || have-credit >= MaxTokenBytes {
				// Cut by the end of the input (text aside, which
				// scanText ends there), or too long: encoding/xml
				// says which error.
				s.reason = FallbackOther
				return errHandOver
			}
			// The token is scanned again from its start: read as
			// much again as there is of it, so that a long token
			// in short reads is not scanned once for each read.
			// (It need not read past MaxTokenBytes.)
			s.rescanned += int64(have)
			need := min(have+max(have, inputBufferBytes), MaxTokenBytes+2)
			for len(s.buf)-s.pos < need && !s.done {
				s.fill()
			}
		case handOver:
			return errHandOver
		}
	}
}

// fill brings the next bytes of the input into the window, dropping those
// before the token being read.
func (s *scanner) fill() {
	if s.pos > 0 {
		s.newlines += bytes.Count(s.buf[s.counted:s.pos], newline)
		s.counted = 0
		s.base += int64(s.pos)
		s.buf = s.buf[:copy(s.buf, s.buf[s.pos:])]
		s.pos = 0
	}
	if err := s.in.fill(); err != nil {
		s.done, s.err = true, err
		return
	}
	s.buf = append(s.buf, s.in.out[s.in.pos:]...)
	s.in.pos = len(s.in.out)
}

var newline = []byte{'\n'}

// line returns the line at which the last token ends, as encoding/xml's
// InputPos does.
func (s *scanner) line() int {
	s.newlines += bytes.Count(s.buf[s.counted:s.pos], newline)
	s.counted = s.pos
	return s.newlines + 1
}

// offset returns the offset in the input of the end of the last token.
func (s *scanner) offset() int64 { return s.base + int64(s.pos) }

// leave hands the token over to encoding/xml for reason.
func (s *scanner) leave(reason string) scanResult {
	s.reason = reason
	return handOver
}

// scan reads the token at s.pos. The scan functions read from s.buf and
// move s.pos only when they return scanned; after needMore the token is
// scanned again from its start, with more bytes.
func (s *scanner) scan(t *token, open *xml.Name) scanResult {
	b := s.buf[s.pos:]
	if b[0] != '<' {
		return s.scanText(t)
	}
	if len(b) < 2 {
		return needMore
	}
	switch b[1] {
	case '/':
		return s.scanEnd(t, open)
	case '?':
		return s.scanProcInst(t)
	case '!':
		return s.scanBang(t)
	}
	return s.scanStart(t)
}

// textStop marks the bytes at which the scan of text stops to look:
// the end of the text, a reference, a CR, and '>' (of a "]]>").
var textStop = [256]bool{'<': true, '&': true, '\r': true, '>': true}

// scanText reads character data, up to a '<' or the end of the input
// (XML 1.0 §2.4).
func (s *scanner) scanText(t *token) scanResult {
	b := s.buf
	start := s.pos
	plain := true
	i := start
	for ; i < len(b); i++ {
		c := b[i]
		if !textStop[c] {
			continue
		}
		if c == '<' {
			break
		}
		if c == '>' {
			// XML 1.0 §2.4: "]]>" may not appear in text;
			// encoding/xml fails on it.
			if i-start >= 2 && b[i-1] == ']' && b[i-2] == ']' {
				return s.leave(FallbackOther)
			}
			continue
		}
		plain = false // '&' or CR
	}
	atEOF := i == len(b)
	if atEOF && (!s.done || s.err != io.EOF) {
		// More may come; or the input failed, which encoding/xml
		// reports after the text.
		if s.done {
			return s.leave(FallbackOther)
		}
		return needMore
	}
	raw := b[start:i]
	if plain {
		t.text = raw
	} else {
		text, ok := s.decode(raw, true, atEOF)
		if !ok {
			return s.leave(FallbackOther)
		}
		t.text = text
	}
	t.kind = tokText
	s.pos = i
	s.afterText = !atEOF
	return scanned
}

// scanStart reads a start tag (XML 1.0 §3.1) and its attributes.
func (s *scanner) scanStart(t *token) scanResult {
	b := s.buf
	name, i, r := s.scanName(s.pos+1, nil)
	if r != scanned {
		return r
	}
	var attr []xml.Attr
	for {
		i = skipSpace(b, i)
		if i >= len(b) {
			return needMore
		}
		switch b[i] {
		case '>':
			t.kind, t.name, t.attr = tokStart, name, attr
			s.pos, s.afterText = i+1, false
			return scanned
		case '/':
			if i+1 >= len(b) {
				return needMore
			}
			if b[i+1] != '>' {
				return s.leave(FallbackOther)
			}
			t.kind, t.name, t.attr = tokStart, name, attr
			s.needClose, s.closeName = true, name
			s.pos, s.afterText = i+2, false
			return scanned
		}
		var a xml.Attr
		if a.Name, i, r = s.scanName(i, nil); r != scanned {
			return r
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return needMore
		}
		if b[i] != '=' {
			// encoding/xml, not strict, takes the name for the value.
			return s.leave(FallbackOther)
		}
		i = skipSpace(b, i+1)
		if i >= len(b) {
			return needMore
		}
		q := b[i]
		if q != '"' && q != '\'' {
			// Not quoted: encoding/xml, not strict, reads on.
			return s.leave(FallbackOther)
		}
		i++
		n := bytes.IndexByte(b[i:], q)
		value := b[i:]
		if n >= 0 {
			value = value[:n]
		}
		if bytes.IndexByte(value, '<') >= 0 {
			// XML 1.0 §3.1 AttValue: no '<'; encoding/xml fails.
			return s.leave(FallbackOther)
		}
		if n < 0 {
			return needMore
		}
		text, ok := s.decode(value, true, false)
		if !ok {
			return s.leave(FallbackOther)
		}
		a.Value = string(text)
		attr = append(attr, a)
		i += n + 1
	}
}

// scanEnd reads an end tag (XML 1.0 §3.1).
func (s *scanner) scanEnd(t *token, open *xml.Name) scanResult {
	b := s.buf
	name, i, r := s.openName(s.pos+2, open)
	if r != scanned {
		if name, i, r = s.scanName(s.pos+2, open); r != scanned {
			return r
		}
	}
	i = skipSpace(b, i)
	if i >= len(b) {
		return needMore
	}
	if b[i] != '>' {
		return s.leave(FallbackOther)
	}
	t.kind, t.name = tokEnd, name
	s.pos, s.afterText = i+1, false
	return scanned
}

// scanProcInst reads a processing instruction (XML 1.0 §2.6), the XML
// declaration among them (§2.8).
func (s *scanner) scanProcInst(t *token) scanResult {
	b := s.buf
	i := s.pos + 2
	if i >= len(b) {
		return needMore
	}
	if !nameStart[b[i]] {
		return s.leave(FallbackOther)
	}
	j := i + 1
	for j < len(b) && nameByte[b[j]] {
		j++
	}
	if j == len(b) {
		return needMore
	}
	if b[j] >= utf8.RuneSelf {
		return s.leave(FallbackOther)
	}
	k := skipSpace(b, j)
	if k == len(b) {
		return needMore
	}
	n := bytes.Index(b[k:], []byte("?>"))
	if n < 0 {
		return needMore
	}
	if string(b[i:j]) == "xml" {
		label, ok := declaredLabel(b[k : k+n])
		if !ok {
			return s.leave(FallbackDeclaration)
		}
		s.label = label
	}
	t.kind = tokOther
	s.pos, s.afterText = k+n+2, false
	return scanned
}

// declaredLabel reads an XML declaration (XML 1.0 §2.8 XMLDecl) as
// encoding/xml does, from after "<?xml " to before "?>", and returns the
// encoding it names unless that is UTF-8. It takes only the regular form:
// version="1.0", then encoding and standalone, each after white space,
// without white space around '='. encoding/xml finds the values otherwise
// (by the first "version=" and "encoding=" followed by a quote): ok is
// false for any other form, which the scanner hands over.
func declaredLabel(decl []byte) (label string, ok bool) {
	rest, ok := declaredValue(decl, "version")
	if !ok || string(rest.value) != "1.0" {
		return "", false
	}
	decl = rest.after
	if v, ok := declaredValue(decl, "encoding"); ok && v.spaced {
		if !encName(v.value) {
			return "", false
		}
		if !bytes.EqualFold(v.value, []byte("utf-8")) {
			label = string(v.value)
		}
		decl = v.after
	}
	if v, ok := declaredValue(decl, "standalone"); ok && v.spaced {
		if s := string(v.value); s != "yes" && s != "no" {
			return "", false
		}
		decl = v.after
	}
	return label, skipSpace(decl, 0) == len(decl)
}

type declValue struct {
	value, after []byte
	spaced       bool // white space came before the name
}

// declaredValue reads name="value" or name='value' at the start of decl,
// after optional white space.
func declaredValue(decl []byte, name string) (declValue, bool) {
	i := skipSpace(decl, 0)
	v := declValue{spaced: i > 0}
	decl = decl[i:]
	if !bytes.HasPrefix(decl, []byte(name)) || len(decl) < len(name)+2 || decl[len(name)] != '=' {
		return v, false
	}
	q := decl[len(name)+1]
	if q != '"' && q != '\'' {
		return v, false
	}
	decl = decl[len(name)+2:]
	n := bytes.IndexByte(decl, q)
	if n < 0 {
		return v, false
	}
	v.value, v.after = decl[:n], decl[n+1:]
	return v, true
}

// encName says whether b is an XML 1.0 §4.3.3 EncName.
func encName(b []byte) bool {
	if len(b) == 0 || !('a' <= b[0] && b[0] <= 'z' || 'A' <= b[0] && b[0] <= 'Z') {
		return false
	}
	for _, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// scanBang reads what starts with "<!": a comment (XML 1.0 §2.5), a CDATA
// section (§2.7), or a markup declaration such as <!DOCTYPE>, which it
// leaves to encoding/xml.
func (s *scanner) scanBang(t *token) scanResult {
	b := s.buf
	i := s.pos + 2
	if i >= len(b) {
		return needMore
	}
	switch b[i] {
	case '-':
		if i+1 >= len(b) {
			return needMore
		}
		if b[i+1] != '-' {
			return s.leave(FallbackOther)
		}
		// "--" may not appear in a comment but at its end.
		c := i + 2
		n := bytes.Index(b[c:], []byte("--"))
		if n < 0 || c+n+2 >= len(b) {
			return needMore
		}
		if b[c+n+2] != '>' {
			return s.leave(FallbackOther)
		}
		t.kind = tokOther
		s.pos, s.afterText = c+n+3, false
		return scanned
	case '[':
		const open = "[CDATA["
		if len(b)-i < len(open) {
			if !bytes.HasPrefix([]byte(open), b[i:]) {
				return s.leave(FallbackOther)
			}
			return needMore
		}
		if !bytes.HasPrefix(b[i:], []byte(open)) {
			return s.leave(FallbackOther)
		}
		c := i + len(open)
		n := bytes.Index(b[c:], []byte("]]>"))
		if n < 0 {
			return needMore
		}
		raw := b[c : c+n]
		if bytes.IndexByte(raw, '\r') >= 0 {
			raw, _ = s.decode(raw, false, false)
		}
		t.kind, t.text = tokText, raw
		s.pos, s.afterText = c+n+3, false
		return scanned
	}
	return s.leave(FallbackDoctype)
}

// scanName reads a name at s.buf[i:] as encoding/xml's nsname does: split
// at its one colon into a prefix and a local part, both not empty
// (Namespaces in XML §3, QName), or else all local. A name of more than one
// colon, or of other than ASCII, is left to encoding/xml. A name equal to
// *hint is given hint's strings.
func (s *scanner) scanName(i int, hint *xml.Name) (xml.Name, int, scanResult) {
	b := s.buf
	if i >= len(b) {
		return xml.Name{}, i, needMore
	}
	if !nameStart[b[i]] {
		return xml.Name{}, i, s.leave(FallbackOther)
	}
	colon := -1
	j := i
	for ; j < len(b); j++ {
		c := b[j]
		if !nameByte[c] {
			break
		}
		if c == ':' {
			if colon >= 0 {
				return xml.Name{}, j, s.leave(FallbackOther)
			}
			colon = j
		}
	}
	if j == len(b) {
		return xml.Name{}, j, needMore
	}
	if b[j] >= utf8.RuneSelf {
		return xml.Name{}, j, s.leave(FallbackOther)
	}
	if colon <= i || colon == j-1 {
		if hint != nil && hint.Space == "" && hint.Local == string(b[i:j]) {
			return *hint, j, scanned
		}
		return xml.Name{Local: intern(b[i:j])}, j, scanned
	}
	if hint != nil && hint.Space == string(b[i:colon]) && hint.Local == string(b[colon+1:j]) {
		return *hint, j, scanned
	}
	return xml.Name{Space: intern(b[i:colon]), Local: intern(b[colon+1 : j])}, j, scanned
}

// openName reads the name at s.buf[i:] if it is that of the open element,
// as scanName would; the end tag of a well-formed document names it.
func (s *scanner) openName(i int, open *xml.Name) (xml.Name, int, scanResult) {
	if open == nil {
		return xml.Name{}, i, handOver
	}
	b := s.buf[i:]
	n := len(open.Local)
	if open.Space != "" {
		k := len(open.Space)
		if len(b) <= k || string(b[:k]) != open.Space || b[k] != ':' {
			return xml.Name{}, i, handOver
		}
		b = b[k+1:]
		i += k + 1
	}
	if len(b) <= n || string(b[:n]) != open.Local || nameByte[b[n]] || b[n] >= utf8.RuneSelf {
		return xml.Name{}, i, handOver
	}
	return *open, i + n, scanned
}

// nameStart and nameByte are the ASCII bytes that may start a name and
// that may be in one (XML 1.0 §2.3 NameStartChar, NameChar).
var nameStart, nameByte [256]bool

func init() {
	for c := range 256 {
		letter := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c == ':'
		nameStart[c] = letter
		nameByte[c] = letter || '0' <= c && c <= '9' || c == '.' || c == '-'
	}
}

// skipSpace returns the index of the first byte at or after i in b that is
// not XML white space (XML 1.0 §2.3 S).
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	return i
}

// decode returns the character data of raw as encoding/xml's text reads
// it: CR LF and a lone CR made LF (XML 1.0 §2.11) and, with refs, the
// references replaced (XML 1.0 §4.1): the predefined entities, HTML's (as
// Decoder.Entity = xml.HTMLEntity), characters by number. A reference that
// encoding/xml does not take stays as written, as it leaves it when not
// strict. ok is false where encoding/xml fails or reads what the scanner
// does not: a reference cut by the end of the input (atEOF), a character
// that XML does not allow (XML 1.0 §2.2), an entity name not in ASCII. The
// result is valid until the next call.
func (s *scanner) decode(raw []byte, refs, atEOF bool) ([]byte, bool) {
	out := s.scratch[:0]
	cr := false
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '\r':
			out = append(out, '\n')
			cr = true
			i++
			continue
		case c == '\n':
			if !cr {
				out = append(out, '\n')
			}
		case c == '&' && refs:
			var ok bool
			if out, i, ok = appendReference(out, raw, i, atEOF); !ok {
				return nil, false
			}
			cr = false
			continue
		default:
			out = append(out, c)
		}
		cr = false
		i++
	}
	s.scratch = out
	return out, true
}

// appendReference appends what the reference at raw[i] (an '&') stands
// for, and returns the index after it. raw ends where the text ends: at a
// '<' or a quote, neither of which continues a reference, or at the end of
// the input (atEOF), where encoding/xml fails.
func appendReference(out, raw []byte, i int, atEOF bool) ([]byte, int, bool) {
	j := i + 1
	if j < len(raw) && raw[j] == '#' {
		// A character reference, &#NNN; or &#xHHH;.
		k := j + 1
		base := uint32(10)
		if k < len(raw) && raw[k] == 'x' {
			base = 16
			k++
		}
		digits := k
		var n uint32
		large := false
		for ; k < len(raw); k++ {
			d := digitValue(raw[k])
			if d >= base {
				break
			}
			if n = n*base + d; n > utf8.MaxRune {
				large = true
				n = utf8.MaxRune + 1 // no overflow
			}
		}
		switch {
		case k == len(raw) && atEOF:
			return nil, 0, false
		case k == len(raw) || raw[k] != ';':
			return append(out, raw[i:k]...), k, true
		case k == digits || large:
			return append(out, raw[i:k+1]...), k + 1, true
		}
		r := rune(n)
		if !utf8.ValidRune(r) {
			r = utf8.RuneError // a surrogate, as string(rune(n)) makes it
		}
		if !xmlChar(r) {
			return nil, 0, false
		}
		return utf8.AppendRune(out, r), k + 1, true
	}
	k := j
	for k < len(raw) && nameByte[raw[k]] {
		k++
	}
	switch {
	case k < len(raw) && raw[k] >= utf8.RuneSelf:
		return nil, 0, false
	case k == len(raw) && atEOF:
		return nil, 0, false
	case k == len(raw) || raw[k] != ';':
		return append(out, raw[i:k]...), k, true
	}
	if text, ok := entityText(raw[j:k]); ok {
		return append(out, text...), k + 1, true
	}
	return append(out, raw[i:k+1]...), k + 1, true
}

// digitValue is the value of a hexadecimal digit, 16 or more for other
// bytes.
func digitValue(c byte) uint32 {
	switch {
	case '0' <= c && c <= '9':
		return uint32(c - '0')
	case 'a' <= c && c <= 'f':
		return uint32(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return uint32(c-'A') + 10
	}
	return 16
}

// entityText returns the text of a named entity: one of the five that XML
// predefines (XML 1.0 §4.6), or one of HTML's.
func entityText(name []byte) (string, bool) {
	if len(name) == 0 || !nameStart[name[0]] {
		return "", false
	}
	switch string(name) {
	case "lt":
		return "<", true
	case "gt":
		return ">", true
	case "amp":
		return "&", true
	case "apos":
		return "'", true
	case "quot":
		return `"`, true
	}
	text, ok := xml.HTMLEntity[string(name)]
	return text, ok
}

// xmlChar says whether XML 1.0 §2.2 allows the character.
func xmlChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		0x20 <= r && r <= 0xD7FF || 0xE000 <= r && r <= 0xFFFD || 0x10000 <= r && r <= utf8.MaxRune
}

// vocabulary holds the names of the elements and attributes of reports
// (RFC 7489 Appendix C, RFC 9990 §3) and the common namespace prefixes:
// the scanner gives these as shared strings instead of making new ones.
var vocabulary = [...]string{
	"feedback", "version", "report_metadata", "org_name", "email", "extra_contact_info",
	"report_id", "date_range", "begin", "end", "error", "generator",
	"policy_published", "domain", "adkim", "aspf", "p", "sp", "np", "pct", "fo", "testing",
	"discovery_method", "record", "row", "source_ip", "count", "policy_evaluated",
	"disposition", "dkim", "spf", "reason", "type", "comment", "identifiers", "identities",
	"header_from", "envelope_from", "envelope_to", "auth_results", "selector", "result",
	"human_result", "scope", "extension", "extensions",
	"xmlns", "xsi", "xs", "xsd", "schemaLocation", "noNamespaceSchemaLocation",
}

// internSlots is the size of the table of the vocabulary, a power of two
// several times its length so that a lookup rarely probes more than once.
const internSlots = 256

var internTable [internSlots]string

func init() {
	for _, w := range vocabulary {
		h := internHash([]byte(w))
		for internTable[h] != "" {
			h = (h + 1) % internSlots
		}
		internTable[h] = w
	}
}

func internHash(b []byte) uint {
	n := uint(len(b))
	return (n*31 + uint(b[0])*7 + uint(b[n/2])*3 + uint(b[n-1])) % internSlots
}

// intern returns b as a string: the vocabulary's, or a new one.
func intern(b []byte) string {
	for h := internHash(b); internTable[h] != ""; h = (h + 1) % internSlots {
		if internTable[h] == string(b) {
			return internTable[h]
		}
	}
	return string(b)
}
