package dnsrecord

import (
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"strconv"
	"strings"

	"github.com/dmarcd/dmarcd"
)

// DMARCVersion is the v= a DMARC record starts with (RFC 9989 §4.7); it is
// case-sensitive.
const DMARCVersion = "DMARC1"

// DMARCRecord is a DMARC policy record (RFC 9989 §4.7), the TXT record at
// _dmarc.DOMAIN. String writes it; ParseDMARC reads it. Empty fields are
// tags the record does not carry (receivers then use the defaults: sp
// follows p, np follows sp, adkim and aspf are relaxed, fo is 0).
type DMARCRecord struct {
	// Policy is p. A record without p is read by RFC 9989 receivers as
	// p=none when it has a valid rua, and ignored otherwise.
	Policy dmarcd.Policy `json:"p,omitempty"`
	// SubdomainPolicy is sp: the policy of subdomains, "" to follow p.
	SubdomainPolicy dmarcd.Policy `json:"sp,omitempty"`
	// NonexistentPolicy is np (RFC 9989): the policy of subdomains that
	// do not exist in DNS, "" to follow sp.
	NonexistentPolicy dmarcd.Policy `json:"np,omitempty"`
	// Percent is pct, the share of failing mail the policy applies to
	// (RFC 7489 §6.3). RFC 9989 removed it: its receivers ignore it and
	// read Testing instead, so a record with pct below 100 must carry
	// t=y. nil when absent.
	Percent *int `json:"pct,omitempty"`
	// Testing is t=y (RFC 9989): the policy is being tested, and
	// receivers apply the next lower policy (reject as quarantine,
	// quarantine as none).
	Testing bool `json:"t,omitempty"`
	// PSD is psd (RFC 9989): "y" for a public suffix domain, "n" for an
	// organizational domain, "u" or "" for neither said.
	PSD string `json:"psd,omitempty"`
	// ADKIM and ASPF are the alignment modes: "r" (relaxed, the default)
	// or "s" (strict).
	ADKIM string `json:"adkim,omitempty"`
	ASPF  string `json:"aspf,omitempty"`
	// RUA and RUF are the report addresses as URIs, for example
	// "mailto:dmarc@example.com".
	RUA []string `json:"rua,omitempty"`
	RUF []string `json:"ruf,omitempty"`
	// FailureOptions is fo: "0", "1", "d", "s" or a colon-separated list.
	FailureOptions string `json:"fo,omitempty"`
	// ReportFormat (rf) and ReportInterval (ri, seconds) are RFC 7489
	// tags RFC 9989 removed; kept to be written back as found.
	ReportFormat   string `json:"rf,omitempty"`
	ReportInterval *int   `json:"ri,omitempty"`
	// Unknown are the tags this package does not know, in record order.
	Unknown []DMARCTag `json:"unknown,omitempty"`
	// ActsAsNone says why receivers treat the record as p=none, whatever
	// its policies say: p is missing or not valid, or sp is not valid
	// (RFC 7489 §6.6.3; RFC 9989 keeps the rule for p). Without a valid
	// rua they apply no DMARC at all. "" when the policies are valid.
	ActsAsNone string `json:"acts_as_none,omitempty"`
}

// DMARCTag is one tag=value of a DMARC record.
type DMARCTag struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// String writes the record in a stable tag order: v, p, sp, np, pct, t,
// psd, adkim, aspf, rua, ruf, fo, rf, ri, then unknown tags.
func (r DMARCRecord) String() string {
	parts := []string{"v=" + DMARCVersion}
	add := func(name, value string) {
		if value != "" {
			parts = append(parts, name+"="+value)
		}
	}
	add("p", string(r.Policy))
	add("sp", string(r.SubdomainPolicy))
	add("np", string(r.NonexistentPolicy))
	if r.Percent != nil {
		add("pct", strconv.Itoa(*r.Percent))
	}
	if r.Testing {
		add("t", "y")
	}
	add("psd", r.PSD)
	add("adkim", r.ADKIM)
	add("aspf", r.ASPF)
	add("rua", strings.Join(r.RUA, ","))
	add("ruf", strings.Join(r.RUF, ","))
	add("fo", r.FailureOptions)
	add("rf", r.ReportFormat)
	if r.ReportInterval != nil {
		add("ri", strconv.Itoa(*r.ReportInterval))
	}
	for _, t := range r.Unknown {
		add(t.Name, t.Value)
	}
	return strings.Join(parts, "; ")
}

