package advisor

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/dmarcd/dmarcd/internal/dnsrecord"
)

// Limits of SPF (RFC 7208) and of the analysis.
const (
	// SPFMaxLookups: the include, a, mx, ptr and exists mechanisms and the
	// redirect modifier cause DNS queries; more than 10 of them in one
	// evaluation, includes counted recursively, is a permerror
	// (RFC 7208 §4.6.4).
	SPFMaxLookups = 10
	// SPFMaxVoidLookups: more than 2 lookups answered NXDOMAIN or with no
	// records is a permerror (RFC 7208 §4.6.4, the recommended default).
	SPFMaxVoidLookups = 2
	// SPFMaxMXHosts: an mx mechanism whose domain has more MX records than
	// this is a permerror (RFC 7208 §4.6.4).
	SPFMaxMXHosts = 10
	// SPFMaxRecordOctets: the DNS name plus the text of its TXT records
	// should stay under 450 octets so that the answer fits a UDP packet
	// (RFC 7208 §3.4).
	SPFMaxRecordOctets = 450
	// spfAnalysisMaxLookups bounds the DNS work of one analysis: past it
	// the record is far over the limit and the rest is not followed.
	spfAnalysisMaxLookups = 3 * SPFMaxLookups
)

// spfLookupMechanisms cause a DNS query (RFC 7208 §4.6.4).
var spfLookupMechanisms = map[string]bool{"include": true, "a": true, "mx": true, "ptr": true, "exists": true}

// causesLookup reports whether the term counts against SPFMaxLookups.
func causesLookup(t dnsrecord.SPFTerm) bool {
	return spfLookupMechanisms[t.Mechanism] || t.Modifier == "redirect"
}

// SPFAnalysis is an SPF record with its cost: the DNS lookups it needs,
// through its includes, when no mechanism matches before the end (the case
// of mail that fails, and of senders listed last).
type SPFAnalysis struct {
	// Domain is the domain the record belongs to.
	Domain string `json:"domain"`
	Record string `json:"record"`
	// Lookups counts the DNS-causing terms, includes and redirects
	// followed recursively; over SPFMaxLookups is a permerror.
	Lookups int `json:"lookups"`
	// VoidLookups counts lookups answered NXDOMAIN or with no record, for
	// a receiver checking an IPv4 client; over SPFMaxVoidLookups is a
	// permerror.
	VoidLookups int `json:"void_lookups"`
	// Costs are the DNS-causing terms of the record with what each costs,
	// includes with their own includes.
	Costs    []*SPFCost `json:"costs"`
	Findings []Finding  `json:"findings"`
}

// SPFCost is what one DNS-causing term of an SPF record costs.
type SPFCost struct {
	// Term is the term as published: "include:_spf.google.com", "mx",
	// "redirect=_spf.example.com".
	Term string `json:"term"`
	// Domain is the domain it queries (for include and redirect, the one
	// whose record it reads).
	Domain string `json:"domain"`
	// Lookups is the term itself plus, for include and redirect,
	// everything in the record it reads, recursively.
	Lookups     int        `json:"lookups"`
	VoidLookups int        `json:"void_lookups"`
	Record      string     `json:"record,omitempty"`
	Includes    []*SPFCost `json:"includes,omitempty"`
	// Problem says what went wrong reading it, if anything.
	Problem string `json:"problem,omitempty"`
}

// spfWalk is the state of one analysis.
type spfWalk struct {
	dns        DNS
	lookups    int
	voids      int
	overAt     string // the chain of the lookup that broke the limit
	voidOverAt string
	findings   []Finding
	truncated  bool
}

