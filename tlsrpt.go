package dmarcd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"
)

// TLSReport is an SMTP TLS report (RFC 8460): what a sending mail server
// saw of the TLS of a domain's MX hosts over a day, per policy (MTA-STS,
// DANE, or none found). They arrive by mail at the rua of a domain's
// _smtp._tls record, often in the same mailbox as DMARC reports.
type TLSReport struct {
	OrganizationName string
	ReportID         string
	DateBegin        time.Time
	DateEnd          time.Time
	ContactInfo      string
	Policies         []TLSPolicy
	// Tolerations lists deviations from RFC 8460 that the parser accepted.
	Tolerations []string
}

// TLSPolicy is the result of one policy of a TLS report.
type TLSPolicy struct {
	Type   string   // sts, tlsa, no-policy-found
	String []string // the policy text (MTA-STS lines, TLSA records)
	Domain string   // the policy domain
	// MXHosts are the MX host patterns of an MTA-STS policy.
	MXHosts            []string
	SuccessfulSessions int64
	FailedSessions     int64
	FailureDetails     []TLSFailureDetail
}

// TLSFailureDetail is one kind of failure of a policy, from one sending
// server to one receiving host.
type TLSFailureDetail struct {
	ResultType            string // starttls-not-supported, certificate-expired, validation-failure, ...
	SendingMTAIP          string
	ReceivingMXHostname   string
	ReceivingMXHelo       string
	ReceivingIP           string
	FailedSessions        int64
	AdditionalInformation string
	FailureReasonCode     string
}

// Key identifies a TLS report: the reporter and its report id (unique per
// reporter, RFC 8460 §4.4).
func (r *TLSReport) Key() string {
	h := sha256.Sum256([]byte(strings.ToLower(r.OrganizationName) + "\x00" + r.ReportID))
	return hex.EncodeToString(h[:])
}

// Domain is the policy domain the report is about: that of its first
// policy (reports cover one domain in practice).
func (r *TLSReport) Domain() string {
	for _, p := range r.Policies {
		if p.Domain != "" {
			return strings.ToLower(p.Domain)
		}
	}
	return ""
}

// TLSStore is a Store that keeps SMTP TLS reports too; both of dmarcd's
// stores are. Without it, ingest counts TLS reports as skipped.
type TLSStore interface {
	// AddTLSReport stores a TLS report, or returns ErrDuplicate.
	AddTLSReport(ctx context.Context, r *TLSReport, o Origin) error
}
