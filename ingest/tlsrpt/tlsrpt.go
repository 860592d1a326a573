// Package tlsrpt parses SMTP TLS reports (RFC 8460): the JSON that sending
// mail servers (Google, Microsoft, Mail.ru ...) send to the rua of a
// domain's _smtp._tls record, once unpacked from its mail and gzip by
// ingest/unpack.
//
// Real reporters bend the format; the parser accepts what a careful reader
// can and records it in TLSReport.Tolerations:
//
//	time-without-zone       a date-time without a zone (read as UTC)
//	number-as-string        a session count written as a JSON string
//	mx-host-string          mx-host as one string instead of a list
//	policy-string-string    policy-string as one string instead of a list
//	unknown-policy-type     a policy-type outside sts, tlsa, no-policy-found
//	unknown-result-type     a result-type outside RFC 8460 §4.3
//	negative-count          a negative session count (read as 0)
//	excess:policies         policies beyond MaxPolicies (dropped)
//	excess:failure-details  failure details beyond MaxFailureDetails (dropped)
//
// What it cannot read (not JSON, no organization-name, report-id or
// date-range, no policies) is an error, and ingest quarantines the input.
package tlsrpt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dmarcd/dmarcd"
)

// Limits on one report; each is checked before the value is kept.
const (
	// MaxReportBytes bounds the JSON of one report. Real reports are a
	// few KB; a large sender's daily report with many failing hosts stays
	// far below this.
	MaxReportBytes = 16 << 20
	// MaxPolicies bounds the policies of one report.
	MaxPolicies = 1_000
	// MaxFailureDetails bounds the failure details of one policy.
	MaxFailureDetails = 10_000
)

// ErrTooLarge is returned for JSON longer than MaxReportBytes.
var ErrTooLarge = fmt.Errorf("TLS report larger than MaxReportBytes (%d)", MaxReportBytes)

// The JSON of RFC 8460 §4.4, with the values kept raw where reporters
// differ in their types.
type jsonReport struct {
	OrganizationName string          `json:"organization-name"`
	DateRange        *jsonDateRange  `json:"date-range"`
	ContactInfo      string          `json:"contact-info"`
	ReportID         string          `json:"report-id"`
	Policies         []jsonPolicyRes `json:"policies"`
}

type jsonDateRange struct {
	Start string `json:"start-datetime"`
	End   string `json:"end-datetime"`
}

type jsonPolicyRes struct {
	Policy struct {
		Type   string          `json:"policy-type"`
		String json.RawMessage `json:"policy-string"`
		Domain string          `json:"policy-domain"`
		MXHost json.RawMessage `json:"mx-host"`
	} `json:"policy"`
	Summary struct {
		Successful json.RawMessage `json:"total-successful-session-count"`
		Failed     json.RawMessage `json:"total-failure-session-count"`
	} `json:"summary"`
	FailureDetails []jsonFailure `json:"failure-details"`
}

type jsonFailure struct {
	ResultType            string          `json:"result-type"`
	SendingMTAIP          string          `json:"sending-mta-ip"`
	ReceivingMXHostname   string          `json:"receiving-mx-hostname"`
	ReceivingMXHelo       string          `json:"receiving-mx-helo"`
	ReceivingIP           string          `json:"receiving-ip"`
	FailedSessions        json.RawMessage `json:"failed-session-count"`
	AdditionalInformation string          `json:"additional-information"`
	FailureReasonCode     string          `json:"failure-reason-code"`
}

// policyTypes are the policy-type values of RFC 8460 §4.4.
var policyTypes = []string{"sts", "tlsa", "no-policy-found"}

// resultTypes are the result-type values of RFC 8460 §4.3.
var resultTypes = []string{
	"starttls-not-supported", "certificate-host-mismatch", "certificate-expired", "certificate-not-trusted",
	"validation-failure", "tlsa-invalid", "dnssec-invalid", "dane-required",
	"sts-policy-fetch-error", "sts-policy-invalid", "sts-webpki-invalid",
}