// Step is the rollout step the record is at: p and pct (100 when absent,
// RFC 7489 §6.3). A record without p, with p=none, or that acts as p=none
// (ActsAsNone), is at none.
func (r DMARCRecord) Step() dmarcd.RolloutStep {
	if r.ActsAsNone != "" || r.Policy != dmarcd.PolicyQuarantine && r.Policy != dmarcd.PolicyReject {
		return dmarcd.RolloutStep{Policy: dmarcd.PolicyNone, Percent: 100}
	}
	pct := 100
	if r.Percent != nil {
		pct = *r.Percent
	}
	return dmarcd.RolloutStep{Policy: r.Policy, Percent: pct}
}

// SubdomainEffective is the policy of existing subdomains: sp, or p.
func (r DMARCRecord) SubdomainEffective() dmarcd.Policy {
	if r.SubdomainPolicy != "" {
		return r.SubdomainPolicy
	}
	return r.Policy
}

// NonexistentEffective is the policy of subdomains that do not exist: np,
// or sp, or p (RFC 9989 §4.7).
func (r DMARCRecord) NonexistentEffective() dmarcd.Policy {
	if r.NonexistentPolicy != "" {
		return r.NonexistentPolicy
	}
	return r.SubdomainEffective()
}

// dmarcVersionTag splits the first tag of a TXT record, which a DMARC
// record must start with.
func dmarcVersionTag(txt string) (name, value string, ok bool) {
	first, _, _ := strings.Cut(txt, ";")
	name, value, ok = strings.Cut(first, "=")
	return strings.Trim(name, " \t"), strings.Trim(value, " \t"), ok
}

// IsDMARC reports whether a TXT record is a DMARC record: its first tag is
// v=DMARC1 (RFC 9989 §4.7; other TXT records at _dmarc are discarded). The
// tag name matches any case, the version only DMARC1.
func IsDMARC(txt string) bool {
	name, value, ok := dmarcVersionTag(txt)
	return ok && strings.EqualFold(name, "v") && value == DMARCVersion
}

// WhyNotDMARC says why a TXT record is not a DMARC record ("" when it is
// one).
func WhyNotDMARC(txt string) string {
	name, value, ok := dmarcVersionTag(txt)
	switch {
	case IsDMARC(txt):
		return ""
	case !ok:
		return "a DMARC record starts with the tag v=DMARC1 (RFC 9989 §4.7)"
	case !strings.EqualFold(name, "v"):
		return fmt.Sprintf("its first tag is %s=, and a DMARC record starts with v=DMARC1 (RFC 9989 §4.7)", name)
	case strings.EqualFold(value, DMARCVersion):
		return fmt.Sprintf("v=%s is not v=DMARC1: the version is case-sensitive (RFC 9989 §4.7)", value)
	}
	return fmt.Sprintf("v=%s is not v=DMARC1 (RFC 9989 §4.7)", value)
}

// SelectDMARC returns the DMARC records among the TXT records of a name.
// More than one means none applies (RFC 9989 §4.8).
func SelectDMARC(txts []string) []string {
	var out []string
	for _, t := range txts {
		if IsDMARC(t) {
			out = append(out, t)
		}
	}
	return out
}

// ErrNotDMARC is the error of ParseDMARC for text that is not a DMARC
// record.
var ErrNotDMARC = errors.New("not a DMARC record: the first tag must be v=DMARC1 (RFC 9989 §4.7)")

// dmarcTagRule reads the value of one tag into the record and returns the
// findings about it. tag is the tag's name in lower case.
type dmarcTagRule func(rec *DMARCRecord, tag, value string) []Finding

