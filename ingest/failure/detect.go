package failure

import (
	"mime"
	"path"
	"regexp"
	"strings"
)

// IsFailureReport says whether a mail message looks like a failure report,
// so that a container walker can hand it to Parse whole: a
// multipart/report; report-type=feedback-report, a message/feedback-report
// part anywhere (Netease sends multipart/mixed), feedback fields in a text
// part, a report forwarded as an attachment, or a subject or sender that
// names a DMARC failure report ("DMARC Failure Report for ...", "DMARC
// Forensic Report for ...") on a mail without an aggregate report
// attachment. It reads at most the same as Parse, within the same limits.
func IsFailureReport(msg []byte) bool {
	m, err := readMessage(msg)
	if err != nil {
		// A report Parse cannot read (too large, no MIME boundary) is
		// still a report, given to Parse to say why.
		return headerNamesFailureReport(msg)
	}
	p := &parser{msg: m}
	if fb, err := p.findFeedback(); fb != nil || err != nil {
		return true
	}
	if m.forwardedReport() != nil {
		return true
	}
	return m.looksLikeFailureReport()
}

// headerNamesFailureReport reads only the header of msg.
func headerNamesFailureReport(msg []byte) bool {
	if len(msg) > MaxMessageBytes {
		msg = msg[:MaxMessageBytes]
	}
	hb, err := readHeader(msg, MaxHeaderFields, false)
	if err != nil || len(hb.fields) == 0 {
		return false
	}
	m := &message{header: hb.fields}
	m.mediaType, m.params = m.contentType(hb.fields)
	return m.headerSaysFailure()
}

// looksLikeFailureReport says, for a message without feedback fields,
// whether its header names it a failure report and no part looks like an
// aggregate or TLS report.
func (m *message) looksLikeFailureReport() bool {
	for _, e := range m.leaves {
		if reportAttachment(e) {
			return false
		}
	}
	return m.headerSaysFailure()
}

// headerSaysFailure says whether the message's type, subject or sender
// names a failure report.
func (m *message) headerSaysFailure() bool {
	if m.mediaType == "multipart/report" && strings.EqualFold(m.params["report-type"], "feedback-report") {
		return true
	}
	subject := m.header.get("Subject")
	if len(subject) > maxSubjectBytes {
		subject = subject[:maxSubjectBytes]
	}
	if failureSubject.MatchString(decodeWords(subject)) {
		return true
	}
	return failureSender(m.header.get("From"))
}

// maxSubjectBytes is how much of a subject is matched against
// failureSubject; the words that matter come first.
const maxSubjectBytes = 1000

// failureSubject matches the subjects failure reporters write: "DMARC
// Failure Report for example.com", "[Netease DMARC Failure Report] ...",
// "DMARC Forensic Report for example.com from IP ...", "Authentication
// failure report".
var failureSubject = regexp.MustCompile(`(?i)\bdmarc\b.{0,20}\b(?:failure|forensic)\s+report|\b(?:authentication|auth)[\s-]+failure\s+report|\bforensic\s+(?:dmarc\s+)?report`)

// failureSender says whether a From address names a failure report sender
// by a word of its local part: "dmarc-forensic@", "ruf@", "forensics@".
func failureSender(from string) bool {
	at := strings.LastIndexByte(from, '@')
	if at < 0 {
		return false
	}
	local := from[:at]
	if i := strings.LastIndexAny(local, "<\" \t"); i >= 0 {
		local = local[i+1:]
	}
	for _, w := range strings.FieldsFunc(strings.ToLower(local), func(r rune) bool {
		return !('a' <= r && r <= 'z' || '0' <= r && r <= '9')
	}) {
		switch w {
		case "forensic", "forensics", "ruf":
			return true
		}
	}
	return false
}

// reportAttachment says whether a part looks like an aggregate report
// (XML, gzip or zip, RFC 9990) or a TLS report (RFC 8460): a mail
// with one is not a failure report, whatever its subject.
func reportAttachment(e *entity) bool {
	switch e.mediaType {
	case "application/gzip", "application/x-gzip", "application/zip", "application/x-zip",
		"application/x-zip-compressed", "application/xml", "text/xml",
		"application/tlsrpt+gzip", "application/tlsrpt+json":
		return true
	}
	name := e.params["name"]
	if name == "" {
		name = dispositionFilename(e.header.get("Content-Disposition"))
	}
	switch strings.ToLower(path.Ext(name)) {
	case ".xml", ".gz", ".zip", ".json":
		return true
	}
	return false
}

// dispositionFilename returns the filename parameter of a
// Content-Disposition, or "".
func dispositionFilename(v string) string {
	if v == "" {
		return ""
	}
	if _, params, err := mime.ParseMediaType(v); err == nil {
		return params["filename"]
	}
	return ""
}

// forwardedReport returns the bytes of an attached message (message/rfc822
// or message/global) that is itself a failure report with feedback fields,
// for a message that has none of its own; nil when there is none.
func (m *message) forwardedReport() []byte {
	for _, e := range m.leaves {
		if e.mediaType != "message/rfc822" && e.mediaType != "message/global" {
			continue
		}
		content := m.decode(e)
		inner, err := readMessage(content)
		if err != nil {
			continue
		}
		p := &parser{msg: inner}
		if fb, err := p.findFeedback(); fb != nil || err != nil {
			return content
		}
	}
	return nil
}