// Parse reads one TLS report.
func Parse(r io.Reader) (*dmarcd.TLSReport, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxReportBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxReportBytes {
		return nil, ErrTooLarge
	}
	var j jsonReport
	dec := json.NewDecoder(bytes.NewReader(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))))
	if err := dec.Decode(&j); err != nil {
		return nil, fmt.Errorf("parsing TLS report: %w", err)
	}
	p := &parser{}
	rep := &dmarcd.TLSReport{
		OrganizationName: strings.TrimSpace(j.OrganizationName),
		ReportID:         strings.TrimSpace(j.ReportID),
		ContactInfo:      strings.TrimSpace(j.ContactInfo),
	}
	var missing []string
	if rep.OrganizationName == "" {
		missing = append(missing, "organization-name")
	}
	if rep.ReportID == "" {
		missing = append(missing, "report-id")
	}
	if j.DateRange == nil || j.DateRange.Start == "" || j.DateRange.End == "" {
		missing = append(missing, "date-range")
	}
	if len(j.Policies) == 0 {
		missing = append(missing, "policies")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("parsing TLS report: missing %s", strings.Join(missing, ", "))
	}
	if rep.DateBegin, err = p.time(j.DateRange.Start); err != nil {
		return nil, fmt.Errorf("parsing TLS report: start-datetime: %w", err)
	}
	if rep.DateEnd, err = p.time(j.DateRange.End); err != nil {
		return nil, fmt.Errorf("parsing TLS report: end-datetime: %w", err)
	}
	if len(j.Policies) > MaxPolicies {
		j.Policies = j.Policies[:MaxPolicies]
		p.tolerate("excess:policies")
	}
	for i, jp := range j.Policies {
		pol, err := p.policy(jp)
		if err != nil {
			return nil, fmt.Errorf("parsing TLS report: policy %d: %w", i+1, err)
		}
		rep.Policies = append(rep.Policies, pol)
	}
	rep.Tolerations = p.tolerations
	return rep, nil
}

type parser struct{ tolerations []string }

func (p *parser) tolerate(code string) {
	if !slices.Contains(p.tolerations, code) {
		p.tolerations = append(p.tolerations, code)
	}
}

func (p *parser) policy(jp jsonPolicyRes) (dmarcd.TLSPolicy, error) {
	pol := dmarcd.TLSPolicy{
		Type:   strings.ToLower(strings.TrimSpace(jp.Policy.Type)),
		Domain: strings.ToLower(strings.TrimSuffix(strings.TrimSpace(jp.Policy.Domain), ".")),
	}
	if !slices.Contains(policyTypes, pol.Type) {
		p.tolerate("unknown-policy-type")
	}
	var err error
	if pol.String, err = p.stringList(jp.Policy.String, "policy-string-string"); err != nil {
		return pol, fmt.Errorf("policy-string: %w", err)
	}
	if pol.MXHosts, err = p.stringList(jp.Policy.MXHost, "mx-host-string"); err != nil {
		return pol, fmt.Errorf("mx-host: %w", err)
	}
	if pol.SuccessfulSessions, err = p.count(jp.Summary.Successful); err != nil {
		return pol, fmt.Errorf("total-successful-session-count: %w", err)
	}
	if pol.FailedSessions, err = p.count(jp.Summary.Failed); err != nil {
		return pol, fmt.Errorf("total-failure-session-count: %w", err)
	}
	details := jp.FailureDetails
	if len(details) > MaxFailureDetails {
		details = details[:MaxFailureDetails]
		p.tolerate("excess:failure-details")
	}
	for i, jf := range details {
		f := dmarcd.TLSFailureDetail{
			ResultType:            strings.ToLower(strings.TrimSpace(jf.ResultType)),
			SendingMTAIP:          strings.TrimSpace(jf.SendingMTAIP),
			ReceivingMXHostname:   strings.ToLower(strings.TrimSuffix(strings.TrimSpace(jf.ReceivingMXHostname), ".")),
			ReceivingMXHelo:       strings.TrimSpace(jf.ReceivingMXHelo),
			ReceivingIP:           strings.TrimSpace(jf.ReceivingIP),
			AdditionalInformation: jf.AdditionalInformation,
			FailureReasonCode:     jf.FailureReasonCode,
		}
		if !slices.Contains(resultTypes, f.ResultType) {
			p.tolerate("unknown-result-type")
		}
		if f.FailedSessions, err = p.count(jf.FailedSessions); err != nil {
			return pol, fmt.Errorf("failure detail %d: failed-session-count: %w", i+1, err)
		}
		pol.FailureDetails = append(pol.FailureDetails, f)
	}
	return pol, nil
}

// time reads an RFC 3339 date-time; one without a zone is read as UTC.
func (p *parser) time(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			p.tolerate("time-without-zone")
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 3339 date-time", s)
}

// count reads a session count: a JSON number, or a number in a string;
// absent is 0.
func (p *parser) count(raw json.RawMessage) (int64, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	text := string(raw)
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, err
		}
		text = strings.TrimSpace(s)
		p.tolerate("number-as-string")
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(text, 64)
		if ferr != nil || f != float64(int64(f)) {
			return 0, fmt.Errorf("%s is not a count", text)
		}
		n = int64(f)
	}
	if n < 0 {
		p.tolerate("negative-count")
		n = 0
	}
	return n, nil
}

// stringList reads a list of strings, or one string (noted as code).
func (p *parser) stringList(raw json.RawMessage, code string) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		p.tolerate(code)
		return []string{s}, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, errors.New("not a list of strings")
	}
	return list, nil
}