// dmarcTagRules are the tags of RFC 9989 §4.7, with RFC 7489's pct, rf and
// ri (RFC 7489 §6.3), each with its rule. Tags not here are unknown.
var dmarcTagRules = map[string]dmarcTagRule{
	"p":     readDMARCPolicy,
	"sp":    readDMARCPolicy,
	"np":    readDMARCPolicy,
	"adkim": readDMARCAlignment,
	"aspf":  readDMARCAlignment,
	"rua":   readDMARCReportURIs,
	"ruf":   readDMARCReportURIs,
	"fo":    readDMARCFailureOptions,
	"t":     readDMARCTesting,
	"psd":   readDMARCPSD,
	"pct":   readDMARCPercent,
	"rf":    readDMARCReportFormat,
	"ri":    readDMARCReportInterval,
	"v":     readDMARCVersionAgain,
}

// ParseDMARC reads a DMARC record. It returns ErrNotDMARC when txt does not
// start with v=DMARC1; otherwise the record, with what it understood, and
// findings about the rest: invalid values (errors), tags RFC 9989 removed
// or does not know, pct without t=y, a missing rua, sp or np weaker than p
// (warnings). The findings' Name is empty: the caller knows where the
// record lives.
//
// The record is a tag-list (RFC 6376 §3.2) whose names match any case.
// Receivers differ in how they take a malformed list, so a tag-spec
// without "=" or a repeated tag is a warning, and empty tag-specs pass.
func ParseDMARC(txt string) (*DMARCRecord, []Finding, error) {
	if !IsDMARC(txt) {
		return nil, nil, ErrNotDMARC
	}
	rec := &DMARCRecord{}
	var fs []Finding
	// The tags after v=DMARC1: a repeated v= is its rule's to report.
	_, rest, _ := strings.Cut(txt, ";")
	tags, problems := ScanTags(rest, TagOptions{FoldCase: true})
	for _, t := range tags {
		for len(problems) > 0 && problems[0].Index <= t.Index {
			fs = append(fs, dmarcTagProblem(problems[0])...)
			problems = problems[1:]
		}
		rule, ok := dmarcTagRules[t.Name]
		if !ok {
			rule = readDMARCUnknown
		}
		fs = append(fs, rule(rec, t.Name, t.Value)...)
	}
	for _, p := range problems {
		fs = append(fs, dmarcTagProblem(p)...)
	}
	return rec, append(fs, dmarcRecordFindings(rec)...), nil
}

// dmarcTagProblem turns a tag-list problem into findings. An empty
// tag-spec, a bad name (an unknown tag) or a bad value (an invalid value)
// gives none here.
func dmarcTagProblem(p TagProblem) []Finding {
	switch p.Kind {
	case TagNoValue:
		return []Finding{{Severity: SeverityWarning, Code: "dmarc-syntax",
			Message: fmt.Sprintf("%q is not a tag=value pair; receivers may reject the whole record", p.Text),
			Advice:  "separate tags with \";\" and write each as tag=value"}}
	case TagDuplicate:
		return []Finding{{Severity: SeverityWarning, Code: "dmarc-duplicate-tag",
			Message: fmt.Sprintf("the tag %s appears more than once; receivers may use either", p.Name),
			Advice:  "keep one"}}
	}
	return nil
}

// dmarcInvalid is the finding of a value its tag does not allow.
func dmarcInvalid(tag, value, want string) []Finding {
	return []Finding{{Severity: SeverityError, Code: "dmarc-invalid-" + tag,
		Message: fmt.Sprintf("%s=%s is not valid: want %s (RFC 9989 §4.7)", tag, value, want),
		Advice:  "correct the value"}}
}

