package failure

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dmarcd/dmarcd"
)

// feedbackPart is the machine-readable part of a report and where it was
// found.
type feedbackPart struct {
	part    *entity
	content []byte // decoded: the feedback fields, maybe after prose
}

// findFeedback finds the feedback fields: the message/feedback-report part
// (RFC 5965 §2 (c)), else a part that holds the fields under another label,
// else a text part that holds them after some prose. It returns nil when
// there are none.
func (p *parser) findFeedback() (*feedbackPart, error) {
	m := p.msg
	var found *feedbackPart
	for _, e := range m.leaves {
		if e.mediaType == "message/feedback-report" {
			// RFC 5965 registers message/feedback-report with 7bit
			// encoding, readable without MIME; Netease sends base64.
			if e.cte == "base64" || e.cte == "quoted-printable" {
				m.tol.add("feedback-part-encoded")
			}
			found = &feedbackPart{part: e, content: m.text(e)}
			break
		}
	}
	if found == nil {
		for _, e := range m.leaves {
			if e.index != "" && !e.typed && e.header.has("Feedback-Type") {
				// The fields right after the boundary, with no empty line
				// before them: they were read as the part's header.
				m.tol.add("feedback-part-no-header")
				found = &feedbackPart{part: e, content: e.raw}
				break
			}
			if !textual(e.mediaType) {
				continue
			}
			if c := m.text(e); startsWithFeedback(c) {
				m.tol.add("feedback-part-as-text")
				found = &feedbackPart{part: e, content: c}
				break
			}
		}
	}
	if found == nil {
		for _, e := range m.leaves {
			if !textual(e.mediaType) {
				continue
			}
			if c, ok := feedbackInText(m.text(e)); ok {
				m.tol.add("feedback-in-text")
				found = &feedbackPart{part: e, content: c}
				break
			}
		}
	}
	if found != nil && found.part.truncated {
		return nil, fmt.Errorf("feedback %s: truncated: it is the last part and the multipart has no close delimiter", found.part.name())
	}
	return found, nil
}

// textual says whether a leaf of this type may hold feedback fields under a
// wrong label.
func textual(mediaType string) bool {
	return strings.HasPrefix(mediaType, "text/") && mediaType != "text/html" && mediaType != "text/rfc822-headers" ||
		mediaType == "application/octet-stream" || mediaType == "message/feedback"
}

// startsWithFeedback says whether b, after empty lines, starts with a block
// of fields that holds Feedback-Type.
func startsWithFeedback(b []byte) bool {
	b = bytes.TrimLeft(b, "\r\n")
	line, _ := cutLine(b)
	if _, _, ok := splitField(line); !ok {
		return false
	}
	hb, _ := readHeader(b, MaxFeedbackFields, false)
	return hb.fields.has("Feedback-Type")
}

// arfFieldNames are the feedback fields that, after Feedback-Type, show that
// a text holds a feedback report.
var arfFieldNames = []string{
	"version", "user-agent", "auth-failure", "source-ip", "reported-domain",
	"original-mail-from", "arrival-date", "authentication-results", "delivery-result",
}

// feedbackInText finds feedback fields inside a text: a block of lines that
// starts with "Feedback-Type:" and holds at least one other feedback field.
// It returns the block, up to the empty line that ends it.
func feedbackInText(b []byte) ([]byte, bool) {
	rest := b
	for len(rest) > 0 {
		line, next := cutLine(rest)
		if name, _, ok := splitField(line); ok && strings.EqualFold(name, "Feedback-Type") {
			hb, _ := readHeader(rest, MaxFeedbackFields, false)
			for _, f := range hb.fields {
				if slices.Contains(arfFieldNames, strings.ToLower(f.name)) {
					return hb.raw, true
				}
			}
			// Go on after this block, so that each line is read once.
			if len(hb.raw) > len(line) {
				next = rest[len(hb.raw):]
			}
		}
		rest = next
	}
	return nil, false
}

