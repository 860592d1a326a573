package advisor

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/internal/dnsrecord"
)

// Finding and Severity are dnsrecord's: the record parsers and the checks
// built on them report in the same terms.
type (
	Finding  = dnsrecord.Finding
	Severity = dnsrecord.Severity
)

// The severities of a Finding.
const (
	SeverityError   = dnsrecord.SeverityError
	SeverityWarning = dnsrecord.SeverityWarning
	SeverityInfo    = dnsrecord.SeverityInfo
)

// HasErrors reports whether any finding is an error.
func HasErrors(fs []Finding) bool { return dnsrecord.HasErrors(fs) }

func findingsAt(fs []Finding, name string) []Finding {
	for i := range fs {
		if fs[i].Name == "" {
			fs[i].Name = name
		}
	}
	return fs
}

// CheckOptions are what Check compares the live DNS with.
type CheckOptions struct {
	// Ours are our own sending addresses and includes, for the drift
	// from the records the wizard writes.
	Ours SPFAdditions
	// DKIM are the key records of our selectors: each must be published
	// and carry the same public key. Selectors of the domain's other
	// senders (SenderDomain.Selectors) are checked for existence only.
	DKIM []DKIMPublicKey
	// IntendedPolicy is where the rollout is heading (optional): a
	// subdomain or non-existent-domain policy weaker than it is warned
	// about.
	IntendedPolicy dmarcd.Policy
}

