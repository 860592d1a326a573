package advisor

import (
	"context"
	"fmt"
	"strings"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/internal/dnsrecord"
)

// Limits of the DNS tree walk (RFC 9989 §4.10).
const (
	// TreeWalkMaxQueries: the walk asks at most 8 names: the domain
	// itself, then at most 7 ancestors.
	TreeWalkMaxQueries = 8
	// treeWalkShortcutLabels: from a name of 8 labels or more, the walk
	// jumps to the last 7 labels, then removes one label at a time.
	treeWalkShortcutLabels = 7
)

// TreeWalkTargets returns the domains the DNS tree walk of RFC 9989 §4.10
// queries (each as _dmarc.TARGET), in order: the domain itself; then, with
// x its number of labels, the domain without its left-most label when
// x < 8, or its last 7 labels when x >= 8; then one label less each time,
// down to a single label. For "a.b.c.d.e.f.g.h.example.com" that is the
// domain, then "d.e.f.g.h.example.com", "e.f.g.h.example.com", ... "com":
// 8 queries at most.
func TreeWalkTargets(domain string) []string {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	if domain == "" {
		return nil
	}
	labels := strings.Split(domain, ".")
	targets := []string{domain}
	x := len(labels)
	if x >= treeWalkShortcutLabels+1 {
		x = treeWalkShortcutLabels
	} else {
		x--
	}
	for ; x >= 1 && len(targets) < TreeWalkMaxQueries; x-- {
		targets = append(targets, strings.Join(labels[len(labels)-x:], "."))
	}
	return targets
}

// WalkStep is one query of the tree walk.
type WalkStep struct {
	// Domain is the target; the query is for _dmarc.Domain.
	Domain string `json:"domain"`
	// Records are the DMARC records found there (more than one: none
	// applies, RFC 9989 §4.8).
	Records []string `json:"records,omitempty"`
	// Error is the DNS failure that stopped the walk here.
	Error string `json:"error,omitempty"`
}

// Discovery is the result of DMARC policy discovery for a domain.
type Discovery struct {
	// Domain is the domain asked about (an RFC5322.From domain).
	Domain string `json:"domain"`
	// Record is the policy record that applies to Domain, nil when none;
	// Text is that record as published.
	Record *dnsrecord.DMARCRecord `json:"record,omitempty"`
	Text   string                 `json:"text,omitempty"`
	// PolicyDomain is where Record was found: Domain itself, or the
	// nearest ancestor with a record (then sp applies to Domain, or np
	// when Domain does not exist).
	PolicyDomain string `json:"policy_domain,omitempty"`
	// OrgDomain is the organizational domain of Domain (RFC 9989 §4.10):
	// the domain of a record with psd=n; else the domain one label below
	// a record with psd=y; else the domain of the record with the fewest
	// labels; else Domain itself.
	OrgDomain string `json:"org_domain"`
	// Steps are the queries in order.
	Steps    []WalkStep `json:"steps"`
	Findings []Finding  `json:"findings,omitempty"`
}

// Applied is the policy Record applies to Domain as an existing name: p
// at the policy domain itself, sp (or p) below it.
func (d *Discovery) Applied() dmarcd.Policy {
	switch {
	case d.Record == nil:
		return ""
	case d.Record.ActsAsNone != "" && len(d.Record.RUA) == 0:
		return "" // no DMARC at all (RFC 7489 §6.6.3)
	case d.Record.ActsAsNone != "":
		return dmarcd.PolicyNone
	case d.PolicyDomain == d.Domain:
		return d.Record.Policy
	}
	return d.Record.SubdomainEffective()
}

// Discover finds the DMARC policy of domain by the DNS tree walk of RFC
// 9989 §4.10. At each target, TXT records that are not DMARC records are
// discarded, and several DMARC records count as none (§4.8). The walk
// stops at a record with psd=n, at a record with psd=y above the domain,
// or after the last target. The policy record is the first one found
// (the domain's own, or its nearest ancestor's).
//
// A DNS failure other than NXDOMAIN stops the walk: Discover returns what
// it found so far and an error wrapping ErrTemporary, since a receiver
// could not decide either.
func Discover(ctx context.Context, r DNS, domain string) (*Discovery, error) {
	domain = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(domain), "."))
	d := &Discovery{Domain: domain, OrgDomain: domain}
	type found struct {
		domain string
		text   string
		rec    *dnsrecord.DMARCRecord
	}
	var records []found
	for i, target := range TreeWalkTargets(domain) {
		name := "_dmarc." + target
		step := WalkStep{Domain: target}
		txts, err := r.TXT(ctx, name)
		if err != nil && !IsNotFound(err) {
			step.Error = err.Error()
			d.Steps = append(d.Steps, step)
			return d, fmt.Errorf("DMARC policy discovery for %s stopped at %s: %w", domain, name, err)
		}
		step.Records = dnsrecord.SelectDMARC(txts)
		d.Steps = append(d.Steps, step)
		for _, txt := range txts {
			if !dnsrecord.IsDMARC(txt) {
				d.Findings = append(d.Findings, Finding{Severity: SeverityWarning, Code: "dmarc-not-a-record", Name: name,
					Message: fmt.Sprintf("%s holds the TXT record %q, which receivers ignore: %s", name, clipText(txt, 120), dnsrecord.WhyNotDMARC(txt)),
					Advice:  "start it with v=DMARC1 if it is meant as the DMARC record, or delete it"})
			}
		}
		switch len(step.Records) {
		case 0:
			continue
		case 1:
		default:
			d.Findings = append(d.Findings, Finding{Severity: SeverityError, Code: "dmarc-multiple", Name: name,
				Message: fmt.Sprintf("%s has %d DMARC records, so none of them applies (RFC 9989 §4.8): %s", name, len(step.Records), strings.Join(quotedList(step.Records), ", ")),
				Advice:  "keep one record and delete the others"})
			continue
		}
		rec, _, err := dnsrecord.ParseDMARC(step.Records[0])
		if err != nil {
			continue
		}
		records = append(records, found{target, step.Records[0], rec})
		if rec.PSD == "n" || (rec.PSD == "y" && i > 0) {
			break
		}
	}
	if len(records) == 0 {
		return d, nil
	}
	policy := records[0]
	d.Record, d.Text, d.PolicyDomain = policy.rec, policy.text, policy.domain
	last := records[len(records)-1]
	switch {
	case last.rec.PSD == "n":
		d.OrgDomain = last.domain
	case last.rec.PSD == "y" && last.domain != domain:
		// The organizational domain is one label below the public suffix
		// domain, on the way to Domain.
		n := strings.Count(last.domain, ".") + 2
		labels := strings.Split(domain, ".")
		d.OrgDomain = strings.Join(labels[len(labels)-n:], ".")
	default:
		d.OrgDomain = last.domain
	}
	if d.PolicyDomain != domain {
		d.Findings = append(d.Findings, Finding{Severity: SeverityInfo, Code: "dmarc-inherited", Name: "_dmarc." + domain,
			Message: fmt.Sprintf("%s publishes no DMARC record; the record of %s applies, with %s for it", domain, d.PolicyDomain, subdomainPolicyText(d.Record)),
			Advice:  "publish a record at _dmarc." + domain + " to give it its own policy and reports"})
	}
	return d, nil
}