// onceFields are the fields RFC 5965 §3.1 and §3.2, RFC 6591 §3.1 and RFC
// 7489 allow once; the first is used.
var onceFields = []string{
	"feedback-type", "user-agent", "version", "original-envelope-id", "original-mail-from",
	"arrival-date", "received-date", "reporting-mta", "source-ip", "incidents",
	"auth-failure", "delivery-result", "dkim-domain", "dkim-identity", "dkim-selector",
	"dkim-canonicalized-header", "dkim-canonicalized-body", "spf-dns", "identity-alignment",
}

// feedback reads the feedback fields into the report.
func (p *parser) feedback(fb *feedbackPart) error {
	content := bytes.TrimLeft(fb.content, "\r\n")
	hb, err := readHeader(content, MaxFeedbackFields, true)
	if errors.Is(err, errTooManyFields) {
		return fmt.Errorf("feedback %s: more than %d fields (MaxFeedbackFields)", fb.part.name(), MaxFeedbackFields)
	}
	if err != nil {
		return fmt.Errorf("feedback %s: %w", fb.part.name(), err)
	}
	if hb.badLines > 0 {
		p.msg.tol.add("bad-feedback-line")
	}
	if hasBlankLineInside(content) {
		p.msg.tol.add("blank-line-in-feedback")
	}
	r := p.r
	seen := map[string]bool{}
	for _, f := range hb.fields {
		v := f.value
		if !utf8.ValidString(v) {
			p.msg.tol.add("invalid-utf8")
			v = validUTF8(v)
		}
		r.Fields = append(r.Fields, dmarcd.Field{Name: validUTF8(f.name), Value: v})
		name := strings.ToLower(f.name)
		if slices.Contains(onceFields, name) {
			if seen[name] {
				p.msg.tol.add("duplicate:" + name)
				continue
			}
			seen[name] = true
		}
		p.feedbackField(name, v)
	}
	for _, name := range []string{"feedback-type", "user-agent", "version"} {
		// RFC 5965 §3.1: required.
		if !seen[name] {
			p.msg.tol.add("missing:" + name)
		}
	}
	if r.FeedbackType == "auth-failure" && !seen["auth-failure"] {
		// RFC 6591 §3.1: required in an auth-failure report.
		p.msg.tol.add("missing:auth-failure")
	}
	return nil
}

// feedbackField sets the report's typed field for one feedback field, its
// name lower case.
func (p *parser) feedbackField(name, v string) {
	r := p.r
	switch name {
	case "feedback-type":
		r.FeedbackType = strings.ToLower(v)
	case "version":
		r.Version = v
	case "user-agent":
		r.UserAgent = v
	case "reported-domain":
		// RFC 5965 §3.3 allows several; the first is the report's domain,
		// all are in Fields.
		if r.ReportedDomain == "" {
			r.ReportedDomain = v
		}
	case "source-ip":
		r.SourceIP = p.sourceIP(v)
	case "original-mail-from":
		r.OriginalMailFrom = v
	case "original-rcpt-to":
		r.OriginalRcptTo = append(r.OriginalRcptTo, v)
	case "arrival-date", "received-date":
		if name == "received-date" {
			// The historic name of Arrival-Date in the IANA registry of
			// feedback fields; Arrival-Date wins when both are present.
			p.msg.tol.add("received-date")
			if r.ArrivalDateText != "" {
				return
			}
		}
		r.ArrivalDateText = v
		r.ArrivalDate = p.date(v, "bad-arrival-date")
	case "auth-failure":
		r.AuthFailure = strings.ToLower(v)
	case "delivery-result":
		r.DeliveryResult = strings.ToLower(v)
	case "identity-alignment":
		r.IdentityAlignment = identityAlignment(v)
	case "dkim-domain":
		r.DKIMDomain = v
	case "dkim-identity":
		r.DKIMIdentity = v
	case "dkim-selector":
		r.DKIMSelector = v
	case "dkim-canonicalized-header":
		r.DKIMCanonicalHeader = strings.Join(strings.Fields(v), "")
	case "dkim-canonicalized-body":
		r.DKIMCanonicalBody = strings.Join(strings.Fields(v), "")
	case "spf-dns":
		r.SPFDNS = v
	case "authentication-results":
		r.AuthenticationResults = append(r.AuthenticationResults, v)
	case "reported-uri":
		r.ReportedURI = append(r.ReportedURI, v)
	case "incidents":
		// RFC 5965 §3.2: a positive integer.
		n, err := strconv.ParseInt(strings.TrimSpace(stripComments(v)), 10, 64)
		if err != nil || n < 1 {
			p.msg.tol.add("bad-incidents")
			return
		}
		r.Incidents = n
	}
}