// Check checks the DNS of a sender domain: SPF syntax and limits (RFC
// 7208), DMARC policy discovery by the tree walk and the record's syntax
// (RFC 9989), the authorization of external report addresses (RFC 7489
// §7.1), the DKIM key records of the selectors, and the drift from what
// the wizard (PlanDomain) writes. DNS failures are error findings; the
// error is for a name that is not a domain name and a cancelled context.
func Check(ctx context.Context, r DNS, d dmarcd.SenderDomain, opts CheckOptions) ([]Finding, error) {
	domain := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(d.Name), "."))
	if _, ok := checkDomainName(domain); !ok {
		return nil, fmt.Errorf("%q is not a domain name", d.Name)
	}
	var fs []Finding
	dnsFailure := func(name string, err error) {
		fs = append(fs, Finding{Severity: SeverityError, Code: "dns", Name: name, Message: err.Error(),
			Advice: "check again later; if it persists, check the resolver ([dns] resolver) and the domain's name servers"})
	}

	// SPF.
	spf, spfFindings, err := AnalyzeSPF(ctx, r, domain)
	switch {
	case err != nil:
		dnsFailure(domain, err)
	default:
		fs = append(fs, spfFindings...)
		if spf != nil && spf.Lookups <= SPFMaxLookups && spf.VoidLookups <= SPFMaxVoidLookups {
			msg := fmt.Sprintf("SPF of %s: %d of %d DNS lookups, %d of %d void lookups", domain, spf.Lookups, SPFMaxLookups, spf.VoidLookups, SPFMaxVoidLookups)
			if len(spf.Costs) > 0 {
				msg += "; costs: " + CostSummary(spf.Costs)
			}
			fs = append(fs, Finding{Severity: SeverityInfo, Code: "spf-lookups-ok", Name: domain, Message: msg})
		}
	}

	// DMARC: discovery, then the record.
	disc, err := Discover(ctx, r, domain)
	if disc != nil {
		fs = append(fs, disc.Findings...)
	}
	if err != nil {
		dnsFailure("_dmarc."+domain, err)
	}
	if err == nil && disc.Record == nil {
		fs = append(fs, Finding{Severity: SeverityError, Code: "dmarc-missing", Name: "_dmarc." + domain,
			Message: fmt.Sprintf("no DMARC policy applies to %s: neither it nor its parents publish a single valid DMARC record (tree walk: %s)", domain, walkText(disc)),
			Advice:  "publish the DMARC record that `dmarcd domain add " + domain + "` prints (p=none with reports, the start of the rollout)"})
	}
	if err == nil && disc.Record != nil {
		policyName := "_dmarc." + disc.PolicyDomain
		_, recFindings, _ := dnsrecord.ParseDMARC(disc.Text)
		fs = append(fs, findingsAt(recFindings, policyName)...)
		fs = append(fs, Finding{Severity: SeverityInfo, Code: "dmarc-found", Name: policyName,
			Message: fmt.Sprintf("DMARC policy of %s: %q at %s (applies %s; organizational domain %s)", domain, disc.Text, policyName, disc.Applied(), disc.OrgDomain)})
		if want := opts.IntendedPolicy; want != "" {
			if sp := disc.Record.SubdomainEffective(); disc.Record.SubdomainPolicy != "" && dnsrecord.PolicyRank(sp) < dnsrecord.PolicyRank(want) {
				fs = append(fs, Finding{Severity: SeverityWarning, Code: "dmarc-sp-below-rollout", Name: policyName,
					Message: fmt.Sprintf("sp=%s is weaker than the policy the rollout heads for (%s): subdomains stay open to forgery", sp, want),
					Advice:  "remove sp, or raise it with the rollout"})
			}
			if np := disc.Record.NonexistentEffective(); disc.Record.NonexistentPolicy != "" && dnsrecord.PolicyRank(np) < dnsrecord.PolicyRank(want) {
				fs = append(fs, Finding{Severity: SeverityWarning, Code: "dmarc-np-below-rollout", Name: policyName,
					Message: fmt.Sprintf("np=%s is weaker than the policy the rollout heads for (%s): names that do not exist stay open to forgery", np, want),
					Advice:  "remove np, or set np=reject"})
			}
		}
		// Report addresses in other organizations must authorize the
		// reports (RFC 7489 §7.1); the domain is the policy domain. The
		// record of a public suffix operator (psd=y, or a policy domain
		// above the organizational domain) is not the user's to change:
		// where its reports go is the operator's business.
		psd := disc.Record.PSD == "y" || disc.PolicyDomain != disc.OrgDomain && strings.HasSuffix(disc.OrgDomain, "."+disc.PolicyDomain)
		var auths []ReportAuthorization
		if psd {
			fs = append(fs, Finding{Severity: SeverityInfo, Code: "dmarc-psd-record", Name: policyName,
				Message: fmt.Sprintf("the policy of %s comes from %s, a public suffix operator's record: its report addresses are the operator's, and %s gets no reports from it", domain, disc.PolicyDomain, domain),
				Advice:  "publish a record at _dmarc." + disc.OrgDomain + " with your own rua= to get reports"})
		} else {
			auths, err = CheckReportAuthorization(ctx, r, disc.PolicyDomain, slices.Concat(disc.Record.RUA, disc.Record.RUF))
			if err != nil {
				dnsFailure(policyName, err)
			}
		}
		for _, a := range auths {
			if a.External && !a.Authorized {
				fs = append(fs, Finding{Severity: SeverityError, Code: "dmarc-report-unauthorized", Name: a.Name,
					Message: fmt.Sprintf("%s is in another organization than %s, and %s has no v=DMARC1 record: receivers send no reports to it (RFC 7489 §7.1)", a.Address, disc.PolicyDomain, a.Name),
					Advice:  fmt.Sprintf("publish TXT \"v=DMARC1\" at %s (in the zone of %s), or report to an address in %s", a.Name, a.ReportDomain, disc.OrgDomain)})
			}
		}
	}

	// DKIM.
	for _, k := range opts.DKIM {
		fs = append(fs, checkDKIM(ctx, r, domain, k.Selector, k.Value)...)
	}
	for _, sel := range d.Selectors {
		if slices.ContainsFunc(opts.DKIM, func(k DKIMPublicKey) bool { return strings.EqualFold(k.Selector, sel) }) {
			continue
		}
		fs = append(fs, checkDKIM(ctx, r, domain, sel, "")...)
	}

	// Drift from the wizard's records (SPF and DMARC: DKIM and report
	// authorizations are checked above).
	plan, err := PlanDomain(ctx, r, DomainSetup{Domain: d, Ours: opts.Ours, DKIM: opts.DKIM})
	if err != nil {
		fs = append(fs, Finding{Severity: SeverityInfo, Code: "drift-unknown", Name: domain,
			Message: "the records the wizard would write cannot be worked out, so drift is not checked: " + err.Error()})
	} else {
		diffs, err := Drift(ctx, r, plan)
		if err != nil {
			dnsFailure(domain, err)
		}
		for _, diff := range diffs {
			if diff.Purpose != PurposeSPF && diff.Purpose != PurposeDMARC {
				continue
			}
			fs = append(fs, Finding{Severity: SeverityWarning, Code: "drift-" + diff.Purpose, Name: diff.Name, Message: diff.String(),
				Advice: "publish the record `dmarcd domain add " + domain + "` prints, or update the [[domain]] configuration to what is meant"})
		}
	}
	return fs, ctx.Err()
}

func walkText(d *Discovery) string {
	var names []string
	for _, s := range d.Steps {
		names = append(names, "_dmarc."+s.Domain)
	}
	return strings.Join(names, ", ")
}

