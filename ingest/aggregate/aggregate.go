package aggregate

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/dmarcd/dmarcd"
)

// Limits. Each bounds the memory or the work that one report can demand of
// the decoder; a report that exceeds one gives an error naming it, except
// where the doc comment says that the excess is skipped.
const (
	// MaxRecordsPerReport is the number of <record> elements read from one
	// report. It bounds the work; memory does not grow with the records.
	MaxRecordsPerReport = 10_000_000 // records per report

	// MaxElementDepth is how deeply elements may nest, the document
	// element being at depth 1 (an extension may nest further than the
	// schema does).
	MaxElementDepth = 64 // levels of nested elements

	// MaxTextBytes is the text of one element, after entities are decoded.
	MaxTextBytes = 64 << 10 // bytes of text in one element

	// MaxTokenBytes is the input that makes up one XML token: a tag with
	// its attributes, a run of text, a comment. encoding/xml holds a whole
	// token in memory; this bounds it.
	MaxTokenBytes = 256 << 10 // bytes of input in one XML token

	// MaxRecordBytes is the text kept from one <record>: its values and
	// extensions together.
	MaxRecordBytes = 1 << 20 // bytes of text in one record

	// MaxRecordsBeforeHeader is the number of records held in memory when
	// they come before <report_metadata> or <policy_published> (the header
	// must be complete before the first record is handed out).
	MaxRecordsBeforeHeader = 10_000 // records buffered before the header

	// MaxBufferedBytes bounds the same records by size, each counted as its
	// text plus recordOverheadBytes.
	MaxBufferedBytes = 16 << 20 // bytes of records buffered before the header

	// MaxRepeats is how many elements of one repeatable kind are kept in
	// one parent: <dkim> and <spf> results and <reason>s of a record,
	// <error>s of the metadata, <extension>s of the report or a record.
	// The excess is skipped and noted as the toleration "excess:<name>".
	MaxRepeats = 100 // elements of one name kept per parent

	// MaxExtensionBytes is the XML text kept of one <extension> (or of an
	// unknown element of a record, RFC 9990 §3 RecordType's xs:any). A
	// larger one is skipped and noted as "oversized:extension".
	MaxExtensionBytes = 64 << 10 // bytes of XML text per extension

	// MaxTolerations is the number of distinct toleration codes recorded
	// for one report; after it, "more-tolerations" ends the list.
	MaxTolerations = 64 // distinct codes per report
)

// recordOverheadBytes is what a Record costs beyond its text, for
// MaxBufferedBytes.
const recordOverheadBytes = 512

// maxTrailingTokens is how many tokens after </feedback> are read to see
// whether the document ends cleanly.
const maxTrailingTokens = 100

// maxNamespacesPerElement bounds the namespace declarations of one element
// that are kept; they serve to make extensions stand on their own.
const maxNamespacesPerElement = 16

// maxCodeNameBytes bounds an element or charset name copied from the
// document into a toleration code.
const maxCodeNameBytes = 40

// ErrNotAggregateReport is the error (wrapped) for a document that is not
// an aggregate report at all: empty, plain text, or XML whose root element
// is not <feedback> (nor holds a <feedback> first).
var ErrNotAggregateReport = errors.New("not a DMARC aggregate report")

// Namespaces of <feedback> that are expected; another is noted as the
// toleration "unknown-namespace".
var knownNamespaces = map[string]bool{
	"":                                 true, // RFC 7489 Appendix C reports as sent
	"urn:ietf:params:xml:ns:dmarc-2.0": true, // RFC 9990 §3
	"http://dmarc.org/dmarc-xml/0.1":   true, // RFC 7489 Appendix C targetNamespace
	"http://dmarc.org/dmarc-xml/0.2":   true, // DMARCbis drafts
}

