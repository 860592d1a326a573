package advisor

import (
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"strconv"
	"strings"

	"github.com/dmarcd/dmarcd"
)

// Record is a DMARC policy record (RFC 9989 §4.7), the TXT record at
// _dmarc.DOMAIN. String writes it; ParseDMARC reads it. Empty fields are
// tags the record does not carry (receivers then use the defaults: sp
// follows p, np follows sp, adkim and aspf are relaxed, fo is 0).
type Record struct {
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
func (r Record) String() string {
	parts := []string{"v=DMARC1"}
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
func (r Record) Step() dmarcd.RolloutStep {
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
func (r Record) SubdomainEffective() dmarcd.Policy {
	if r.SubdomainPolicy != "" {
		return r.SubdomainPolicy
	}
	return r.Policy
}

// NonexistentEffective is the policy of subdomains that do not exist: np,
// or sp, or p (RFC 9989 §4.7).
func (r Record) NonexistentEffective() dmarcd.Policy {
	if r.NonexistentPolicy != "" {
		return r.NonexistentPolicy
	}
	return r.SubdomainEffective()
}

// IsDMARC reports whether a TXT record is a DMARC record: its first tag is
// v=DMARC1 (RFC 9989 §4.7; other TXT records at _dmarc are discarded).
func IsDMARC(txt string) bool {
	first, _, _ := strings.Cut(txt, ";")
	name, value, ok := strings.Cut(first, "=")
	return ok && strings.EqualFold(strings.Trim(name, " \t"), "v") && strings.Trim(value, " \t") == "DMARC1"
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

// ParseDMARC reads a DMARC record. It returns ErrNotDMARC when txt does not
// start with v=DMARC1; otherwise the record, with what it understood, and
// findings about the rest: invalid values (errors), tags RFC 9989 removed
// or does not know, pct without t=y, a missing rua, sp or np weaker than p
// (warnings). The findings' Name is empty: the caller knows where the
// record lives.
func ParseDMARC(txt string) (*Record, []Finding, error) {
	if !IsDMARC(txt) {
		return nil, nil, ErrNotDMARC
	}
	r := &Record{}
	var fs []Finding
	finding := func(sev Severity, code, msg, advice string) {
		fs = append(fs, Finding{Severity: sev, Code: code, Message: msg, Advice: advice})
	}
	invalid := func(tag, value, want string) {
		finding(SeverityError, "dmarc-invalid-"+tag,
			fmt.Sprintf("%s=%s is not valid: want %s (RFC 9989 §4.7)", tag, value, want),
			"correct the value")
	}
	seen := map[string]bool{}
	var hasPolicy, hasRUA bool
	var invalidPolicy string
	for i, part := range strings.Split(txt, ";") {
		part = strings.Trim(part, " \t\r\n")
		if i == 0 || part == "" {
			continue
		}
		name, value, ok := strings.Cut(part, "=")
		if !ok {
			finding(SeverityWarning, "dmarc-syntax", fmt.Sprintf("%q is not a tag=value pair; receivers may reject the whole record", part),
				"separate tags with \";\" and write each as tag=value")
			continue
		}
		name = strings.ToLower(strings.Trim(name, " \t"))
		value = strings.Trim(value, " \t")
		if seen[name] {
			finding(SeverityWarning, "dmarc-duplicate-tag", fmt.Sprintf("the tag %s appears more than once; receivers may use either", name),
				"keep one")
		}
		seen[name] = true
		switch name {
		case "p", "sp", "np":
			p, ok := parseDMARCPolicy(value)
			switch {
			case !ok && name == "p":
				invalidPolicy = fmt.Sprintf("p=%s is not a policy (none, quarantine or reject)", value)
				continue
			case !ok && name == "sp":
				invalidPolicy = fmt.Sprintf("sp=%s is not a policy (none, quarantine or reject)", value)
				continue
			case !ok:
				invalid(name, value, "none, quarantine or reject")
				continue
			}
			switch name {
			case "p":
				r.Policy, hasPolicy = p, true
			case "sp":
				r.SubdomainPolicy = p
			default:
				r.NonexistentPolicy = p
			}
		case "adkim", "aspf":
			v := strings.ToLower(value)
			if v != "r" && v != "s" {
				invalid(name, value, "r (relaxed) or s (strict)")
				continue
			}
			if name == "adkim" {
				r.ADKIM = v
			} else {
				r.ASPF = v
			}
		case "rua", "ruf":
			uris, ufs := parseReportURIs(name, value)
			fs = append(fs, ufs...)
			if name == "rua" {
				r.RUA = uris
				hasRUA = len(uris) > 0
			} else {
				r.RUF = uris
			}
		case "fo":
			for _, o := range strings.Split(value, ":") {
				if o = strings.TrimSpace(o); o != "0" && o != "1" && o != "d" && o != "s" {
					invalid(name, value, "0, 1, d or s, separated by \":\"")
					break
				}
			}
			r.FailureOptions = value
		case "t":
			switch strings.ToLower(value) {
			case "y":
				r.Testing = true
			case "n":
			default:
				invalid(name, value, "y or n")
			}
		case "psd":
			v := strings.ToLower(value)
			if v != "y" && v != "n" && v != "u" {
				invalid(name, value, "y, n or u")
				continue
			}
			r.PSD = v
		case "pct":
			n, err := strconv.Atoi(value)
			if err != nil || n < 0 || n > 100 {
				finding(SeverityWarning, "dmarc-invalid-pct", fmt.Sprintf("pct=%s is not an integer 0..100 (RFC 7489 §6.3)", value), "remove pct")
				continue
			}
			r.Percent = &n
		case "rf":
			r.ReportFormat = value
			finding(SeverityWarning, "dmarc-removed-rf", "rf= was removed by RFC 9989 (failure reports use one format, RFC 9991); receivers ignore it", "remove rf")
		case "ri":
			n, err := strconv.Atoi(value)
			if err == nil {
				r.ReportInterval = &n
			}
			finding(SeverityWarning, "dmarc-removed-ri", "ri= was removed by RFC 9989; reporters send aggregate reports daily whatever it says", "remove ri")
		case "v":
			finding(SeverityWarning, "dmarc-duplicate-tag", "v= appears again after the start of the record", "keep only the first v=DMARC1")
		default:
			r.Unknown = append(r.Unknown, DMARCTag{Name: name, Value: value})
			finding(SeverityWarning, "dmarc-unknown-tag", fmt.Sprintf("unknown tag %s=%s: receivers ignore it (RFC 9989 §4.7)", name, value),
				"check its spelling (p, sp, np, t, psd, adkim, aspf, rua, ruf, fo), or remove it")
		}
	}
	noDMARC := ""
	if !hasRUA {
		noDMARC = ", and as it has no valid rua= they apply no DMARC at all"
	}
	switch {
	case invalidPolicy != "":
		r.ActsAsNone = invalidPolicy
		code := "dmarc-invalid-p"
		if strings.HasPrefix(invalidPolicy, "sp=") {
			code = "dmarc-invalid-sp"
		}
		finding(SeverityError, code, fmt.Sprintf("%s: receivers then treat the whole record as p=none (RFC 7489 §6.6.3), whatever its other tags say%s: no mail is quarantined or rejected", invalidPolicy, noDMARC),
			"correct the value")
	case !hasPolicy:
		r.ActsAsNone = "the record has no p="
		finding(SeverityWarning, "dmarc-missing-p", fmt.Sprintf("the record has no p= tag: receivers treat it as p=none (RFC 7489 §6.6.3, RFC 9989 §4.7)%s", noDMARC),
			"add p=none (or the policy of your rollout step)")
	}
	if !hasRUA {
		finding(SeverityWarning, "dmarc-missing-rua", "the record has no valid rua=: no aggregate reports are sent, so nothing shows which mail would fail a stricter policy",
			"add rua=mailto:ADDRESS of the mailbox dmarcd reads")
	}
	if r.Percent != nil {
		switch {
		case *r.Percent < 100 && (r.Policy == dmarcd.PolicyQuarantine || r.Policy == dmarcd.PolicyReject) && !r.Testing:
			finding(SeverityWarning, "dmarc-pct-without-t",
				fmt.Sprintf("pct=%d without t=y: RFC 9989 receivers ignore pct and apply p=%s to ALL failing mail, not %d%% of it", *r.Percent, r.Policy, *r.Percent),
				"add t=y while pct is below 100 (RFC 9989 receivers then apply the next lower policy), and remove both at 100")
		case *r.Percent == 100:
			finding(SeverityInfo, "dmarc-pct-100", "pct=100 is the default, and RFC 9989 removed pct", "remove pct")
		default:
			finding(SeverityInfo, "dmarc-pct", fmt.Sprintf("pct=%d is read only by RFC 7489 receivers; RFC 9989 receivers ignore it and read t=", *r.Percent), "")
		}
	}
	if hasPolicy && invalidPolicy == "" {
		if sp := r.SubdomainEffective(); dmarcPolicyRank(sp) < dmarcPolicyRank(r.Policy) {
			finding(SeverityWarning, "dmarc-weak-sp",
				fmt.Sprintf("sp=%s is weaker than p=%s: mail forged from any subdomain gets the weaker policy", sp, r.Policy),
				"remove sp (subdomains then follow p), unless subdomains still send mail that fails DMARC")
		}
		if np := r.NonexistentEffective(); r.NonexistentPolicy != "" && dmarcPolicyRank(np) < dmarcPolicyRank(r.SubdomainEffective()) {
			finding(SeverityWarning, "dmarc-weak-np",
				fmt.Sprintf("np=%s is weaker than the policy of existing subdomains (%s): names that do not exist never send legitimate mail", np, r.SubdomainEffective()),
				"remove np, or set np=reject")
		}
	}
	if r.FailureOptions != "" && len(r.RUF) == 0 {
		finding(SeverityInfo, "dmarc-fo-without-ruf", "fo= only matters with ruf=: no failure reports are requested", "")
	}
	return r, fs, nil
}

// parseDMARCPolicy reads none, quarantine or reject (case-insensitive).
func parseDMARCPolicy(s string) (dmarcd.Policy, bool) {
	switch p := dmarcd.Policy(strings.ToLower(s)); p {
	case dmarcd.PolicyNone, dmarcd.PolicyQuarantine, dmarcd.PolicyReject:
		return p, true
	}
	return "", false
}

// dmarcPolicyRank orders the policies: none < quarantine < reject.
func dmarcPolicyRank(p dmarcd.Policy) int {
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

// mailtoURIs writes report addresses as mailto: URIs; URIs are kept.
func mailtoURIs(addrs []string) []string {
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
