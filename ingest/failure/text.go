package failure

import (
	"bytes"
	"net/netip"
	"regexp"
	"strings"
)

// maxPlainTextBytes bounds the text of a plain-text report that is read
// for labels and a header copy; exim's is a few kilobytes.
const maxPlainTextBytes = 1 << 20

// plainText reads a report without feedback fields, as exim sends: the
// reported domain, source address and arrival date from the text's
// "Label: value" lines or else from the subject, and the reported message
// from its own part or from a header copy inside the text.
func (p *parser) plainText() {
	m := p.msg
	found := p.original(nil)
	for _, e := range m.leaves {
		if e.mediaType != "text/plain" {
			continue
		}
		text := m.text(e)
		if len(text) > maxPlainTextBytes {
			text = text[:maxPlainTextBytes]
		}
		prose, headers := splitAtHeaderCopy(text)
		p.textLabels(prose)
		if !found && headers != nil {
			p.msg.tol.add("original-headers-in-text")
			p.readOriginal(headers, true)
			found = true
		}
	}
	r := p.r
	subject := r.ReportSubject
	if r.ReportedDomain == "" {
		if sm := subjectDomain.FindStringSubmatch(subject); sm != nil {
			r.ReportedDomain = sm[1]
		}
	}
	if r.SourceIP == "" {
		if sm := subjectIP.FindStringSubmatch(subject); sm != nil {
			if a, ok := parseIP(sm[1]); ok {
				r.SourceIP = a
			}
		}
	}
}

// Subjects of plain-text reports: "DMARC Forensic Report for example.com
// from IP 203.0.113.68" (exim), "DMARC Failure Report for example.com
// (mail-from=..., ip=192.0.2.1)", "... Mail-From: IP:192.0.2.1".
var (
	subjectDomain = regexp.MustCompile(`(?i)\breport\s+for\s+(?:domain\s+)?([a-z0-9_-]+(?:\.[a-z0-9_-]+)+)\b`)
	subjectIP     = regexp.MustCompile(`(?i)(?:\bip\s*[:=]\s*|\bfrom\s+ip\s+)\[?([0-9a-f:.]+)`)
)

// textLabelNames maps the labels of plain-text reports, lower case without
// spaces, hyphens or underscores, to what they hold.
var textLabelNames = map[string]string{
	"senderdomain":     "domain",
	"reporteddomain":   "domain",
	"domain":           "domain",
	"headerfromdomain": "domain",
	"senderipaddress":  "ip",
	"senderip":         "ip",
	"sourceip":         "ip",
	"sourceipaddress":  "ip",
	"ipaddress":        "ip",
	"receiveddate":     "date",
	"arrivaldate":      "date",
}

// labelReplacer removes the separators of a label.
var labelReplacer = strings.NewReplacer(" ", "", "-", "", "_", "")

// textLabels reads "Label: value" lines of a plain-text report (exim:
// "Sender Domain: example.com", "Sender IP Address: 203.0.113.68",
// "Received date: ..."). The first of each is used.
func (p *parser) textLabels(text []byte) {
	r := p.r
	for rest := text; len(rest) > 0; {
		var line []byte
		line, rest = cutLine(rest)
		i := bytes.IndexByte(line, ':')
		if i < 0 || i > 60 {
			continue
		}
		kind := textLabelNames[labelReplacer.Replace(strings.ToLower(strings.TrimSpace(string(line[:i]))))]
		value := validUTF8(strings.TrimSpace(string(line[i+1:])))
		if kind == "" || value == "" {
			continue
		}
		switch kind {
		case "domain":
			if r.ReportedDomain == "" && looksLikeDomain(value) {
				r.ReportedDomain = value
			}
		case "ip":
			if a, ok := parseIP(value); ok && r.SourceIP == "" {
				r.SourceIP = a
			}
		case "date":
			if r.ArrivalDateText == "" {
				r.ArrivalDateText = value
				r.ArrivalDate = p.date(value, "bad-arrival-date")
			}
		}
	}
}

// looksLikeDomain says whether s is a domain name: letters, digits,
// hyphens, underscores and at least one dot.
func looksLikeDomain(s string) bool {
	if !strings.Contains(s, ".") || strings.HasPrefix(s, ".") {
		return false
	}
	for _, c := range s {
		if !(c == '.' || c == '-' || c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c > 127) {
			return false
		}
	}
	return true
}

// parseIP returns the canonical form of an IP address written alone, in
// brackets, or followed by a comment.
func parseIP(s string) (string, bool) {
	s = strings.TrimSpace(stripComments(s))
	if i := strings.IndexAny(s, " \t,;"); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if len(s) > 5 && strings.EqualFold(s[:5], "IPv6:") {
		s = s[5:]
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return "", false
	}
	return a.Unmap().String(), true
}

// headerCopyLine is the line after which a plain-text report copies the
// reported message's header: exim writes "------ This is a copy of the
// headers that were received before the error was detected."
var headerCopyLine = regexp.MustCompile(`(?i)\bcopy\s+of\s+the\s+(?:original\s+)?(?:message'?s?\s+)?head(?:er)?s?\b|^\s*-*\s*original\s+(?:message\s+)?headers?\s*:?\s*-*\s*$`)

// splitAtHeaderCopy splits a plain-text report at the first line that
// introduces a copy of the reported header. headers is nil when there is
// none, or when what follows is not a header block.
func splitAtHeaderCopy(text []byte) (prose, headers []byte) {
	for rest := text; len(rest) > 0; {
		line, next := cutLine(rest)
		// A cheap test before the regular expression: the line names
		// headers.
		if (bytes.Contains(line, []byte("ead")) || bytes.Contains(line, []byte("EAD"))) && headerCopyLine.Match(line) {
			after := bytes.TrimLeft(next, "\r\n")
			if !looksLikeHeader(after) {
				return text, nil
			}
			return text[:len(text)-len(rest)], after
		}
		rest = next
	}
	return text, nil
}