// AnalyzeSPF reads the SPF record of domain and analyzes it. It returns
// nil and the findings when there is no single SPF record; err only when
// DNS fails for the domain itself.
func AnalyzeSPF(ctx context.Context, r DNS, domain string) (*SPFAnalysis, []Finding, error) {
	txts, err := r.TXT(ctx, domain)
	if err != nil && !IsNotFound(err) {
		return nil, nil, fmt.Errorf("reading the SPF record of %s: %w", domain, err)
	}
	spfs := dnsrecord.SelectSPF(txts)
	switch len(spfs) {
	case 0:
		return nil, []Finding{{Severity: SeverityWarning, Code: "spf-missing", Name: domain,
			Message: fmt.Sprintf("%s publishes no SPF record: SPF never passes for it, and DMARC rests on DKIM alone", domain),
			Advice:  "publish the SPF record that `dmarcd domain add` prints"}}, nil
	case 1:
	default:
		return nil, []Finding{{Severity: SeverityError, Code: "spf-multiple", Name: domain,
			Message: fmt.Sprintf("%s publishes %d SPF records; receivers return permerror and SPF fails for all mail (RFC 7208 §4.5): %s",
				domain, len(spfs), strings.Join(quotedList(spfs), ", ")),
			Advice: "merge them into one record (`dmarcd domain add` prints a merged one) and delete the others"}}, nil
	}
	a := AnalyzeSPFRecord(ctx, r, domain, spfs[0])
	octets := len(domain)
	for _, t := range txts {
		octets += len(t)
	}
	if octets > SPFMaxRecordOctets {
		a.Findings = append(a.Findings, Finding{Severity: SeverityWarning, Code: "spf-size", Name: domain,
			Message: fmt.Sprintf("the name and the TXT records of %s take %d octets, over %d: the answer may not fit a UDP packet (RFC 7208 §3.4)", domain, octets, SPFMaxRecordOctets),
			Advice:  "shorten the record: merge ip4: networks, drop unused includes, or move TXT records that are not SPF elsewhere"})
	}
	return a, a.Findings, nil
}

// AnalyzeSPFRecord analyzes the SPF record txt as if published at domain:
// its syntax, and the lookups and void lookups through its includes, read
// from DNS. DNS failures below the record are findings, not errors.
func AnalyzeSPFRecord(ctx context.Context, r DNS, domain, txt string) *SPFAnalysis {
	a := &SPFAnalysis{Domain: domain, Record: txt}
	w := &spfWalk{dns: r}
	rec, fs := dnsrecord.ParseSPF(txt)
	w.findings = append(w.findings, findingsAt(fs, domain)...)
	if rec != nil {
		a.Costs = w.record(ctx, domain, rec, []string{domain})
	}
	a.Lookups, a.VoidLookups = w.lookups, w.voids
	if w.lookups > SPFMaxLookups {
		w.findings = append(w.findings, Finding{Severity: SeverityError, Code: "spf-lookups", Name: domain,
			Message: fmt.Sprintf("the SPF record of %s needs %s DNS lookups, over the limit of %d: receivers return permerror and SPF fails (RFC 7208 §4.6.4). The lookup over the limit is %s. Costs: %s",
				domain, w.count(), SPFMaxLookups, w.overAt, CostSummary(a.Costs)),
			Advice: "drop includes of services you no longer use; replace a costly include by the ip4:/ip6: networks it lists (flattening: you must then follow its changes); or send that mail from a subdomain with its own SPF record"})
	}
	if w.voids > SPFMaxVoidLookups {
		w.findings = append(w.findings, Finding{Severity: SeverityError, Code: "spf-void-lookups", Name: domain,
			Message: fmt.Sprintf("the SPF record of %s makes %d void lookups (answered NXDOMAIN or empty), over the limit of %d: receivers return permerror (RFC 7208 §4.6.4). The void lookup over the limit is %s",
				domain, w.voids, SPFMaxVoidLookups, w.voidOverAt),
			Advice: "remove the mechanisms that name domains without records (a:, mx:, include: of names that no longer exist)"})
	}
	if rec != nil {
		if _, ok := rec.All(); !ok {
			if _, ok := rec.Modifier("redirect"); !ok {
				w.findings = append(w.findings, Finding{Severity: SeverityInfo, Code: "spf-no-all", Name: domain,
					Message: fmt.Sprintf("the SPF record of %s ends without all or redirect=: hosts not listed get neutral (RFC 7208 §4.7)", domain),
					Advice:  "end it with ~all (or -all)"})
			}
		}
	}
	a.Findings = w.findings
	return a
}

func (w *spfWalk) count() string {
	if w.truncated {
		return fmt.Sprintf("at least %d", w.lookups)
	}
	return strconv.Itoa(w.lookups)
}

// lookup counts one DNS-causing term and notes where the limit broke.
func (w *spfWalk) lookup(chain []string, term string) bool {
	if w.lookups >= spfAnalysisMaxLookups {
		w.truncated = true
		return false
	}
	w.lookups++
	if w.lookups == SPFMaxLookups+1 {
		w.overAt = chainText(chain, term)
	}
	return true
}