// readDMARCPolicy reads p, sp and np: none, quarantine or reject, in any
// case. An invalid p or sp makes receivers treat the record as p=none
// (RFC 7489 §6.6.3): ActsAsNone says so, and dmarcRecordFindings reports
// it once.
func readDMARCPolicy(rec *DMARCRecord, tag, value string) []Finding {
	p, ok := parseDMARCPolicy(value)
	switch {
	case !ok && tag == "np":
		return dmarcInvalid(tag, value, "none, quarantine or reject")
	case !ok:
		rec.ActsAsNone = fmt.Sprintf("%s=%s is not a policy (none, quarantine or reject)", tag, value)
	case tag == "p":
		rec.Policy = p
	case tag == "sp":
		rec.SubdomainPolicy = p
	default:
		rec.NonexistentPolicy = p
	}
	return nil
}

// readDMARCAlignment reads adkim and aspf: r (relaxed) or s (strict).
func readDMARCAlignment(rec *DMARCRecord, tag, value string) []Finding {
	v := strings.ToLower(value)
	if v != "r" && v != "s" {
		return dmarcInvalid(tag, value, "r (relaxed) or s (strict)")
	}
	if tag == "adkim" {
		rec.ADKIM = v
	} else {
		rec.ASPF = v
	}
	return nil
}

// readDMARCReportURIs reads rua and ruf: comma-separated URIs, of which
// only valid mailto: ones are kept.
func readDMARCReportURIs(rec *DMARCRecord, tag, value string) []Finding {
	uris, fs := parseReportURIs(tag, value)
	if tag == "rua" {
		rec.RUA = uris
	} else {
		rec.RUF = uris
	}
	return fs
}

// readDMARCFailureOptions reads fo: 0, 1, d or s, separated by ":". The
// value is kept as written even when invalid.
func readDMARCFailureOptions(rec *DMARCRecord, tag, value string) []Finding {
	rec.FailureOptions = value
	for _, o := range strings.Split(value, ":") {
		if o = strings.TrimSpace(o); o != "0" && o != "1" && o != "d" && o != "s" {
			return dmarcInvalid(tag, value, "0, 1, d or s, separated by \":\"")
		}
	}
	return nil
}

// readDMARCTesting reads t: y or n (RFC 9989).
func readDMARCTesting(rec *DMARCRecord, tag, value string) []Finding {
	switch strings.ToLower(value) {
	case "y":
		rec.Testing = true
	case "n":
	default:
		return dmarcInvalid(tag, value, "y or n")
	}
	return nil
}

// readDMARCPSD reads psd: y, n or u (RFC 9989).
func readDMARCPSD(rec *DMARCRecord, tag, value string) []Finding {
	v := strings.ToLower(value)
	if v != "y" && v != "n" && v != "u" {
		return dmarcInvalid(tag, value, "y, n or u")
	}
	rec.PSD = v
	return nil
}

// readDMARCPercent reads pct, an integer 0..100 (RFC 7489 §6.3).
func readDMARCPercent(rec *DMARCRecord, _, value string) []Finding {
	n, err := strconv.Atoi(value)
	if err != nil || n < 0 || n > 100 {
		return []Finding{{Severity: SeverityWarning, Code: "dmarc-invalid-pct",
			Message: fmt.Sprintf("pct=%s is not an integer 0..100 (RFC 7489 §6.3)", value), Advice: "remove pct"}}
	}
	rec.Percent = &n
	return nil
}

// readDMARCReportFormat keeps rf, which RFC 9989 removed.
func readDMARCReportFormat(rec *DMARCRecord, _, value string) []Finding {
	rec.ReportFormat = value
	return []Finding{{Severity: SeverityWarning, Code: "dmarc-removed-rf",
		Message: "rf= was removed by RFC 9989 (failure reports use one format, RFC 9991); receivers ignore it", Advice: "remove rf"}}
}

// readDMARCReportInterval keeps ri, which RFC 9989 removed.
func readDMARCReportInterval(rec *DMARCRecord, _, value string) []Finding {
	if n, err := strconv.Atoi(value); err == nil {
		rec.ReportInterval = &n
	}
	return []Finding{{Severity: SeverityWarning, Code: "dmarc-removed-ri",
		Message: "ri= was removed by RFC 9989; reporters send aggregate reports daily whatever it says", Advice: "remove ri"}}
}

