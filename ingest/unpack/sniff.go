package unpack

import (
	"bytes"
	"regexp"
)

type contentKind int

const (
	kindUnknown contentKind = iota
	kindEmpty
	kindGzip
	kindZip
	kindXML
	kindJSON
	kindMail
)

var (
	magicGzip = []byte{0x1f, 0x8b}
	magicZip  = []byte("PK\x03\x04")
	// An empty zip archive is only an end-of-central-directory record.
	magicZipEmpty = []byte("PK\x05\x06")
	bomUTF8       = []byte{0xef, 0xbb, 0xbf}
	// A mail header line: a field name (RFC 5322 §3.6.8, printable ASCII
	// without colon) and a colon.
	headerLine = regexp.MustCompile(`^[!-9;-~]+[ \t]*:`)
)

// sniff tells what head, the first bytes of a stream, starts.
func sniff(head []byte) contentKind {
	switch {
	case bytes.HasPrefix(head, magicGzip):
		return kindGzip
	case bytes.HasPrefix(head, magicZip), bytes.HasPrefix(head, magicZipEmpty):
		return kindZip
	}
	t := bytes.TrimPrefix(head, bomUTF8)
	t = bytes.TrimLeft(t, " \t\r\n")
	switch {
	case len(t) == 0:
		return kindEmpty
	case isReportXML(t):
		return kindXML
	case t[0] == '{':
		return kindJSON
	case looksLikeMail(t):
		return kindMail
	}
	return kindUnknown
}

// looksLikeMail says whether head starts with RFC 5322 header fields: the
// first line is a field (or an mbox "From " line) and a known field name
// appears before the first empty line.
func looksLikeMail(head []byte) bool {
	line, _, _ := bytes.Cut(head, []byte("\n"))
	if !headerLine.Match(line) && !bytes.HasPrefix(line, []byte("From ")) {
		return false
	}
	hdr := head
	if i := bytes.Index(head, []byte("\n\n")); i >= 0 {
		hdr = head[:i]
	} else if i := bytes.Index(head, []byte("\r\n\r\n")); i >= 0 {
		hdr = head[:i]
	}
	lower := bytes.ToLower(hdr)
	for _, f := range []string{"content-type:", "mime-version:", "from:", "received:", "return-path:", "subject:", "date:", "message-id:", "delivered-to:", "to:"} {
		if bytes.HasPrefix(lower, []byte(f)) || bytes.Contains(lower, []byte("\n"+f)) {
			return true
		}
	}
	// The sniffed head may end inside a long first header; one valid
	// header line followed by others is enough.
	return len(hdr) == len(head) && headerLine.Match(line)
}

// isReportXML tells XML that may be a report: an XML declaration, or a
// feedback element (with any namespace prefix) near the start. Other markup,
// such as the HTML part of a report mail, is not.
func isReportXML(t []byte) bool {
	if len(t) == 0 || t[0] != '<' {
		return false
	}
	if bytes.HasPrefix(t, []byte("<?xml")) {
		return true
	}
	return feedbackStart.Match(t)
}

// feedbackStart matches a feedback start tag after comments, processing
// instructions or a DOCTYPE.
var feedbackStart = regexp.MustCompile(`^(?:\s*<[?!][^>]*>)*\s*<(?:[A-Za-z_][\w.-]*:)?feedback[\s>/]`)
