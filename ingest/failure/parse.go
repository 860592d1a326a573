// Package failure parses DMARC failure reports ("forensic" reports) from a
// whole mail message: Abuse Reporting Format messages (ARF, RFC 5965) with the
// authentication failure extension of RFC 6591 and the DMARC rules of RFC
// 9991, into a dmarcd.FailureReport.
//
// A standard report is a multipart/report; report-type=feedback-report
// message (RFC 5965 §2) of three parts: a human-readable text, the
// machine-readable message/feedback-report fields, and the reported message
// as message/rfc822 or its header as text/rfc822-headers. Reporters deviate
// from that shape, and the parser accepts what it can read, recording each
// deviation as a short code in FailureReport.Tolerations:
//
//	mbox-from-line             the mail starts with an mbox "From " line
//	bad-header-line            a header line that is neither a field nor a continuation
//	bad-content-type           a Content-Type that does not parse (RFC 2045 §5.1)
//	bad-cte                    a base64 body with bad characters or length
//	unknown-cte                an unknown Content-Transfer-Encoding, read as is
//	unknown-charset            an unknown charset, read as is
//	truncated-mime             a multipart without its close delimiter (RFC 2046 §5.1.1)
//	forwarded-report           the report came attached to another mail, as message/rfc822
//	not-multipart-report       the top-level type is not multipart/report (Netease: multipart/mixed)
//	no-report-type             multipart/report without report-type (RFC 6522 §3)
//	report-type-other          multipart/report with a report-type other than feedback-report
//	feedback-part-encoded      the feedback part is base64 or quoted-printable; RFC 5965 registers it 7bit
//	feedback-part-as-text      the feedback fields are labelled text/plain or similar
//	feedback-part-no-header    the feedback fields start right after the boundary, with no part header
//	feedback-in-text           the feedback fields follow prose inside a text part
//	blank-line-in-feedback     a blank line between feedback fields
//	bad-feedback-line          a feedback line that is neither a field nor a continuation
//	invalid-utf8               a feedback value that is not UTF-8
//	missing:<field>            a required field is absent: feedback-type, user-agent, version
//	                           (RFC 5965 §3.1), auth-failure (RFC 6591 §3.1, auth-failure reports)
//	duplicate:<field>          a field allowed once appears again; the first is used (RFC 5965 §3.2)
//	received-date              the historic Received-Date field stands for Arrival-Date
//	bad-arrival-date           an Arrival-Date that does not parse
//	bad-source-ip              a Source-IP that is not an IP address
//	bad-incidents              an Incidents that is not a positive integer
//	bad-date                   the report mail's Date does not parse
//	no-original-part           no message/rfc822 or text/rfc822-headers part (RFC 5965 §2 (d))
//	original-type-nonstandard  the reported message labelled message/rfc822-headers or text/rfc822
//	original-as-text           the reported message's header labelled text/plain
//	original-encoded           a message/rfc822 part in base64 or quoted-printable (RFC 2046 §5.2.1)
//	blank-line-before-original the reported message starts with an empty line
//	original-headers-truncated the reported message's header is longer than MaxOriginalHeaderBytes
//	no-arf-part                no feedback fields at all: a plain-text report (exim)
//	original-headers-in-text   the reported header copied into the text part (exim)
//
// Values are kept as written, with folded lines joined by one space, except
// where FailureReport documents a normal form: the tokens Feedback-Type,
// Auth-Failure and Delivery-Result are lower-cased, Identity-Alignment is
// written "none", "dkim", "spf" or "dkim, spf", SourceIP is the canonical
// address, DKIM-Canonicalized-Header and -Body are their base64 text without
// whitespace. From, To and Subject (of the report and of the reported
// message) have their RFC 2047 encoded words decoded. Incidents is 0 when the
// field is absent (RFC 5965 §3.2 then means one incident).
//
// Failure reports carry personal data (RFC 9991 §7): the body of the
// reported message is dropped unless Options.KeepBody is set.
package failure

import (
	"errors"
	"fmt"

	"github.com/dmarcd/dmarcd"
)

