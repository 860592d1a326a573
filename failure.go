package dmarcd

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"
)

// FailureReport is one DMARC failure report (a "forensic" report): an Abuse
// Reporting Format message, RFC 5965, with the authentication failure
// extensions of RFC 6591 and the DMARC rules of RFC 9991. Reports that carry
// no machine-readable part (some MTAs send plain text) keep what could be
// read and say so in Tolerations.
type FailureReport struct {
	// The report message itself.
	ReportFrom      string // From: of the report mail
	ReportSubject   string
	ReportDate      time.Time // Date: of the report mail; zero when absent
	ReportMessageID string

	// Feedback fields of the message/feedback-report part, RFC 5965 §3.1 and
	// RFC 6591 §3.1.
	FeedbackType          string // auth-failure, abuse, ...
	Version               string
	UserAgent             string
	ReportedDomain        string
	SourceIP              string // the address, without a trailing comment
	OriginalMailFrom      string
	OriginalRcptTo        []string
	ArrivalDate           time.Time // zero when absent or unparsable
	ArrivalDateText       string    // as written
	AuthFailure           string    // dkim, spf, dmarc, adsp, bodyhash, revoked, signature
	DeliveryResult        string
	IdentityAlignment     string // none, spf, dkim, or "dkim, spf"
	DKIMDomain            string
	DKIMIdentity          string
	DKIMSelector          string
	DKIMCanonicalHeader   string
	DKIMCanonicalBody     string
	SPFDNS                string
	AuthenticationResults []string
	ReportedURI           []string
	Incidents             int64

	// Fields holds every feedback field in order, as written, including the
	// ones above and any non-standard ones.
	Fields []Field

	// The reported message, from the message/rfc822 or text/rfc822-headers
	// part (RFC 5965 §2 (d)).
	OriginalPartType  string // message/rfc822, text/rfc822-headers, or empty
	OriginalHeaders   string // the header block as received
	OriginalFrom      string
	OriginalTo        string
	OriginalSubject   string
	OriginalMessageID string
	OriginalDate      string
	// OriginalBody is kept only when the configuration asks for it: failure
	// reports carry personal data (RFC 9991 §7).
	OriginalBody []byte

	// Tolerations lists deviations from RFC 5965 that the parser accepted.
	Tolerations []string
}

// Field is one "Name: value" line of a feedback report.
type Field struct {
	Name  string
	Value string
}

// Domain is the domain the report is about: Reported-Domain, else the
// domain of the original From, else of DKIM-Domain.
func (f *FailureReport) Domain() string {
	if f.ReportedDomain != "" {
		return strings.ToLower(f.ReportedDomain)
	}
	if i := strings.LastIndexByte(f.OriginalFrom, '@'); i >= 0 {
		return strings.ToLower(strings.Trim(f.OriginalFrom[i+1:], "<> \t"))
	}
	return strings.ToLower(f.DKIMDomain)
}

// Key identifies a failure report for deduplication. Failure reports carry
// no report id; the reporter, the arrival date, the source and the reported
// message's identity make one.
func (f *FailureReport) Key() string {
	h := sha256.New()
	for _, s := range []string{
		strings.ToLower(f.ReportFrom), f.ReportMessageID, f.ReportedDomain, f.SourceIP,
		// The same report arrives with CRLF or LF line ends.
		f.ArrivalDateText, f.OriginalMessageID, strings.ReplaceAll(f.OriginalHeaders, "\r\n", "\n"),
	} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}