func (w *spfWalk) void(chain []string, term string, c *SPFCost) {
	w.voids++
	c.VoidLookups++
	if w.voids == SPFMaxVoidLookups+1 {
		w.voidOverAt = chainText(chain, term)
	}
}

// chainText names a term by the includes it is reached through:
// "include:_spf.b.example in the record of _spf.a.example, reached from
// example.com through include:_spf.a.example".
func chainText(chain []string, term string) string {
	if len(chain) == 1 {
		return fmt.Sprintf("%s in the record of %s", term, chain[0])
	}
	return fmt.Sprintf("%s in the record of %s, reached from %s", term, chain[len(chain)-1], strings.Join(chain[:len(chain)-1], " -> "))
}

// record walks the DNS-causing terms of rec (published at domain) in
// evaluation order: the mechanisms, then redirect= when there is no all
// (RFC 7208 §6.1). chain names how the walk got here.
func (w *spfWalk) record(ctx context.Context, domain string, rec *dnsrecord.SPFRecord, chain []string) []*SPFCost {
	var costs []*SPFCost
	_, hasAll := rec.All()
	var redirect *dnsrecord.SPFTerm
	for i := range rec.Terms {
		t := rec.Terms[i]
		if t.Modifier == "redirect" && !hasAll {
			redirect = &rec.Terms[i]
		}
		if t.Mechanism == "" || !causesLookup(t) {
			continue
		}
		if c := w.term(ctx, domain, t, chain); c != nil {
			costs = append(costs, c)
		}
	}
	if redirect != nil {
		if c := w.term(ctx, domain, *redirect, chain); c != nil {
			costs = append(costs, c)
		}
	}
	return costs
}

// term counts one DNS-causing term and what it brings in.
func (w *spfWalk) term(ctx context.Context, domain string, t dnsrecord.SPFTerm, chain []string) *SPFCost {
	if !w.lookup(chain, t.Text) {
		return nil
	}
	target := t.Domain
	if target == "" {
		target = domain
	}
	c := &SPFCost{Term: t.Text, Domain: target, Lookups: 1}
	if strings.Contains(target, "%") {
		name, ok := dnsrecord.ExpandMacros(target, domain, chain[0])
		if !ok {
			// A macro of the message: the name depends on the mail;
			// nothing to look up here.
			c.Problem = "the name depends on each message (a macro of RFC 7208 §7): counted as one lookup"
			return c
		}
		target, c.Domain = name, name
		t.Domain = name
	}
	switch {
	case t.Mechanism == "include" || t.Modifier == "redirect":
		w.follow(ctx, t, c, chain)
	case t.Mechanism == "a" || t.Mechanism == "exists":
		// An IPv4 client: a queries A; exists always queries A
		// (RFC 7208 §5.3, §5.7).
		addrs, err := w.dns.A(ctx, target)
		if w.dnsProblem(err, c, chain, t.Text) {
			return c
		}
		if len(addrs) == 0 {
			w.void(chain, t.Text, c)
			c.Problem = fmt.Sprintf("%s has no A record (a void lookup)", target)
		}
	case t.Mechanism == "mx":
		mxs, err := w.dns.MX(ctx, target)
		if w.dnsProblem(err, c, chain, t.Text) {
			return c
		}
		if len(mxs) == 0 {
			w.void(chain, t.Text, c)
			c.Problem = fmt.Sprintf("%s has no MX record (a void lookup)", target)
		}
		if len(mxs) > SPFMaxMXHosts {
			w.findings = append(w.findings, Finding{Severity: SeverityError, Code: "spf-mx-hosts", Name: target,
				Message: fmt.Sprintf("%s: %s has %d MX records, over %d: receivers return permerror (RFC 7208 §4.6.4)", chainText(chain, t.Text), target, len(mxs), SPFMaxMXHosts),
				Advice:  "replace mx by ip4:/ip6: networks of the hosts that send"})
		}
	}
	return c
}

