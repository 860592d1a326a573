package advisor

import (
	"context"
	"fmt"
	"strings"

	"github.com/dmarcd/dmarcd/internal/dnsrecord"
)

// SPFAdditions are what a merged SPF record must allow besides what the
// live record allows.
type SPFAdditions struct {
	// IPs are addresses or networks (CIDR), IPv4 or IPv6.
	IPs []string `json:"ips,omitempty"`
	// Includes are domains whose SPF records to include.
	Includes []string `json:"includes,omitempty"`
}

// SPFMerge is the record MergeSPF wrote, with what it did.
type SPFMerge struct {
	Domain string `json:"domain"`
	// Live is the record published now, "" when none.
	Live string `json:"live,omitempty"`
	// Record is the merged record; Strings the same split into TXT
	// character-strings of at most dnsrecord.MaxStringOctets.
	Record  string   `json:"record"`
	Strings []string `json:"strings"`
	// Added are the terms the merge added; Duplicates the additions (or
	// repeated live terms) dropped as exact duplicates; Dropped the live
	// terms after all, which receivers never evaluate.
	Added      []string `json:"added,omitempty"`
	Duplicates []string `json:"duplicates,omitempty"`
	Dropped    []string `json:"dropped,omitempty"`
	// Lookups and Costs are the cost of the merged record (see
	// SPFAnalysis).
	Lookups  int        `json:"lookups"`
	Costs    []*SPFCost `json:"costs"`
	Findings []Finding  `json:"findings,omitempty"`
}

// SPFLimitError is a merged record that would break an SPF limit.
type SPFLimitError struct {
	Domain  string
	Record  string
	Lookups int
	Octets  int
	Costs   []*SPFCost
}

func (e *SPFLimitError) Error() string {
	if e.Lookups > SPFMaxLookups {
		return fmt.Sprintf("the merged SPF record of %s would need %d DNS lookups, over the limit of %d (RFC 7208 §4.6.4); costs: %s. "+
			"Drop includes you no longer need, replace the costliest include by the ip4:/ip6: networks it lists (flattening: you must then follow its changes), "+
			"or send from a subdomain (--mode subdomain) with its own SPF record",
			e.Domain, e.Lookups, SPFMaxLookups, CostSummary(e.Costs))
	}
	return fmt.Sprintf("the merged SPF record of %s would take %d octets with its name, over %d (RFC 7208 §3.4): "+
		"list networks instead of single addresses, drop includes you no longer need, or send from a subdomain (--mode subdomain)",
		e.Domain, e.Octets, SPFMaxRecordOctets)
}

// MergeSPF merges add into live, the SPF record domain publishes now (""
// when none): the live mechanisms in their order (those after all are
// dropped: they never match), then the added ip4:/ip6: networks and
// includes that are not already there, then the live record's all (its
// qualifier kept, ~all when there was none) or its redirect=, then its
// other modifiers. The lookups of the result are counted through DNS; a
// record over SPFMaxLookups or SPFMaxRecordOctets is an *SPFLimitError
// naming what each term costs.
func MergeSPF(ctx context.Context, r DNS, domain, live string, add SPFAdditions) (*SPFMerge, error) {
	m := &SPFMerge{Domain: domain, Live: live}
	var liveRec *dnsrecord.SPFRecord
	if live != "" {
		rec, fs := dnsrecord.ParseSPF(live)
		if HasErrors(fs) {
			var msgs []string
			for _, f := range fs {
				if f.Severity == SeverityError {
					msgs = append(msgs, f.Message)
				}
			}
			return nil, fmt.Errorf("the live SPF record of %s (%q) has errors, so it cannot be merged: %s; correct it first, or use --mode subdomain",
				domain, live, strings.Join(msgs, "; "))
		}
		liveRec = rec
	} else {
		liveRec = &dnsrecord.SPFRecord{}
	}

	var mechs, tail []dnsrecord.SPFTerm
	var final *dnsrecord.SPFTerm
	seen := map[string]bool{}
	liveAll, hasAll := liveRec.All()
	afterAll := false
	for _, t := range liveRec.Terms {
		switch {
		case afterAll && t.Mechanism != "":
			m.Dropped = append(m.Dropped, t.Text)
		case t.Mechanism == "all":
			afterAll = true
		case t.Modifier == "redirect" && hasAll:
			// Ignored next to all (RFC 7208 §6.1).
			m.Dropped = append(m.Dropped, t.Text)
		case t.Modifier == "redirect":
			tt := t
			final = &tt
		case t.Modifier != "":
			tail = append(tail, t)
		default:
			k := spfTermKey(t)
			if seen[k] {
				m.Duplicates = append(m.Duplicates, t.Text)
				continue
			}
			seen[k] = true
			mechs = append(mechs, t)
		}
	}
	switch {
	case hasAll:
		final = &liveAll
	case final == nil:
		final = &dnsrecord.SPFTerm{Text: "~all", Qualifier: "~", Mechanism: "all"}
	}

	var additions []string
	for _, ip := range add.IPs {
		term, err := dnsrecord.SPFNetworkTerm(ip)
		if err != nil {
			return nil, err
		}
		additions = append(additions, term)
	}
	for _, inc := range add.Includes {
		inc = strings.TrimSpace(inc)
		inc = strings.TrimPrefix(strings.TrimPrefix(inc, "+"), "include:")
		if err := dnsrecord.CheckDomainSpec(inc); err != nil {
			return nil, fmt.Errorf("SPF include %q: %v", inc, err)
		}
		additions = append(additions, "include:"+inc)
	}
	for _, text := range additions {
		t, err := dnsrecord.ParseSPFMechanism(text)
		if err != nil {
			return nil, fmt.Errorf("SPF addition: %v", err)
		}
		k := spfTermKey(t)
		if seen[k] {
			m.Duplicates = append(m.Duplicates, text)
			continue
		}
		seen[k] = true
		mechs = append(mechs, t)
		m.Added = append(m.Added, text)
	}

	merged := &dnsrecord.SPFRecord{Terms: append(append(mechs, *final), tail...)}
	m.Record = merged.String()
	m.Strings = dnsrecord.Split(m.Record)
	a := AnalyzeSPFRecord(ctx, r, domain, m.Record)
	m.Lookups, m.Costs, m.Findings = a.Lookups, a.Costs, a.Findings
	if a.Lookups > SPFMaxLookups {
		return m, &SPFLimitError{Domain: domain, Record: m.Record, Lookups: a.Lookups, Costs: a.Costs}
	}
	if n := len(domain) + len(m.Record); n > SPFMaxRecordOctets {
		return m, &SPFLimitError{Domain: domain, Record: m.Record, Lookups: a.Lookups, Octets: n, Costs: a.Costs}
	}
	return m, nil
}

// spfTermKey is what makes two terms exact duplicates: the same qualifier
// ("+" written or not), mechanism, and argument (networks compared as
// networks, domains without case or final dot).
func spfTermKey(t dnsrecord.SPFTerm) string {
	switch t.Mechanism {
	case "ip4", "ip6":
		return t.Qualifier + t.Mechanism + ":" + t.Prefix.String()
	}
	text := strings.ToLower(strings.TrimLeft(t.Text, "+-~?"))
	if t.Domain != "" {
		text = strings.Replace(text, strings.ToLower(t.Domain), strings.TrimSuffix(strings.ToLower(t.Domain), "."), 1)
	}
	return t.Qualifier + text
}
