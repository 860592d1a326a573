package dnsrecord

// Severity says how much a finding matters.
type Severity string

const (
	// SeverityError: receivers do not get what the domain means (an SPF
	// permerror, no DMARC record applies, a key that does not verify).
	SeverityError Severity = "error"
	// SeverityWarning: it works today, but loses reports, protection or
	// mail in some receivers.
	SeverityWarning Severity = "warning"
	// SeverityInfo: worth knowing, nothing to fix.
	SeverityInfo Severity = "info"
)

// Finding is one result of reading or checking a record: what is wrong (or
// worth knowing), at which DNS name, and what to do about it.
type Finding struct {
	Severity Severity `json:"severity"`
	// Code is stable, for scripts: "spf-lookups", "dmarc-pct-without-t", ...
	Code    string `json:"code"`
	Message string `json:"message"`
	// Name is the DNS name concerned, for example "_dmarc.example.com".
	// The parsers of this package leave it empty: the caller knows where
	// the record lives.
	Name   string `json:"name,omitempty"`
	Advice string `json:"advice,omitempty"`
}

// HasErrors reports whether any finding is an error.
func HasErrors(fs []Finding) bool {
	for _, f := range fs {
		if f.Severity == SeverityError {
			return true
		}
	}
	return false
}
