package aggregate

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
)

// A tokenKind says what a token is.
type tokenKind uint8

const (
	tokOther tokenKind = iota // a comment, processing instruction or directive: passed over
	tokStart                  // a start tag
	tokEnd                    // an end tag
	tokText                   // character data
)

// A token is what the decoder reads next from the document, as
// encoding/xml's RawToken returns it: names with their prefixes, not
// resolved; an empty element as a start and an end tag; text with its
// references replaced and its line ends made LF.
type token struct {
	kind tokenKind
	name xml.Name   // of a tag
	attr []xml.Attr // of a start tag; it may be kept
	text []byte     // of text; valid until the next token
}

// element returns the start tag, which the caller may keep.
func (t *token) element() xml.StartElement {
	return xml.StartElement{Name: t.name, Attr: t.attr}
}

// newXMLDecoder returns encoding/xml's decoder over in.
func (d *Decoder) newXMLDecoder(in *input) *xml.Decoder {
	xd := xml.NewDecoder(in)
	// Not strict: an '&' that starts no entity is kept as text instead
	// of failing the report ("AT&T"); HTML entity names are decoded.
	// Nesting is checked by token, which reads RawToken.
	xd.Strict = false
	xd.Entity = xml.HTMLEntity
	xd.CharsetReader = d.charsetReader
	return xd
}

// token returns the next XML token. It checks that elements nest properly
// and not too deeply, keeps track of namespace declarations, and limits
// the input of one token to MaxTokenBytes. A clean end of input is io.EOF,
// open elements or not; the callers decide what that means where they are.
// The token is read into t, which the caller keeps on its stack and
// reuses: a token copied about, or kept in the Decoder on the heap, costs
// more than all the scanning (and on the heap, a write barrier for each of
// its pointers while the garbage collector runs). Only the fields of its
// kind are set. Its text is valid until the next call.
func (d *Decoder) token(t *token) error {
	if s := d.fast; s != nil {
		var open *xml.Name
		if len(d.stack) > 0 {
			open = &d.stack[len(d.stack)-1]
		}
		err := s.next(t, open)
		if err == errHandOver {
			d.handOver()
			err = d.xmlToken(t)
		}
		if err != nil {
			return err
		}
	} else if err := d.xmlToken(t); err != nil {
		return err
	}
	switch t.kind {
	case tokStart:
		if len(d.stack) >= MaxElementDepth {
			return fmt.Errorf("line %d: elements nested more than %d deep (MaxElementDepth)", d.line(), MaxElementDepth)
		}
		d.stack = append(d.stack, t.name)
		declared := 0
		for _, a := range t.attr {
			if declared == maxNamespacesPerElement {
				break
			}
			switch {
			case a.Name.Space == "xmlns":
				d.ns = append(d.ns, nsBinding{a.Name.Local, a.Value, len(d.stack)})
				declared++
			case a.Name.Space == "" && a.Name.Local == "xmlns":
				d.ns = append(d.ns, nsBinding{"", a.Value, len(d.stack)})
				declared++
			}
		}
	case tokEnd:
		if len(d.stack) == 0 {
			return fmt.Errorf("line %d: end tag </%s> without a start tag", d.line(), qname(t.name))
		}
		if top := d.stack[len(d.stack)-1]; top != t.name {
			return fmt.Errorf("line %d: element <%s> closed by </%s>", d.line(), qname(top), qname(t.name))
		}
		for len(d.ns) > 0 && d.ns[len(d.ns)-1].depth == len(d.stack) {
			d.ns = d.ns[:len(d.ns)-1]
		}
		d.stack = d.stack[:len(d.stack)-1]
	}
	return nil
}

// handOver lets encoding/xml read on from the token at which the scanner
// stopped: the input gives it the bytes from there, as if it had read all
// before. Line numbers go on from the scanner's.
func (d *Decoder) handOver() {
	s := d.fast
	d.fast = nil
	d.fallback = s.reason
	countFallback(s.reason)
	d.lineBase = s.line() - 1
	if s.afterText {
		// encoding/xml would have read the '<' of this token with
		// the text before it, and not counted it here.
		d.credit = 1
	}
	in := d.first
	in.out, in.pos = s.buf[s.pos:], 0
	in.n = s.offset()
	d.xd = d.newXMLDecoder(in)
}

// xmlToken reads the next token with encoding/xml.
func (d *Decoder) xmlToken(t *token) error {
	d.in.limit = d.in.n + MaxTokenBytes + d.credit
	d.credit = 0
	tok, err := d.xd.RawToken()
	if err != nil {
		if err == io.EOF {
			return io.EOF
		}
		if errors.Is(err, errTokenTooLong) {
			return fmt.Errorf("line %d: %w", d.line(), err)
		}
		if se, ok := err.(*xml.SyntaxError); ok && d.lineBase > 0 {
			// A copy: xd returns the same error again.
			return &xml.SyntaxError{Msg: se.Msg, Line: se.Line + d.lineBase}
		}
		return err
	}
	switch x := tok.(type) {
	case xml.StartElement:
		t.kind, t.name, t.attr = tokStart, x.Name, x.Attr
	case xml.EndElement:
		t.kind, t.name = tokEnd, x.Name
	case xml.CharData:
		t.kind, t.text = tokText, x
	default:
		t.kind = tokOther
	}
	return nil
}

// line returns the line of the document at which the token read last
// ends.
func (d *Decoder) line() int {
	if d.fast != nil {
		return d.fast.line()
	}
	line, _ := d.xd.InputPos()
	return line + d.lineBase
}