// Limits. A failure report is small: a few kilobytes of text and a copy of
// one message. These bound the work done on hostile input.
const (
	// MaxMessageBytes bounds the whole report mail.
	MaxMessageBytes = 32 << 20
	// MaxFeedbackFields bounds the number of fields of the
	// message/feedback-report part; a real report has a few dozen.
	MaxFeedbackFields = 1000
	// MaxOriginalHeaderBytes bounds the header block of the reported
	// message that is kept in OriginalHeaders; a longer one is cut at a line
	// boundary.
	MaxOriginalHeaderBytes = 1 << 20
	// MaxHeaderFields bounds the fields of any one header block (the report
	// mail's, a MIME part's, the reported message's).
	MaxHeaderFields = 10000
	// MaxMIMEParts bounds the number of MIME entities walked in one report.
	MaxMIMEParts = 100
	// MaxMIMEDepth bounds the nesting of multipart entities.
	MaxMIMEDepth = 8
)

// maxForwardedDepth is how many message/rfc822 wrappers around a report are
// opened: a report forwarded as an attachment is read, a forward of a
// forward is not.
const maxForwardedDepth = 1

// ErrNotFailureReport is returned (wrapped) by Parse for a mail message that
// is not a failure report: no feedback fields, and nothing in its header or
// text that says it is one.
var ErrNotFailureReport = errors.New("not a failure report")

// Options configure Parse. The zero value is the safe default.
type Options struct {
	// KeepBody keeps the body of the reported message in OriginalBody. Off
	// by default: it is personal data, and RFC 9991 §7 asks receivers of
	// failure reports to keep no more of it than they need.
	KeepBody bool
}

// Parse reads one failure report mail: a whole RFC 5322 message, with CRLF or
// LF line endings. It returns an error wrapping ErrNotFailureReport when msg
// is a mail message but not a failure report, and other errors, with context,
// for a report that cannot be read (too large, no MIME boundary, feedback
// part truncated).
func Parse(msg []byte, opts Options) (*dmarcd.FailureReport, error) {
	r, err := parse(msg, opts, 0)
	if err != nil {
		return nil, fmt.Errorf("parsing failure report: %w", err)
	}
	return r, nil
}

func parse(msg []byte, opts Options, forwarded int) (*dmarcd.FailureReport, error) {
	m, err := readMessage(msg)
	if err != nil {
		return nil, err
	}
	p := &parser{opts: opts, msg: m, r: &dmarcd.FailureReport{}}
	fb, err := p.findFeedback()
	if err != nil {
		return nil, err
	}
	if fb == nil {
		if forwarded < maxForwardedDepth {
			if inner := m.forwardedReport(); inner != nil {
				r, err := parse(inner, opts, forwarded+1)
				if err != nil {
					return nil, fmt.Errorf("forwarded report: %w", err)
				}
				r.Tolerations = prepend(r.Tolerations, "forwarded-report")
				return r, nil
			}
		}
		if !m.looksLikeFailureReport() {
			return nil, fmt.Errorf("%w: no message/feedback-report part, and neither subject nor text name a failure report", ErrNotFailureReport)
		}
	}
	p.reportHeader()
	p.checkReportType(fb != nil)
	if fb != nil {
		if err := p.feedback(fb); err != nil {
			return nil, err
		}
		if !p.original(fb.part) {
			p.msg.tol.add("no-original-part")
		}
	} else {
		p.msg.tol.add("no-arf-part")
		p.plainText()
	}
	p.r.Tolerations = p.msg.tol
	return p.r, nil
}

// parser holds the state of one Parse.
type parser struct {
	opts Options
	msg  *message // its tolerations are the report's
	r    *dmarcd.FailureReport
}

// tolerations collects deviation codes, each once, in the order met.
type tolerations []string

func (t *tolerations) add(code string) {
	for _, c := range *t {
		if c == code {
			return
		}
	}
	*t = append(*t, code)
}

func prepend(list []string, code string) []string {
	out := make([]string, 0, len(list)+1)
	out = append(out, code)
	for _, c := range list {
		if c != code {
			out = append(out, c)
		}
	}
	return out
}