// checkDKIM checks the key record of a selector: published, parsable, and
// carrying the public key of want (a key record value) when want is given.
func checkDKIM(ctx context.Context, r DNS, domain, selector, want string) []Finding {
	name := strings.ToLower(selector) + "._domainkey." + domain
	ours := want != ""
	txts, err := r.TXT(ctx, name)
	if err != nil && !IsNotFound(err) {
		return []Finding{{Severity: SeverityError, Code: "dns", Name: name, Message: err.Error(), Advice: "check again later"}}
	}
	if len(txts) == 0 {
		sev, advice := SeverityWarning, "remove the selector from the configuration if the sender no longer uses it"
		if ours {
			sev, advice = SeverityError, "publish the DKIM record that `dmarcd domain add "+domain+"` prints"
		}
		return []Finding{{Severity: sev, Code: "dkim-missing", Name: name,
			Message: fmt.Sprintf("DKIM selector %s of %s is not published: signatures with it fail", selector, domain), Advice: advice}}
	}
	if len(txts) > 1 {
		return []Finding{{Severity: SeverityError, Code: "dkim-multiple", Name: name,
			Message: fmt.Sprintf("%s holds %d TXT records; verifiers may take any of them (RFC 6376 §6.1.2)", name, len(txts)),
			Advice:  "keep one key record"}}
	}
	got, fs, err := checkKeyRecord(txts[0])
	fs = findingsAt(fs, name)
	if err != nil {
		return append(fs, Finding{Severity: SeverityError, Code: "dkim-invalid", Name: name,
			Message: fmt.Sprintf("the DKIM key record of selector %s does not parse: %v; signatures with it fail", selector, err),
			Advice:  "publish the key record again"})
	}
	if ours {
		exp, err := dnsrecord.ParseKey(want)
		switch {
		case err != nil:
			fs = append(fs, Finding{Severity: SeverityError, Code: "dkim-expected-invalid", Name: name,
				Message: fmt.Sprintf("our key record of selector %s does not parse: %v", selector, err)})
		case !sameKey(exp, got):
			fs = append(fs, Finding{Severity: SeverityError, Code: "dkim-mismatch", Name: name,
				Message: fmt.Sprintf("the key published for selector %s (k=%s) is not ours (k=%s): mail we sign with it fails DKIM", selector, got.KeyType, exp.KeyType),
				Advice:  "publish the DKIM record that `dmarcd domain add " + domain + "` prints"})
		default:
			fs = append(fs, Finding{Severity: SeverityInfo, Code: "dkim-ok", Name: name,
				Message: fmt.Sprintf("DKIM selector %s publishes our key (k=%s)", selector, got.KeyType)})
		}
	}
	return fs
}

// sameKey says whether two key records publish the same key: the same
// type and public key, revoked records matching each other only.
func sameKey(a, b *dnsrecord.KeyRecord) bool {
	return a.KeyType == b.KeyType && a.Revoked == b.Revoked && bytes.Equal(a.PublicKey, b.PublicKey)
}

// dkimRecommendedRSABits: signers SHOULD use RSA keys of at least 2048
// bits (RFC 8301 §3.2). Keys under dnsrecord.MinRSABits do not verify at
// all, and dnsrecord.ParseKey refuses them.
const dkimRecommendedRSABits = 2048

// checkKeyRecord reads a DKIM key record with dnsrecord.ParseKey, the one
// parser of key records, whose error says why verifiers refuse the record
// (an RSA key under 1024 bits among the reasons); the findings are the
// advice on a record verifiers take: a revoked key, an RSA key under 2048
// bits, the testing flag t=y.
func checkKeyRecord(txt string) (*dnsrecord.KeyRecord, []Finding, error) {
	k, err := dnsrecord.ParseKey(txt)
	if err != nil {
		return nil, nil, err
	}
	var fs []Finding
	if k.Revoked {
		fs = append(fs, Finding{Severity: SeverityWarning, Code: "dkim-revoked", Message: "the key is revoked (empty p=): signatures with it fail (RFC 6376 §3.6.1)"})
		return k, fs, nil
	}
	if k.KeyType == dnsrecord.KeyTypeRSA && k.Bits < dkimRecommendedRSABits {
		fs = append(fs, Finding{Severity: SeverityWarning, Code: "dkim-weak-key",
			Message: fmt.Sprintf("the RSA key has %d bits; signers SHOULD use at least %d (RFC 8301 §3.2)", k.Bits, dkimRecommendedRSABits),
			Advice:  "rotate to a 2048-bit key"})
	}
	if k.Testing() {
		fs = append(fs, Finding{Severity: SeverityInfo, Code: "dkim-testing", Message: "t=y: the domain is testing DKIM, and verifiers may treat failures as no signature (RFC 6376 §3.6.1)"})
	}
	return k, fs, nil
}
