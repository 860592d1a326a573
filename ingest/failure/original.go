package failure

import (
	"bytes"
	"errors"
	"strings"
)

// originalTypes are the media types of the part that holds the reported
// message (RFC 5965 §2 (d); message/global and message/global-headers of
// RFC 6533 for an internationalized one), with the toleration code for the
// ones no standard defines.
var originalTypes = map[string]string{
	"message/rfc822":         "",
	"text/rfc822-headers":    "",
	"message/global":         "",
	"message/global-headers": "",
	"message/rfc822-headers": "original-type-nonstandard",
	"text/rfc822":            "original-type-nonstandard",
}

// original finds the part with the reported message and reads it. fb is
// the feedback part, nil when there is none. It says whether it found one.
func (p *parser) original(fb *entity) bool {
	m := p.msg
	for _, e := range m.leaves {
		code, ok := originalTypes[e.mediaType]
		if e == fb || !ok {
			continue
		}
		if code != "" {
			p.msg.tol.add(code)
		}
		if strings.HasPrefix(e.mediaType, "message/") && (e.cte == "base64" || e.cte == "quoted-printable") {
			// RFC 2046 §5.2.1: message/rfc822 is 7bit, 8bit or binary.
			p.msg.tol.add("original-encoded")
		}
		p.r.OriginalPartType = e.mediaType
		p.readOriginal(m.decode(e), strings.HasSuffix(e.mediaType, "-headers"))
		return true
	}
	// A text/plain part after the feedback part that holds a header block:
	// the reported message's header, mislabelled.
	after := false
	for _, e := range m.leaves {
		if e == fb {
			after = true
			continue
		}
		if !after || e.mediaType != "text/plain" {
			continue
		}
		if c := m.decode(e); looksLikeHeader(c) {
			p.msg.tol.add("original-as-text")
			p.r.OriginalPartType = e.mediaType
			p.readOriginal(c, true)
			return true
		}
	}
	return false
}

// headerNames are fields of which one, at least, a reported message's header
// holds.
var headerNames = []string{"From", "Received", "Message-ID", "Return-Path", "Subject", "Date", "DKIM-Signature", "Authentication-Results"}

// looksLikeHeader says whether b, after empty lines, starts with a mail
// header block.
func looksLikeHeader(b []byte) bool {
	b = bytes.TrimLeft(b, "\r\n")
	line, _ := cutLine(b)
	if _, _, ok := splitField(line); !ok {
		return false
	}
	hb, _ := readHeader(b, MaxHeaderFields, false)
	if hb.firstBad {
		return false
	}
	for _, n := range headerNames {
		if hb.fields.has(n) {
			return true
		}
	}
	return false
}

// readOriginal reads the reported message, or its header when headersOnly:
// the header block into OriginalHeaders and its main fields, the body only
// when the options ask for it.
func (p *parser) readOriginal(content []byte, headersOnly bool) {
	r := p.r
	if len(content) > 0 && (content[0] == '\n' || content[0] == '\r') {
		if t := bytes.TrimLeft(content, "\r\n"); len(t) > 0 {
			p.msg.tol.add("blank-line-before-original")
			content = t
		}
	}
	blockLen, bodyStart := headerEnd(content)
	block := content[:blockLen]
	if len(block) > MaxOriginalHeaderBytes {
		p.msg.tol.add("original-headers-truncated")
		cut := bytes.LastIndexByte(block[:MaxOriginalHeaderBytes], '\n')
		block = block[:cut+1]
	}
	hb, err := readHeader(block, MaxHeaderFields, false)
	if errors.Is(err, errTooManyFields) {
		// The fields before the limit are used.
		p.msg.tol.add("original-headers-truncated")
	}
	r.OriginalHeaders = string(block)
	h := hb.fields
	r.OriginalFrom = decodeWords(h.get("From"))
	r.OriginalTo = decodeWords(h.get("To"))
	r.OriginalSubject = decodeWords(h.get("Subject"))
	r.OriginalMessageID = validUTF8(h.get("Message-ID"))
	r.OriginalDate = validUTF8(h.get("Date"))
	if p.opts.KeepBody && !headersOnly && bodyStart < len(content) {
		r.OriginalBody = bytes.Clone(content[bodyStart:])
	}
}