// dnsProblem records a DNS failure of a term; NXDOMAIN is a void lookup.
// It reports whether the term is finished.
func (w *spfWalk) dnsProblem(err error, c *SPFCost, chain []string, term string) bool {
	switch {
	case err == nil:
		return false
	case IsNotFound(err):
		w.void(chain, term, c)
		c.Problem = fmt.Sprintf("%s does not exist (a void lookup)", c.Domain)
	default:
		c.Problem = err.Error()
		w.findings = append(w.findings, Finding{Severity: SeverityWarning, Code: "spf-dns", Name: c.Domain,
			Message: fmt.Sprintf("%s: %v; receivers would return temperror (RFC 7208 §2.6.6), and the lookups below it are not counted", chainText(chain, term), err),
			Advice:  "check again later; if it persists, the name servers of " + c.Domain + " are broken"})
	}
	return true
}

// follow reads the record an include or redirect points to and walks it.
func (w *spfWalk) follow(ctx context.Context, t dnsrecord.SPFTerm, c *SPFCost, chain []string) {
	what := "include"
	if t.Modifier == "redirect" {
		what = "redirect"
	}
	for _, d := range chain {
		if strings.EqualFold(d, c.Domain) {
			c.Problem = "loop: " + c.Domain + " is already on the way here"
			w.findings = append(w.findings, Finding{Severity: SeverityError, Code: "spf-loop", Name: c.Domain,
				Message: fmt.Sprintf("%s makes a loop (%s): receivers run into the lookup limit and return permerror", chainText(chain, t.Text), strings.Join(append(chain, c.Domain), " -> ")),
				Advice:  "remove the " + what + " that points back"})
			return
		}
	}
	txts, err := w.dns.TXT(ctx, c.Domain)
	if w.dnsProblem(err, c, chain, t.Text) {
		if IsNotFound(err) {
			w.noRecord(chain, t, c, what)
		}
		return
	}
	if len(txts) == 0 {
		w.void(chain, t.Text, c)
	}
	spfs := dnsrecord.SelectSPF(txts)
	switch len(spfs) {
	case 0:
		w.noRecord(chain, t, c, what)
		return
	case 1:
	default:
		c.Problem = fmt.Sprintf("%d SPF records", len(spfs))
		w.findings = append(w.findings, Finding{Severity: SeverityError, Code: "spf-multiple", Name: c.Domain,
			Message: fmt.Sprintf("%s: %s publishes %d SPF records; receivers return permerror (RFC 7208 §4.5)", chainText(chain, t.Text), c.Domain, len(spfs)),
			Advice:  "tell the owner of " + c.Domain + ", or stop using it"})
		return
	}
	c.Record = spfs[0]
	rec, fs := dnsrecord.ParseSPF(spfs[0])
	for _, f := range fs {
		if f.Severity == SeverityError {
			f.Message = chainText(chain, t.Text) + ": " + f.Message
			f.Advice = "tell the owner of " + c.Domain + ", or stop using it"
			f.Name = c.Domain
			w.findings = append(w.findings, f)
		}
	}
	if rec == nil {
		return
	}
	before, beforeVoid := w.lookups, w.voids
	c.Includes = w.record(ctx, c.Domain, rec, append(slices.Clone(chain), c.Domain))
	c.Lookups += w.lookups - before
	c.VoidLookups += w.voids - beforeVoid
}

func (w *spfWalk) noRecord(chain []string, t dnsrecord.SPFTerm, c *SPFCost, what string) {
	if c.Problem == "" {
		c.Problem = "no SPF record"
	}
	// RFC 7208 §5.2: include of a domain without SPF record is
	// permerror; §6.1: so is redirect.
	w.findings = append(w.findings, Finding{Severity: SeverityError, Code: "spf-" + what + "-none", Name: c.Domain,
		Message: fmt.Sprintf("%s: %s publishes no SPF record; receivers return permerror (RFC 7208 §5.2, §6.1)", chainText(chain, t.Text), c.Domain),
		Advice:  "remove the " + what + ", or fix the name"})
}

// CostSummary writes the costs of the top-level terms, costliest first:
// "include:_spf.google.com 4, include:spf.protection.outlook.com 2, mx 1".
func CostSummary(costs []*SPFCost) string {
	sorted := slices.Clone(costs)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Lookups > sorted[j].Lookups })
	parts := make([]string, len(sorted))
	for i, c := range sorted {
		parts[i] = fmt.Sprintf("%s %d", c.Term, c.Lookups)
	}
	return strings.Join(parts, ", ")
}

func quotedList(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}