// readDMARCVersionAgain: v= belongs only at the start (RFC 9989 §4.7).
func readDMARCVersionAgain(*DMARCRecord, string, string) []Finding {
	return []Finding{{Severity: SeverityWarning, Code: "dmarc-duplicate-tag",
		Message: "v= appears again after the start of the record", Advice: "keep only the first v=DMARC1"}}
}

// readDMARCUnknown keeps a tag this package does not know; receivers
// ignore it (RFC 9989 §4.7).
func readDMARCUnknown(rec *DMARCRecord, tag, value string) []Finding {
	rec.Unknown = append(rec.Unknown, DMARCTag{Name: tag, Value: value})
	return []Finding{{Severity: SeverityWarning, Code: "dmarc-unknown-tag",
		Message: fmt.Sprintf("unknown tag %s=%s: receivers ignore it (RFC 9989 §4.7)", tag, value),
		Advice:  "check its spelling (p, sp, np, t, psd, adkim, aspf, rua, ruf, fo), or remove it"}}
}

// dmarcRecordFindings are the findings about the record as a whole, once
// its tags are read: an invalid or missing policy, a missing rua, pct
// without t=y, sp or np weaker than p, fo without ruf.
func dmarcRecordFindings(rec *DMARCRecord) []Finding {
	var fs []Finding
	finding := func(sev Severity, code, msg, advice string) {
		fs = append(fs, Finding{Severity: sev, Code: code, Message: msg, Advice: advice})
	}
	hasRUA := len(rec.RUA) > 0
	noDMARC := ""
	if !hasRUA {
		noDMARC = ", and as it has no valid rua= they apply no DMARC at all"
	}
	invalidPolicy := rec.ActsAsNone != ""
	switch {
	case invalidPolicy:
		code := "dmarc-invalid-p"
		if strings.HasPrefix(rec.ActsAsNone, "sp=") {
			code = "dmarc-invalid-sp"
		}
		finding(SeverityError, code, fmt.Sprintf("%s: receivers then treat the whole record as p=none (RFC 7489 §6.6.3), whatever its other tags say%s: no mail is quarantined or rejected", rec.ActsAsNone, noDMARC),
			"correct the value")
	case rec.Policy == "":
		rec.ActsAsNone = "the record has no p="
		finding(SeverityWarning, "dmarc-missing-p", fmt.Sprintf("the record has no p= tag: receivers treat it as p=none (RFC 7489 §6.6.3, RFC 9989 §4.7)%s", noDMARC),
			"add p=none (or the policy of your rollout step)")
	}
	if !hasRUA {
		finding(SeverityWarning, "dmarc-missing-rua", "the record has no valid rua=: no aggregate reports are sent, so nothing shows which mail would fail a stricter policy",
			"add rua=mailto:ADDRESS of the mailbox dmarcd reads")
	}
	if rec.Percent != nil {
		switch {
		case *rec.Percent < 100 && (rec.Policy == dmarcd.PolicyQuarantine || rec.Policy == dmarcd.PolicyReject) && !rec.Testing:
			finding(SeverityWarning, "dmarc-pct-without-t",
				fmt.Sprintf("pct=%d without t=y: RFC 9989 receivers ignore pct and apply p=%s to ALL failing mail, not %d%% of it", *rec.Percent, rec.Policy, *rec.Percent),
				"add t=y while pct is below 100 (RFC 9989 receivers then apply the next lower policy), and remove both at 100")
		case *rec.Percent == 100:
			finding(SeverityInfo, "dmarc-pct-100", "pct=100 is the default, and RFC 9989 removed pct", "remove pct")
		default:
			finding(SeverityInfo, "dmarc-pct", fmt.Sprintf("pct=%d is read only by RFC 7489 receivers; RFC 9989 receivers ignore it and read t=", *rec.Percent), "")
		}
	}
	if rec.Policy != "" && !invalidPolicy {
		if sp := rec.SubdomainEffective(); PolicyRank(sp) < PolicyRank(rec.Policy) {
			finding(SeverityWarning, "dmarc-weak-sp",
				fmt.Sprintf("sp=%s is weaker than p=%s: mail forged from any subdomain gets the weaker policy", sp, rec.Policy),
				"remove sp (subdomains then follow p), unless subdomains still send mail that fails DMARC")
		}
		if np := rec.NonexistentEffective(); rec.NonexistentPolicy != "" && PolicyRank(np) < PolicyRank(rec.SubdomainEffective()) {
			finding(SeverityWarning, "dmarc-weak-np",
				fmt.Sprintf("np=%s is weaker than the policy of existing subdomains (%s): names that do not exist never send legitimate mail", np, rec.SubdomainEffective()),
				"remove np, or set np=reject")
		}
	}
	if rec.FailureOptions != "" && len(rec.RUF) == 0 {
		finding(SeverityInfo, "dmarc-fo-without-ruf", "fo= only matters with ruf=: no failure reports are requested", "")
	}
	return fs
}