// sourceIP returns the address of a Source-IP value (RFC 5965 §3.2): the
// IPv4 or IPv6 address, its comment ("192.0.2.1 (mail.example.com)", as
// OpenDMARC writes) and brackets removed, in canonical form. A value that is
// no address is kept as written, without comments.
func (p *parser) sourceIP(v string) string {
	if a, ok := parseIP(v); ok {
		return a
	}
	p.msg.tol.add("bad-source-ip")
	return strings.TrimSpace(stripComments(v))
}

// identityAlignment normalizes Identity-Alignment (registered by RFC 7489,
// kept by RFC 9991): "none", or the aligned methods in the order dkim, spf,
// joined by ", ". Unknown words are kept after them.
func identityAlignment(v string) string {
	var dkim, spf, none bool
	var other []string
	for w := range strings.FieldsFuncSeq(strings.ToLower(stripComments(v)), func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t'
	}) {
		switch w {
		case "dkim":
			dkim = true
		case "spf":
			spf = true
		case "none":
			none = true
		default:
			if !slices.Contains(other, w) {
				other = append(other, w)
			}
		}
	}
	var out []string
	if dkim {
		out = append(out, "dkim")
	}
	if spf {
		out = append(out, "spf")
	}
	out = append(out, other...)
	if len(out) == 0 && none {
		return "none"
	}
	return strings.Join(out, ", ")
}

// hasBlankLineInside says whether an empty line comes before a field.
func hasBlankLineInside(b []byte) bool {
	blank := false
	for rest := b; len(rest) > 0; {
		line, next := cutLine(rest)
		if len(line) == 0 {
			blank = true
		} else if _, _, ok := splitField(line); ok && blank {
			return true
		}
		rest = next
	}
	return false
}

// reportHeader reads the report mail's own header.
func (p *parser) reportHeader() {
	h := p.msg.header
	r := p.r
	r.ReportFrom = decodeWords(h.get("From"))
	r.ReportSubject = decodeWords(h.get("Subject"))
	r.ReportMessageID = validUTF8(h.get("Message-ID"))
	if d := h.get("Date"); d != "" {
		r.ReportDate = p.date(d, "bad-date")
	}
}

// date parses a date, recording code as toleration when it does not parse.
func (p *parser) date(v, code string) time.Time {
	t, ok := parseDate(v)
	if !ok {
		p.msg.tol.add(code)
	}
	return t
}

// checkReportType checks the top-level type: RFC 5965 §2 (a) asks for
// multipart/report with report-type=feedback-report (RFC 6522 §3).
func (p *parser) checkReportType(arf bool) {
	m := p.msg
	if m.mediaType != "multipart/report" {
		if arf {
			p.msg.tol.add("not-multipart-report")
		}
		return
	}
	switch rt := strings.ToLower(m.params["report-type"]); rt {
	case "feedback-report":
	case "":
		p.msg.tol.add("no-report-type")
	default:
		p.msg.tol.add("report-type-other")
	}
}
