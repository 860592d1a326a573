package dmarcd

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"
)

// AggregateReport is one DMARC aggregate feedback report, RFC 7489 Appendix C
// and RFC 9990 §3. The records of a report are not part of this struct: they
// are streamed (see RecordWriter), so that a report of millions of rows is
// never held in memory.
type AggregateReport struct {
	// Version is the <version> element (RFC 9990 §3.1.1: "1.0"), empty when
	// absent, as in most RFC 7489 reports.
	Version string
	// Namespace is the XML namespace of <feedback>: empty, the
	// "urn:ietf:params:xml:ns:dmarc-2.0" of RFC 9990, or a draft's.
	Namespace string

	Metadata ReportMetadata
	Policy   PolicyPublished

	// Extensions holds the raw XML of <extension> elements at the top level
	// of the report (RFC 9990 §3.1.4).
	Extensions []string

	// RecordCount and MessageCount are the number of <record> elements and
	// the sum of their <count>; set once all records were read.
	RecordCount  int64
	MessageCount int64

	// Tolerations lists the deviations from the schema that the parser
	// accepted (a byte-order mark, a missing element, an unclosed wrapper,
	// ...), one short code each, for example "bom" or "ws-in:count".
	Tolerations []string
}

// ReportMetadata is the <report_metadata> part, RFC 9990 §3.1.1.
type ReportMetadata struct {
	OrgName          string
	Email            string
	ExtraContactInfo string
	ReportID         string
	DateBegin        time.Time
	DateEnd          time.Time
	Errors           []string
	// Generator names the software that wrote the report (RFC 9990).
	Generator string
}

// PolicyPublished is the <policy_published> part: the DMARC record the
// receiver found for the domain, RFC 9990 §3.1.2.
type PolicyPublished struct {
	Domain string
	ADKIM  string // "r" or "s"
	ASPF   string // "r" or "s"
	P      string // none, quarantine, reject
	SP     string
	NP     string // RFC 9989 non-existent subdomain policy
	// Pct is the RFC 7489 percentage; -1 when the report has none (RFC 9990
	// dropped it).
	Pct int
	FO  string
	// Testing is the RFC 9989 t= tag ("y" or "n"), empty when absent.
	Testing string
	// DiscoveryMethod is RFC 9990's "psl" or "treewalk".
	DiscoveryMethod string
}

// PctAbsent marks PolicyPublished.Pct when the report carries no pct.
const PctAbsent = -1

// Record is one <record> of an aggregate report: a source IP and the messages
// from it that shared the same results, RFC 9990 §3.1.3.
type Record struct {
	// SourceIP is the address in canonical text form when it parses, else
	// the text as the reporter wrote it.
	SourceIP string
	Count    int64

	// The policy evaluated by the receiver.
	Disposition string // none, quarantine, reject (RFC 9990 adds pass)
	DKIM        string // pass or fail: DKIM aligned and passed
	SPF         string // pass or fail: SPF aligned and passed
	Reasons     []PolicyOverride

	EnvelopeTo   string
	EnvelopeFrom string
	HeaderFrom   string

	DKIMResults []DKIMResult
	SPFResults  []SPFResult

	// Extensions holds the raw XML of <extension> elements of the record.
	Extensions []string
}

// PolicyOverride is a <reason> of policy_evaluated: why the receiver applied
// a policy other than the published one.
type PolicyOverride struct {
	Type    string `json:"type"` // forwarded, sampled_out, trusted_forwarder, mailing_list, local_policy, other
	Comment string `json:"comment"`
}

// DKIMResult is one DKIM signature's result under <auth_results>.
type DKIMResult struct {
	Domain      string
	Selector    string
	Result      string // none, pass, fail, policy, neutral, temperror, permerror
	HumanResult string
}

// SPFResult is one SPF check's result under <auth_results>.
type SPFResult struct {
	Domain      string
	Scope       string // mfrom or helo (RFC 7489); RFC 9990 dropped it
	Result      string // none, neutral, pass, fail, softfail, temperror, permerror
	HumanResult string
}

// Reporter names who sent a report: its org_name, or its contact address
// where org_name is empty (some reporters leave it empty).
func (r *AggregateReport) Reporter() string {
	if r.Metadata.OrgName != "" {
		return r.Metadata.OrgName
	}
	return r.Metadata.Email
}

// Key identifies a report for deduplication: the same report, sent twice or
// fetched twice, has the same key.
func (r *AggregateReport) Key() ReportKey {
	return ReportKey{
		Reporter:  strings.ToLower(strings.TrimSpace(r.Reporter())),
		ReportID:  r.Metadata.ReportID,
		Domain:    strings.ToLower(r.Policy.Domain),
		DateBegin: r.Metadata.DateBegin.Unix(),
		DateEnd:   r.Metadata.DateEnd.Unix(),
	}
}

// ReportKey identifies one aggregate report: reporter, report id, policy
// domain and date range (a reporter may reuse an id for another domain or
// day).
type ReportKey struct {
	Reporter  string
	ReportID  string
	Domain    string
	DateBegin int64 // Unix seconds
	DateEnd   int64
}

// String renders the key in one line, for logs and as a stable digest input.
func (k ReportKey) String() string {
	var b strings.Builder
	b.WriteString(k.Reporter)
	b.WriteByte('!')
	b.WriteString(k.ReportID)
	b.WriteByte('!')
	b.WriteString(k.Domain)
	b.WriteByte('!')
	b.WriteString(time.Unix(k.DateBegin, 0).UTC().Format(time.RFC3339))
	b.WriteByte('!')
	b.WriteString(time.Unix(k.DateEnd, 0).UTC().Format(time.RFC3339))
	return b.String()
}

// Digest is a short stable identifier of the key: the first 16 bytes of
// the SHA-256 of String, in hex. Both stores keep it as report_key.
func (k ReportKey) Digest() string {
	sum := sha256.Sum256([]byte(k.String()))
	return hex.EncodeToString(sum[:16])
}