// A Decoder reads one aggregate report from an input stream.
type Decoder struct {
	src io.Reader

	// The scanner reads the document while it can (fast); encoding/xml
	// (xd) reads what it leaves, or all of a document in a charset that
	// is converted (see scanner.go).
	fast      *scanner
	xd        *xml.Decoder
	fallback  string // why xd reads, FallbackCharset, ...
	lineBase  int    // the lines before the point where xd took over
	credit    int64  // the bytes of the next token that xd read already (see handOver)
	reference bool   // xd reads all: the reference for tests of the scanner

	first     *input // the input over src
	in        *input // the input encoding/xml reads now (first, or a charset decoder's)
	utf8Input bool   // first gives UTF-8, not bytes of a declared charset
	sniffed   string // the charset sniff found: declared, or UTF-16's

	report dmarcd.AggregateReport
	tols   map[string]bool

	// Open elements and the namespace declarations in effect.
	stack []xml.Name
	ns    []nsBinding

	started       bool
	headerDone    bool
	feedbackEnded bool
	truncated     bool // the document ended before </feedback>
	finished      bool
	err           error

	metaSeen, policySeen bool
	wrapper              string // the root element around <feedback>, if any

	// Records read before the header was complete, and the first record
	// after it.
	pending      []*dmarcd.Record
	pendingBytes int

	// The records and messages read, returned or not.
	records, messages int64

	inRecord    bool
	recordBytes int

	textBuf []byte
	extBuf  []byte
	values  valueCache
}

type nsBinding struct {
	prefix, uri string
	depth       int // len(Decoder.stack) of the element that declares it
}

// NewDecoder returns a decoder reading an aggregate report, as XML, from r.
// It reads nothing before Header or Next is called.
func NewDecoder(r io.Reader) *Decoder {
	return &Decoder{src: r, tols: map[string]bool{}}
}