// clipText bounds a DNS text for a message.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func subdomainPolicyText(r *dnsrecord.DMARCRecord) string {
	if r.SubdomainPolicy != "" {
		return "sp=" + string(r.SubdomainPolicy)
	}
	return "p=" + string(r.Policy) + " (no sp=)"
}

// LookupDMARC returns a function that reads the DMARC record that applies
// to a domain by policy discovery: the record as published, "" when none.
// It fits the advisor's RecordLookup.
func LookupDMARC(r DNS) func(ctx context.Context, domain string) (string, error) {
	return func(ctx context.Context, domain string) (string, error) {
		d, err := Discover(ctx, r, domain)
		if err != nil {
			return "", err
		}
		return d.Text, nil
	}
}

// ReportAuthorization is whether a report address in another organization
// accepts the reports of a domain (RFC 7489 §7.1, "Verifying External
// Destinations", kept by RFC 9989's reporting documents).
type ReportAuthorization struct {
	URI     string `json:"uri"`
	Address string `json:"address"`
	// ReportDomain is the domain of the address.
	ReportDomain string `json:"report_domain"`
	// External is true when ReportDomain is in another organizational
	// domain than the domain whose record names it.
	External bool `json:"external"`
	// Name is DOMAIN._report._dmarc.REPORTDOMAIN, which must hold a
	// v=DMARC1 record when External.
	Name       string   `json:"name,omitempty"`
	Authorized bool     `json:"authorized"`
	Records    []string `json:"records,omitempty"`
}

// ReportAuthorizationName is the name where REPORTDOMAIN authorizes the
// reports of domain: DOMAIN._report._dmarc.REPORTDOMAIN (RFC 7489 §7.1).
func ReportAuthorizationName(domain, reportDomain string) string {
	return strings.ToLower(domain) + "._report._dmarc." + strings.ToLower(reportDomain)
}

// CheckReportAuthorization checks the report URIs of the record published
// for domain: for an address in another organizational domain, the
// receiver sends reports only when DOMAIN._report._dmarc.REPORTDOMAIN holds
// a TXT record starting with v=DMARC1 (RFC 7489 §7.1). URIs that are not
// mailto: addresses are skipped.
func CheckReportAuthorization(ctx context.Context, r DNS, domain string, uris []string) ([]ReportAuthorization, error) {
	var out []ReportAuthorization
	for _, u := range uris {
		addr, err := dnsrecord.ReportAddress(u)
		if err != nil {
			continue
		}
		ra := ReportAuthorization{URI: u, Address: addr, ReportDomain: strings.ToLower(addr[strings.LastIndexByte(addr, '@')+1:])}
		same, err := SameOrganization(ctx, r, domain, ra.ReportDomain)
		if err != nil {
			return out, err
		}
		ra.External = !same
		ra.Authorized = same
		if ra.External {
			ra.Name = ReportAuthorizationName(domain, ra.ReportDomain)
			txts, err := r.TXT(ctx, ra.Name)
			if err != nil && !IsNotFound(err) {
				return out, fmt.Errorf("checking the report authorization %s: %w", ra.Name, err)
			}
			ra.Records = dnsrecord.SelectDMARC(txts)
			ra.Authorized = len(ra.Records) > 0
		}
		out = append(out, ra)
	}
	return out, nil
}

// SameOrganization reports whether two domains are in the same
// organization: one is the other or below it, or the tree walk gives them
// the same organizational domain.
func SameOrganization(ctx context.Context, r DNS, a, b string) (bool, error) {
	a = strings.ToLower(strings.TrimSuffix(a, "."))
	b = strings.ToLower(strings.TrimSuffix(b, "."))
	if a == b || strings.HasSuffix(a, "."+b) || strings.HasSuffix(b, "."+a) {
		return true, nil
	}
	da, err := Discover(ctx, r, a)
	if err != nil {
		return false, err
	}
	db, err := Discover(ctx, r, b)
	if err != nil {
		return false, err
	}
	return da.OrgDomain == db.OrgDomain, nil
}
