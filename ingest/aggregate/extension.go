package aggregate

import (
	"encoding/xml"
	"io"
	"maps"
	"slices"
)

// keepExtension reads the element just started, an <extension> (RFC 9990
// §3.1.4) or an unknown element of a record, and appends it to exts as XML
// text. Comments and processing instructions are left out; namespace
// prefixes that it uses but that an ancestor declares are declared on it,
// so that the text stands on its own. An element larger than
// MaxExtensionBytes, or beyond MaxRepeats of them, is skipped and noted.
func (d *Decoder) keepExtension(exts *[]string, el xml.StartElement) error {
	if len(*exts) >= MaxRepeats {
		d.tolerate("excess:extension")
		return d.skip()
	}
	s, err := d.captureElement(el)
	if err != nil || s == "" {
		return err
	}
	if err := d.account(len(s)); err != nil {
		return err
	}
	*exts = append(*exts, s)
	return nil
}

// extensions reads <extensions>, a draft's list of <extension> elements.
func (d *Decoder) extensions(exts *[]string) error {
	for {
		el, ok, err := d.child("extensions")
		if err != nil || !ok {
			return err
		}
		if local(el) == "extension" {
			err = d.keepExtension(exts, el)
		} else {
			err = d.unknown(el)
		}
		if err != nil {
			return err
		}
	}
}

// captureElement returns the element just started as XML text, or "" when
// it is larger than MaxExtensionBytes.
func (d *Decoder) captureElement(el xml.StartElement) (string, error) {
	depth := len(d.stack)
	// Namespace prefixes used and declared in el; "" is the default
	// namespace.
	used, declared := map[string]bool{}, map[string]bool{}
	note := func(t xml.StartElement) {
		used[t.Name.Space] = true
		for _, a := range t.Attr {
			switch {
			case a.Name.Space == "xmlns":
				declared[a.Name.Local] = true
			case a.Name.Space == "" && a.Name.Local == "xmlns":
				declared[""] = true
			case a.Name.Space != "":
				used[a.Name.Space] = true
			}
		}
	}
	note(el)
	body := d.extBuf[:0]
	oversized := false
	var tok token
	for {
		err := d.token(&tok)
		if err != nil {
			if err == io.EOF {
				err = d.unexpectedEOF()
			}
			return "", err
		}
		if len(d.stack) < depth {
			break // the end of el
		}
		if oversized {
			continue
		}
		switch tok.kind {
		case tokStart:
			t := tok.element()
			note(t)
			body = appendStartTag(body, t)
			body = append(body, '>')
		case tokEnd:
			body = append(body, "</"...)
			body = append(body, qname(tok.name)...)
			body = append(body, '>')
		case tokText:
			body = appendEscaped(body, tok.text, false)
		}
		if len(body) > MaxExtensionBytes {
			oversized = true
		}
	}
	d.extBuf = body[:0]
	if oversized {
		d.tolerate("oversized:extension")
		return "", nil
	}
	out := appendStartTag(make([]byte, 0, len(body)+128), el)
	for _, prefix := range slices.Sorted(maps.Keys(used)) {
		if prefix == "xml" || declared[prefix] {
			continue
		}
		uri, ok := d.lookupNS(prefix, depth-1)
		if !ok || uri == "" && prefix == "" {
			continue
		}
		if prefix == "" {
			out = append(out, ` xmlns="`...)
		} else {
			out = append(out, ` xmlns:`...)
			out = append(out, prefix...)
			out = append(out, `="`...)
		}
		out = appendEscaped(out, []byte(uri), true)
		out = append(out, '"')
	}
	out = append(out, '>')
	out = append(out, body...)
	out = append(out, "</"...)
	out = append(out, qname(el.Name)...)
	out = append(out, '>')
	return string(out), nil
}

// appendStartTag appends "<name attr=...", without the closing ">".
func appendStartTag(b []byte, t xml.StartElement) []byte {
	b = append(b, '<')
	b = append(b, qname(t.Name)...)
	for _, a := range t.Attr {
		b = append(b, ' ')
		b = append(b, qname(a.Name)...)
		b = append(b, `="`...)
		b = appendEscaped(b, []byte(a.Value), true)
		b = append(b, '"')
	}
	return b
}

// appendEscaped appends text escaped for XML character data or, with attr,
// for a quoted attribute value.
func appendEscaped(b, s []byte, attr bool) []byte {
	for _, c := range s {
		switch {
		case c == '&':
			b = append(b, "&amp;"...)
		case c == '<':
			b = append(b, "&lt;"...)
		case c == '>':
			b = append(b, "&gt;"...)
		case attr && c == '"':
			b = append(b, "&quot;"...)
		case attr && c == '\n':
			b = append(b, "&#xA;"...)
		case attr && c == '\r':
			b = append(b, "&#xD;"...)
		case attr && c == '\t':
			b = append(b, "&#x9;"...)
		case !attr && c == '\r':
			b = append(b, "&#xD;"...)
		default:
			b = append(b, c)
		}
	}
	return b
}