// parseDMARCPolicy reads none, quarantine or reject (case-insensitive).
func parseDMARCPolicy(s string) (dmarcd.Policy, bool) {
	switch p := dmarcd.Policy(strings.ToLower(s)); p {
	case dmarcd.PolicyNone, dmarcd.PolicyQuarantine, dmarcd.PolicyReject:
		return p, true
	}
	return "", false
}

// PolicyRank orders the policies by what they do to failing mail: none
// (0) < quarantine (1) < reject (2); anything else ranks as none.
func PolicyRank(p dmarcd.Policy) int {
	switch p {
	case dmarcd.PolicyQuarantine:
		return 1
	case dmarcd.PolicyReject:
		return 2
	}
	return 0
}

// parseReportURIs reads the comma-separated URIs of rua or ruf. Invalid
// URIs are left out (reporters skip them) with a warning.
func parseReportURIs(tag, value string) ([]string, []Finding) {
	var uris []string
	var fs []Finding
	for _, u := range strings.Split(value, ",") {
		u = strings.TrimSpace(u)
		if u == "" {
			continue
		}
		if _, size, ok := strings.Cut(u, "!"); ok {
			fs = append(fs, Finding{Severity: SeverityInfo, Code: "dmarc-uri-size",
				Message: fmt.Sprintf("%s: RFC 7489 reporters keep reports to this address under %s (RFC 7489 §6.2); RFC 9989 dropped the size limit, and its reporters ignore it", u, size)})
		}
		if _, err := ReportAddress(u); err != nil {
			fs = append(fs, Finding{Severity: SeverityWarning, Code: "dmarc-invalid-uri",
				Message: fmt.Sprintf("%s=%s: %v; reporters skip it", tag, u, err),
				Advice:  "write it as mailto:ADDRESS"})
			continue
		}
		uris = append(uris, u)
	}
	return uris, fs
}

// ReportAddress returns the mail address of a mailto: report URI, without
// its size limit (!10m, RFC 7489 §6.2).
func ReportAddress(uri string) (string, error) {
	uri, _, _ = strings.Cut(uri, "!")
	u, err := url.Parse(uri)
	if err != nil {
		return "", fmt.Errorf("malformed URI %q", uri)
	}
	if !strings.EqualFold(u.Scheme, "mailto") {
		if u.Scheme == "" {
			return "", fmt.Errorf("%q has no scheme: write mailto:%s", uri, uri)
		}
		return "", fmt.Errorf("%q: reports are sent by mail; use a mailto: URI", uri)
	}
	addr := u.Opaque
	if addr == "" {
		addr = u.Path
	}
	addr, err = url.PathUnescape(addr)
	if err != nil {
		return "", fmt.Errorf("malformed URI %q: %v", uri, err)
	}
	a, err := mail.ParseAddress(addr)
	if err != nil || a.Address != addr || !strings.Contains(addr, "@") {
		return "", fmt.Errorf("%q is not a mail address", addr)
	}
	return addr, nil
}

// MailtoURIs writes report addresses as mailto: URIs; URIs are kept.
func MailtoURIs(addrs []string) []string {
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if !strings.Contains(a, ":") {
			a = "mailto:" + a
		}
		out = append(out, a)
	}
	return out
}