// Header reads the report up to its first <record> and returns the report
// header: the version, metadata, published policy, and what was tolerated
// so far. Where a report puts records before <report_metadata> or
// <policy_published>, those records are read and held (at most
// MaxRecordsBeforeHeader, MaxBufferedBytes) until the header is complete;
// Next returns them first.
//
// The counts (RecordCount, MessageCount) are those of the records Next
// has returned, none yet; Report returns the complete header after Next
// returned io.EOF. Header returns a copy: later reading does not change it.
// After an error, Header returns the same error again.
func (d *Decoder) Header() (*dmarcd.AggregateReport, error) {
	if !d.headerDone && d.err == nil {
		if err := d.readHeader(); err != nil {
			d.fail(err)
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	return d.snapshot(), nil
}

// Next returns the next record of the report, or io.EOF after the last.
// Each record is newly allocated: the caller may keep it. Next calls Header
// first if it was not called. After an error, Next returns the same error
// again.
func (d *Decoder) Next() (*dmarcd.Record, error) {
	if !d.headerDone && d.err == nil {
		if _, err := d.Header(); err != nil {
			return nil, err
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.pending) > 0 {
		r := d.pending[0]
		d.pending[0] = nil
		d.pending = d.pending[1:]
		return d.hand(r), nil
	}
	for {
		el, ok, err := d.feedbackChild()
		if err != nil {
			d.fail(err)
			return nil, d.err
		}
		if !ok {
			d.finish()
			return nil, io.EOF
		}
		if local(el) == "record" {
			rec, err := d.record(el)
			if err != nil {
				d.fail(err)
				return nil, d.err
			}
			return d.hand(rec), nil
		}
		if err := d.feedbackElement(el); err != nil {
			d.fail(err)
			return nil, d.err
		}
	}
}

// Report returns the report header as it stands: after Next returned
// io.EOF, complete with RecordCount, MessageCount, all Tolerations and
// extensions that came after the records. It returns a copy.
func (d *Decoder) Report() *dmarcd.AggregateReport {
	return d.snapshot()
}

// Parse reads a whole report: its header, as Report returns it, and all
// records. It is for tests and for callers whose reports are small; a
// daemon should use a Decoder and store records as they come. On an error
// it returns only the error.
func Parse(r io.Reader) (*dmarcd.AggregateReport, []dmarcd.Record, error) {
	d := NewDecoder(r)
	if _, err := d.Header(); err != nil {
		return nil, nil, err
	}
	var records []dmarcd.Record
	for {
		rec, err := d.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		records = append(records, *rec)
	}
	return d.Report(), records, nil
}

func (d *Decoder) fail(err error) {
	d.err = fmt.Errorf("parsing aggregate report: %w", err)
}

// snapshot copies the report, so that the caller's copy does not change as
// decoding goes on.
func (d *Decoder) snapshot() *dmarcd.AggregateReport {
	d.noteInput()
	r := d.report
	r.Metadata.Errors = clone(r.Metadata.Errors)
	r.Extensions = clone(r.Extensions)
	r.Tolerations = clone(r.Tolerations)
	return &r
}

func clone(s []string) []string {
	if s == nil {
		return nil
	}
	return append([]string(nil), s...)
}

// tolerate records a toleration code once.
func (d *Decoder) tolerate(code string) {
	if d.tols[code] {
		return
	}
	if len(d.report.Tolerations) >= MaxTolerations {
		if !d.tols["more-tolerations"] {
			d.tols["more-tolerations"] = true
			d.report.Tolerations = append(d.report.Tolerations, "more-tolerations")
		}
		return
	}
	d.tols[code] = true
	d.report.Tolerations = append(d.report.Tolerations, code)
}

// tolerate2 records prefix+name, where name is one of the element names the
// decoder knows (so the set of codes stays small), without allocating when
// the code was recorded already.
func (d *Decoder) tolerate2(prefix, name string) {
	if d.tols[prefix+name] {
		return
	}
	d.tolerate(prefix + name)
}

// noteInput records what the inputs replaced or let through in the part
// of the document read so far.
func (d *Decoder) noteInput() {
	if d.fast != nil {
		d.first.n = d.fast.offset()
	}
	for _, in := range []*input{d.first, d.in} {
		if in == nil {
			continue
		}
		if in.seen(in.invalidUTF8At) {
			d.tolerate("invalid-utf8")
		}
		if in.seen(in.invalidCharAt) {
			d.tolerate("invalid-xml-char")
		}
		if in.seen(in.bareAmpAt) {
			d.tolerate("bare-ampersand")
		}
		if in.seen(in.htmlEntityAt) {
			d.tolerate("html-entity")
		}
	}
}

// start sets up the XML decoder.
func (d *Decoder) start() {
	d.started = true
	src, utf8Input, sniffed := sniff(d.src, d.tolerate)
	d.utf8Input, d.sniffed = utf8Input, sniffed
	d.first = newInput(src, utf8Input)
	// Bytes of another charset are checked once converted, by the
	// input that charsetReader stacks on this one.
	d.first.scanAmp = utf8Input
	d.in = d.first
	if !utf8Input {
		d.fallback = FallbackCharset
		countFallback(d.fallback)
	}
	if d.fallback != "" || d.reference {
		d.xd = d.newXMLDecoder(d.first)
		return
	}
	d.fast = newScanner(d.first, d.ignoreCharset)
}

// ignoreCharset takes an XML declaration that names a charset other than
// UTF-8 over input that is UTF-8 already: converted from UTF-16, or UTF-8
// under an 8-bit label (both noted by sniff), or a declaration that sniff
// did not see, not at the start of the document.
func (d *Decoder) ignoreCharset(label string) {
	label = strings.ToLower(label)
	switch {
	case label == d.sniffed, label == "utf8", label == "us-ascii", label == "ascii":
	case d.sniffed == "utf-16" && (label == "utf16" || label == "utf-16le" || label == "utf-16be"):
	default:
		d.tolerate("charset-ignored")
	}
}

// charsetReader converts a document whose XML declaration names an 8-bit
// charset (XML 1.0 §4.3.3) to UTF-8.
func (d *Decoder) charsetReader(label string, r io.Reader) (io.Reader, error) {
	if d.in != d.first || d.utf8Input {
		d.ignoreCharset(label)
		return r, nil
	}
	label = strings.ToLower(label)
	enc, ok := charsets[label]
	if !ok {
		known := strings.Join(slices.Sorted(maps.Keys(charsets)), ", ")
		return nil, fmt.Errorf("%w %q (known: UTF-8, UTF-16, %s)", errUnsupportedCharset, truncate(label), known)
	}
	d.tolerate("charset:" + label)
	d.in = newInput(enc.NewDecoder().Reader(r), true)
	return d.in, nil
}

// lookupNS returns the namespace bound to prefix by the elements open at
// depth maxDepth and above.
func (d *Decoder) lookupNS(prefix string, maxDepth int) (string, bool) {
	for i := len(d.ns) - 1; i >= 0; i-- {
		if b := d.ns[i]; b.depth <= maxDepth && b.prefix == prefix {
			return b.uri, true
		}
	}
	return "", false
}

// unexpectedEOF is the error for the end of the document inside an element
// other than <feedback>.
func (d *Decoder) unexpectedEOF() error {
	if len(d.stack) == 0 {
		return io.ErrUnexpectedEOF
	}
	return fmt.Errorf("document ends inside <%s>", qname(d.stack[len(d.stack)-1]))
}

// isTruncation says whether err is encoding/xml's report of a document
// that ends within a tag or comment.
func isTruncation(err error) bool {
	var se *xml.SyntaxError
	return errors.As(err, &se) && strings.HasPrefix(se.Msg, "unexpected EOF")
}

// readHeader reads up to the first record that follows a complete header,
// or to the end of the report.
func (d *Decoder) readHeader() error {
	if !d.started {
		d.start()
	}
	if err := d.findFeedback(); err != nil {
		return err
	}
	for {
		el, ok, err := d.feedbackChild()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		if local(el) != "record" {
			if err := d.feedbackElement(el); err != nil {
				return err
			}
			continue
		}
		rec, err := d.record(el)
		if err != nil {
			return err
		}
		if d.metaSeen && d.policySeen {
			d.pending = append(d.pending, rec)
			break
		}
		// RFC 9990 §3 (the feedback element's xs:sequence) puts the
		// records last; some reporters do not.
		d.tolerate("records-before-header")
		if len(d.pending) >= MaxRecordsBeforeHeader {
			return fmt.Errorf("more than %d records before <report_metadata> and <policy_published> (MaxRecordsBeforeHeader)", MaxRecordsBeforeHeader)
		}
		d.pendingBytes += d.recordBytes + recordOverheadBytes
		if d.pendingBytes > MaxBufferedBytes {
			return fmt.Errorf("more than %d bytes of records before <report_metadata> and <policy_published> (MaxBufferedBytes)", MaxBufferedBytes)
		}
		d.pending = append(d.pending, rec)
	}
	d.headerDone = true
	return d.checkHeader()
}

// checkHeader reports a header without the parts an aggregate report cannot
// do without (RFC 9990 §3: report_metadata and policy_published are
// required; their required parts are checked where they are read).
func (d *Decoder) checkHeader() error {
	end := ""
	if d.truncated {
		end = " (the document ends early)"
	}
	if !d.metaSeen {
		return fmt.Errorf("missing <report_metadata>%s", end)
	}
	if !d.policySeen {
		return fmt.Errorf("missing <policy_published>%s", end)
	}
	return nil
}

// findFeedback reads up to the start of <feedback>: the document element,
// or the first child of the document element (a reporter that wrapped the
// report in an <xs:schema>).
func (d *Decoder) findFeedback() error {
	empty := true
	var tok token
	for {
		err := d.token(&tok)
		if err == io.EOF {
			if empty {
				return fmt.Errorf("%w: empty document", ErrNotAggregateReport)
			}
			if d.wrapper != "" {
				return fmt.Errorf("%w: root element <%s> holds no <feedback>", ErrNotAggregateReport, d.wrapper)
			}
			return fmt.Errorf("%w: no XML element", ErrNotAggregateReport)
		}
		if err != nil {
			// Bytes that are not XML at all; but a read error is one.
			var syntax *xml.SyntaxError
			if errors.As(err, &syntax) && (empty || isTruncation(err)) {
				return fmt.Errorf("%w: %v", ErrNotAggregateReport, err)
			}
			return err
		}
		empty = false
		switch tok.kind {
		case tokText:
			if !isSpace(tok.text) {
				if d.wrapper != "" {
					return fmt.Errorf("%w: root element <%s> holds text before any <feedback>", ErrNotAggregateReport, d.wrapper)
				}
				return fmt.Errorf("%w: text before the first XML element", ErrNotAggregateReport)
			}
		case tokStart:
			if tok.name.Local == "feedback" {
				d.enterFeedback(tok.element())
				return nil
			}
			if len(d.stack) == 1 {
				d.wrapper = truncate(qname(tok.name))
				continue
			}
			return fmt.Errorf("%w: root element <%s>, not <feedback>", ErrNotAggregateReport, d.wrapper)
		case tokEnd:
			return fmt.Errorf("%w: root element <%s> holds no <feedback>", ErrNotAggregateReport, d.wrapper)
		}
	}
}

func (d *Decoder) enterFeedback(t xml.StartElement) {
	if d.wrapper != "" {
		d.tolerate("wrapper:" + d.wrapper)
	}
	ns, _ := d.lookupNS(t.Name.Space, len(d.stack))
	if t.Name.Space != "" && ns == "" {
		ns = t.Name.Space // an undeclared prefix
	}
	d.report.Namespace = ns
	if !knownNamespaces[ns] {
		d.tolerate("unknown-namespace")
	}
}

// feedbackChild returns the next child element of <feedback>, or false at
// the end of <feedback>. A document that ends between two children of
// <feedback>, without </feedback>, is tolerated: all it held was read.
func (d *Decoder) feedbackChild() (xml.StartElement, bool, error) {
	var tok token
	for !d.feedbackEnded {
		err := d.token(&tok)
		if err != nil {
			if err != io.EOF && !isTruncation(err) {
				return xml.StartElement{}, false, err
			}
			d.feedbackEnded = true
			d.truncated = true
			if err == io.EOF {
				for i := len(d.stack) - 1; i >= 0; i-- {
					d.tolerate("unclosed:" + truncate(qname(d.stack[i])))
				}
			} else {
				d.tolerate("truncated")
			}
			break
		}
		switch tok.kind {
		case tokStart:
			return tok.element(), true, nil
		case tokEnd:
			d.feedbackEnded = true
			d.readTrailer()
		case tokText:
			if !isSpace(tok.text) {
				d.tolerate("text-in:feedback")
			}
		}
	}
	return xml.StartElement{}, false, nil
}

// readTrailer reads what follows </feedback>: the end of a wrapper element,
// comments, whitespace. Anything else is noted and not read.
func (d *Decoder) readTrailer() {
	var tok token
	for range maxTrailingTokens {
		err := d.token(&tok)
		if err == io.EOF {
			for i := len(d.stack) - 1; i >= 0; i-- {
				d.tolerate("unclosed:" + truncate(qname(d.stack[i])))
			}
			return
		}
		if err != nil {
			d.tolerate("trailing-data")
			return
		}
		switch tok.kind {
		case tokText:
			if !isSpace(tok.text) {
				d.tolerate("trailing-data")
				return
			}
		case tokStart:
			d.tolerate("trailing-data")
			return
		}
	}
}

// finish completes the report after the last record.
func (d *Decoder) finish() {
	if d.finished {
		return
	}
	d.finished = true
	if d.records == 0 {
		// RFC 9990 §3: record has minOccurs 1.
		d.tolerate("missing:record")
	}
}

// feedbackElement reads a child of <feedback> other than <record>.
func (d *Decoder) feedbackElement(el xml.StartElement) error {
	switch local(el) {
	case "version":
		v, err := d.str(el)
		d.report.Version = v
		return err
	case "report_metadata":
		if d.metaSeen {
			d.tolerate("duplicate:report_metadata")
			return d.skip()
		}
		d.metaSeen = true
		if err := d.metadata(); err != nil {
			return fmt.Errorf("<report_metadata>: %w", err)
		}
		return nil
	case "policy_published":
		if d.policySeen {
			d.tolerate("duplicate:policy_published")
			return d.skip()
		}
		d.policySeen = true
		if err := d.policy(); err != nil {
			return fmt.Errorf("<policy_published>: %w", err)
		}
		return nil
	case "extension":
		return d.keepExtension(&d.report.Extensions, el)
	case "extensions":
		// A draft's wrapper around several <extension>s.
		return d.extensions(&d.report.Extensions)
	}
	return d.unknown(el)
}

// hand counts a record that Next hands out.
func (d *Decoder) hand(rec *dmarcd.Record) *dmarcd.Record {
	d.report.RecordCount++
	d.report.MessageCount += rec.Count
	return rec
}

// record reads one <record>.
func (d *Decoder) record(el xml.StartElement) (*dmarcd.Record, error) {
	n := d.records + 1
	if n > MaxRecordsPerReport {
		return nil, fmt.Errorf("more than %d records (MaxRecordsPerReport)", MaxRecordsPerReport)
	}
	line := d.line()
	d.inRecord = true
	d.recordBytes = 0
	rec, err := d.parseRecord()
	d.inRecord = false
	if err != nil {
		return nil, fmt.Errorf("<record> %d (line %d): %w", n, line, err)
	}
	if rec.Count > math.MaxInt64-d.messages {
		return nil, fmt.Errorf("<record> %d (line %d): the message count of the report exceeds %d", n, line, int64(math.MaxInt64))
	}
	d.records = n
	d.messages += rec.Count
	return rec, nil
}

// child returns the next child element of the element being read, or false
// at its end.
func (d *Decoder) child(parent string) (xml.StartElement, bool, error) {
	var tok token
	for {
		err := d.token(&tok)
		if err != nil {
			if err == io.EOF {
				err = d.unexpectedEOF()
			}
			return xml.StartElement{}, false, err
		}
		switch tok.kind {
		case tokStart:
			return tok.element(), true, nil
		case tokEnd:
			return xml.StartElement{}, false, nil
		case tokText:
			if !isSpace(tok.text) {
				d.tolerate2("text-in:", parent)
			}
		}
	}
}

// skip reads past the end of the element just started.
func (d *Decoder) skip() error {
	depth := len(d.stack)
	var tok token
	for len(d.stack) >= depth {
		if err := d.token(&tok); err != nil {
			if err == io.EOF {
				err = d.unexpectedEOF()
			}
			return err
		}
	}
	return nil
}

// unknown skips an element that the schema does not have there.
func (d *Decoder) unknown(el xml.StartElement) error {
	d.tolerate("unknown:" + truncate(qname(el.Name)))
	return d.skip()
}

// text reads the text of the element just started, without surrounding
// whitespace. The result is valid until the next call.
func (d *Decoder) text(el xml.StartElement) ([]byte, error) {
	buf := d.textBuf[:0]
	var tok token
	for {
		err := d.token(&tok)
		if err != nil {
			if err == io.EOF {
				err = d.unexpectedEOF()
			}
			return nil, fmt.Errorf("%s: %w", local(el), err)
		}
		switch tok.kind {
		case tokText:
			if len(buf)+len(tok.text) > MaxTextBytes {
				return nil, fmt.Errorf("%s: text longer than %d bytes (MaxTextBytes)", local(el), MaxTextBytes)
			}
			buf = append(buf, tok.text...)
		case tokStart:
			d.tolerate2("child-in:", local(el))
			if err := d.skip(); err != nil {
				return nil, fmt.Errorf("%s: %w", local(el), err)
			}
		case tokEnd:
			if cap(buf) > cap(d.textBuf) {
				d.textBuf = buf
			}
			v := trimSpace(buf)
			if len(v) != len(buf) && len(v) > 0 {
				d.tolerate2("ws-in:", local(el))
			}
			return v, nil
		}
	}
}

// str reads the text of the element just started as a string.
func (d *Decoder) str(el xml.StartElement) (string, error) {
	v, err := d.text(el)
	if err != nil {
		return "", err
	}
	if err := d.account(len(v)); err != nil {
		return "", err
	}
	return d.values.string(v), nil
}

// account counts n bytes of text kept in the record being read.
func (d *Decoder) account(n int) error {
	if !d.inRecord {
		return nil
	}
	d.recordBytes += n
	if d.recordBytes > MaxRecordBytes {
		return fmt.Errorf("more than %d bytes of text (MaxRecordBytes)", MaxRecordBytes)
	}
	return nil
}

func local(el xml.StartElement) string { return el.Name.Local }

// qname is the name as written: prefix:local.
func qname(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return n.Space + ":" + n.Local
}

// truncate shortens a name from the document for a message or code.
func truncate(s string) string {
	if len(s) > maxCodeNameBytes {
		return s[:maxCodeNameBytes] + "..."
	}
	return s
}

func isSpace(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}

// trimSpace removes XML whitespace (XML 1.0 §2.3 S) around b.
func trimSpace(b []byte) []byte {
	i, j := 0, len(b)
	for i < j && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	for j > i && (b[j-1] == ' ' || b[j-1] == '\t' || b[j-1] == '\n' || b[j-1] == '\r') {
		j--
	}
	return b[i:j]
}
