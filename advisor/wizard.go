package advisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/internal/dnsrecord"
)

// RecordTTL is the TTL of the records the wizard writes, in seconds: an
// hour, so that a correction or the next rollout step takes effect soon.
const RecordTTL = 3600

// DKIMPublicKey is the DKIM key record of a selector: the TXT value to
// publish at SELECTOR._domainkey.DOMAIN ("v=DKIM1; k=rsa; p=...").
type DKIMPublicKey struct {
	Selector string `json:"selector"`
	Value    string `json:"value"`
}

// DomainSetup is what the wizard needs for a sender domain.
type DomainSetup struct {
	// Domain is the [[domain]] table: the other senders (IPs,
	// SPFIncludes), the report addresses, the mode.
	Domain dmarcd.SenderDomain
	// Ours are our own sending addresses and includes.
	Ours SPFAdditions
	// DKIM are the key records of our selectors for the domain.
	DKIM []DKIMPublicKey
}

// The purposes of a PlannedRecord.
const (
	PurposeSPF                 = "spf"
	PurposeDKIM                = "dkim"
	PurposeDMARC               = "dmarc"
	PurposeReportAuthorization = "report-authorization"
)

// PlannedRecord is one DNS record to publish.
type PlannedRecord struct {
	Purpose string `json:"purpose"`
	// Zone is the zone the record goes in, as far as the wizard can tell:
	// the domain (mode own), the parent of a subdomain, or the report
	// domain for a report authorization.
	Zone string `json:"zone"`
	// Name is the absolute name, without the final dot.
	Name string `json:"name"`
	Type string `json:"type"`
	TTL  int    `json:"ttl"`
	// Value is the TXT text; Strings the same split into
	// character-strings of at most dnsrecord.MaxStringOctets.
	Value   string   `json:"value"`
	Strings []string `json:"strings"`
	Note    string   `json:"note,omitempty"`
}

// Host is Name relative to Zone, as web DNS consoles want it: "@" for the
// zone itself.
func (r PlannedRecord) Host() string {
	switch {
	case r.Name == r.Zone:
		return "@"
	case strings.HasSuffix(r.Name, "."+r.Zone):
		return strings.TrimSuffix(r.Name, "."+r.Zone)
	}
	return r.Name + "."
}

// Plan is what the wizard says to publish for a sender domain.
type Plan struct {
	Domain  string          `json:"domain"`
	Mode    string          `json:"mode"`
	Records []PlannedRecord `json:"records"`
	// SPF is the merge behind the SPF record, with the cost of each
	// term; nil when no SPF record is written.
	SPF *SPFMerge `json:"spf,omitempty"`
	// Notes explain the choices, one sentence or two each.
	Notes []string `json:"notes,omitempty"`
}

// PlanDomain works out the records a sender domain needs, from the
// configuration and the live DNS:
//
//   - SPF: mode "own" merges our senders and the domain's other senders
//     into the live record (MergeSPF: nothing it allowed is lost, under the
//     lookup and size limits); mode "subdomain" writes the subdomain's own
//     record and leaves the parent's alone.
//   - DKIM: the key record of each selector.
//   - DMARC: the slow-rollout start, p=none with reports to the rua
//     addresses; a live record is kept at its policy, only missing report
//     addresses are added.
//   - DOMAIN._report._dmarc.REPORTDOMAIN for report addresses in another
//     organization (RFC 7489 §7.1).
//
// It returns the plan so far with the error when a limit breaks (an
// *SPFLimitError) or the live DNS is inconsistent.
func PlanDomain(ctx context.Context, r DNS, in DomainSetup) (*Plan, error) {
	d := in.Domain
	domain := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(d.Name), "."))
	if _, ok := checkDomainName(domain); !ok {
		return nil, fmt.Errorf("%q is not a domain name", d.Name)
	}
	mode := d.Mode
	if mode == "" {
		mode = dmarcd.ModeOwn
	}
	if mode != dmarcd.ModeOwn && mode != dmarcd.ModeSubdomain {
		return nil, fmt.Errorf("domain %s: mode %q: want %q or %q", domain, d.Mode, dmarcd.ModeOwn, dmarcd.ModeSubdomain)
	}
	p := &Plan{Domain: domain, Mode: mode}
	zone := domain
	if mode == dmarcd.ModeSubdomain {
		parent, ok := parentOf(domain)
		if !ok || !strings.Contains(parent, ".") {
			return nil, fmt.Errorf("mode subdomain: %s is not a subdomain (want for example newsletter.%s)", domain, domain)
		}
		zone = parent
		p.Notes = append(p.Notes, fmt.Sprintf("Mode subdomain: %s gets its own SPF, DKIM and DMARC records; %s and its records are left alone. "+
			"The names are written relative to %s, the zone a subdomain usually lives in; if %s is a zone of its own, use the absolute names.", domain, parent, parent, domain))
	}

	if err := p.planSPF(ctx, r, in, zone); err != nil {
		return p, err
	}
	for _, k := range in.DKIM {
		if _, err := dnsrecord.ParseKey(k.Value); err != nil {
			return p, fmt.Errorf("DKIM key record of selector %s: %v", k.Selector, err)
		}
		if _, ok := checkDomainName(k.Selector + "._domainkey." + domain); !ok || k.Selector == "" {
			return p, fmt.Errorf("DKIM selector %q is not a valid DNS label", k.Selector)
		}
		p.add(PlannedRecord{Purpose: PurposeDKIM, Zone: zone, Name: strings.ToLower(k.Selector) + "._domainkey." + domain, Value: k.Value,
			Note: "DKIM key of selector " + k.Selector})
	}
	if len(in.DKIM) == 0 {
		p.Notes = append(p.Notes, "DKIM: no key of ours for "+domain+" yet; its records come with the keys.")
	}
	rec, err := p.planDMARC(ctx, r, d, zone)
	if err != nil {
		return p, err
	}
	return p, p.planReportAuthorization(ctx, r, rec)
}

func (p *Plan) add(rec PlannedRecord) {
	rec.Type, rec.TTL = "TXT", RecordTTL
	rec.Strings = dnsrecord.Split(rec.Value)
	p.Records = append(p.Records, rec)
}

func (p *Plan) planSPF(ctx context.Context, r DNS, in DomainSetup, zone string) error {
	add := SPFAdditions{
		IPs:      slices.Concat(in.Ours.IPs, in.Domain.IPs),
		Includes: slices.Concat(in.Ours.Includes, in.Domain.SPFIncludes),
	}
	if len(add.IPs)+len(add.Includes) == 0 {
		p.Notes = append(p.Notes, "SPF: no sending addresses or includes are configured (ips, spf_includes, or ours), so no SPF record is written.")
		return nil
	}
	txts, err := r.TXT(ctx, p.Domain)
	if err != nil && !IsNotFound(err) {
		return fmt.Errorf("reading the SPF record of %s: %w", p.Domain, err)
	}
	spfs := dnsrecord.SelectSPF(txts)
	if len(spfs) > 1 {
		return fmt.Errorf("%s publishes %d SPF records (%s), which is a permerror (RFC 7208 §4.5): merge them into one by hand, then run this again",
			p.Domain, len(spfs), strings.Join(quotedList(spfs), ", "))
	}
	live := ""
	if len(spfs) == 1 {
		live = spfs[0]
	}
	m, err := MergeSPF(ctx, r, p.Domain, live, add)
	p.SPF = m
	if err != nil {
		return err
	}
	cost := fmt.Sprintf("%d of %d DNS lookups", m.Lookups, SPFMaxLookups)
	if len(m.Costs) > 0 {
		cost += " (" + CostSummary(m.Costs) + ")"
	}
	var note string
	switch {
	case live == "":
		note = "SPF: a new record; it needs " + cost
	case m.Record == live:
		note = "SPF: the live record already allows these senders, nothing to change; it needs " + cost
	default:
		note = fmt.Sprintf("SPF: merged into the live record %q, keeping all it allowed and adding %s; it needs %s", live, strings.Join(m.Added, " "), cost)
	}
	if len(m.Dropped) > 0 {
		note += fmt.Sprintf("; dropped %s (after all, never evaluated)", strings.Join(m.Dropped, " "))
	}
	p.Notes = append(p.Notes, note+".")
	for _, f := range m.Findings {
		switch {
		case f.Severity == SeverityError:
			p.Notes = append(p.Notes, "SPF: careful, the record keeps a problem of the live one: "+f.Message)
		case f.Code == "spf-all-neutral" || f.Code == "spf-all-pass":
			p.Notes = append(p.Notes, "SPF: careful, the live record's all is kept: "+f.Message+"; end it with ~all (then -all once every sender is listed).")
		}
	}
	p.add(PlannedRecord{Purpose: PurposeSPF, Zone: zone, Name: p.Domain, Value: m.Record})
	return nil
}

// planDMARC writes the DMARC record: the rollout start, or the live record
// with our report addresses.
func (p *Plan) planDMARC(ctx context.Context, r DNS, d dmarcd.SenderDomain, zone string) (*dnsrecord.DMARCRecord, error) {
	name := "_dmarc." + p.Domain
	txts, err := r.TXT(ctx, name)
	if err != nil && !IsNotFound(err) {
		return nil, fmt.Errorf("reading the DMARC record of %s: %w", p.Domain, err)
	}
	live := dnsrecord.SelectDMARC(txts)
	rua, ruf := dnsrecord.MailtoURIs(d.RUA), dnsrecord.MailtoURIs(d.RUF)
	for _, u := range slices.Concat(rua, ruf) {
		if _, err := dnsrecord.ReportAddress(u); err != nil {
			return nil, fmt.Errorf("report address of %s: %v", p.Domain, err)
		}
	}
	var rec *dnsrecord.DMARCRecord
	switch len(live) {
	case 0:
		if len(rua) == 0 {
			return nil, fmt.Errorf("%w for %s: a p=none record without rua= brings no aggregate reports, so nothing would be learned and the rollout could not start; give one (--rua ADDRESS, or rua in its [[domain]] table)", ErrNoReportAddress, p.Domain)
		}
		rec = &dnsrecord.DMARCRecord{Policy: dmarcd.PolicyNone, RUA: rua, RUF: ruf}
		p.Notes = append(p.Notes, "DMARC: the slow rollout starts at p=none: receivers only report, nothing is quarantined or rejected; `dmarcd advise` says when to take the next step. "+
			"sp and np are left out, so subdomains and names that do not exist follow p as it moves; np=reject could be added now, since names that do not exist send no legitimate mail (RFC 7489 receivers ignore np).")
		if p.Mode == dmarcd.ModeSubdomain {
			disc, err := Discover(ctx, r, p.Domain)
			if err != nil {
				return nil, err
			}
			if applied := disc.Applied(); dnsrecord.PolicyRank(applied) > 0 {
				tag := "sp"
				if disc.Record.SubdomainPolicy == "" {
					tag = "p"
				}
				p.Notes = append(p.Notes, fmt.Sprintf("Careful: %s is now covered by %s=%s of %s; its own p=none lowers that while its mail is monitored. Publish p=%s instead if its mail already passes DMARC.",
					p.Domain, tag, applied, disc.PolicyDomain, applied))
			}
		}
	case 1:
		parsed, _, err := dnsrecord.ParseDMARC(live[0])
		if err != nil {
			return nil, err
		}
		rec = parsed
		rec.RUA = unionURIs(rec.RUA, rua)
		rec.RUF = unionURIs(rec.RUF, ruf)
		p.Notes = append(p.Notes, fmt.Sprintf("DMARC: the live record is kept at its policy (%s); only missing report addresses are added. `dmarcd advise` moves it along the rollout.", rec.Step()))
		if rec.ReportFormat != "" || rec.ReportInterval != nil {
			rec.ReportFormat, rec.ReportInterval = "", nil
			p.Notes = append(p.Notes, "DMARC: rf= and ri= are dropped: RFC 9989 removed them, and receivers ignore them.")
		}
		if s := rec.Step(); s.Policy != dmarcd.PolicyNone && s.Percent < 100 && !rec.Testing {
			rec.Testing = true
			p.Notes = append(p.Notes, fmt.Sprintf("DMARC: t=y is added beside pct=%d: without it, RFC 9989 receivers ignore pct and apply p=%s to all failing mail; with it, they apply the next lower policy while RFC 7489 receivers keep applying p=%s to %d%%.",
				s.Percent, s.Policy, s.Policy, s.Percent))
		}
		if rec.ActsAsNone != "" {
			p.Notes = append(p.Notes, fmt.Sprintf("DMARC: careful, %s: receivers treat the live record as p=none (RFC 7489 §6.6.3); the record below drops the invalid value.", rec.ActsAsNone))
		}
	default:
		return nil, fmt.Errorf("%s has %d DMARC records, so none applies (RFC 9989 §4.8): delete all but one, then run this again", name, len(live))
	}
	if len(rec.RUA) == 0 {
		p.Notes = append(p.Notes, "DMARC: CAREFUL: the record has no report address (rua): receivers send no aggregate reports, nothing is learned, and dmarcd has nothing to advise on. Add one (--rua).")
	}
	p.add(PlannedRecord{Purpose: PurposeDMARC, Zone: zone, Name: name, Value: rec.String()})
	return rec, nil
}

// ErrNoReportAddress is the wizard's refusal to write a first DMARC record
// without a report address.
var ErrNoReportAddress = errors.New("no report address")

// unionURIs appends the URIs of add that have is missing (by address,
// without case; a size limit of a live URI is kept).
func unionURIs(have, add []string) []string {
	out := slices.Clone(have)
	addr := func(u string) string {
		a, err := dnsrecord.ReportAddress(u)
		if err != nil {
			return u
		}
		return a
	}
	for _, a := range add {
		if !slices.ContainsFunc(out, func(h string) bool { return strings.EqualFold(addr(h), addr(a)) }) {
			out = append(out, a)
		}
	}
	return out
}

func (p *Plan) planReportAuthorization(ctx context.Context, r DNS, rec *dnsrecord.DMARCRecord) error {
	done := map[string]bool{}
	for _, u := range slices.Concat(rec.RUA, rec.RUF) {
		addr, err := dnsrecord.ReportAddress(u)
		if err != nil {
			continue
		}
		rd := strings.ToLower(addr[strings.LastIndexByte(addr, '@')+1:])
		if done[rd] {
			continue
		}
		done[rd] = true
		same, err := SameOrganization(ctx, r, p.Domain, rd)
		if err != nil {
			return err
		}
		if same {
			continue
		}
		p.add(PlannedRecord{Purpose: PurposeReportAuthorization, Zone: rd, Name: ReportAuthorizationName(p.Domain, rd), Value: "v=DMARC1",
			Note: fmt.Sprintf("in the zone of %s: lets receivers send the reports of %s to %s (RFC 7489 §7.1)", rd, p.Domain, addr)})
	}
	return nil
}

// Zones are the zones of the records, the domain's first.
func (p *Plan) Zones() []string {
	var zs []string
	for _, r := range p.Records {
		if !slices.Contains(zs, r.Zone) {
			zs = append(zs, r.Zone)
		}
	}
	return zs
}

// WriteBIND writes the records as BIND zone file lines. With a zone, only
// the records of that zone, after $ORIGIN, with relative names; with "",
// all records with absolute names. Long TXT values are split into quoted
// strings of at most dnsrecord.MaxStringOctets.
func (p *Plan) WriteBIND(w io.Writer, zone string) error {
	var b strings.Builder
	if zone != "" {
		fmt.Fprintf(&b, "$ORIGIN %s.\n", zone)
	}
	for _, r := range p.Records {
		if zone != "" && r.Zone != zone {
			continue
		}
		name := r.Name + "."
		if zone != "" {
			name = r.Host()
		}
		comment := r.Purpose
		if r.Note != "" {
			comment += ": " + r.Note
		}
		fmt.Fprintf(&b, "; %s\n%s\t%d\tIN\t%s\t%s\n", comment, name, r.TTL, r.Type, dnsrecord.Quote(r.Value))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteTable writes the records as rows for web DNS consoles: the zone,
// the host within it, the type, the TTL and the value to paste.
func (p *Plan) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ZONE\tHOST\tTYPE\tTTL\tVALUE")
	for _, r := range p.Records {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", r.Zone, r.Host(), r.Type, r.TTL, r.Value)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range p.Records {
		if len(r.Strings) > 1 {
			_, err := fmt.Fprintf(w, "\n%s is longer than %d characters: consoles that want one string each get these, in order:\n  %s\n",
				r.Name, dnsrecord.MaxStringOctets, dnsrecord.Quote(r.Value))
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// WriteJSON writes the plan as indented JSON.
func (p *Plan) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(p)
}

// The kinds of Difference.
const (
	DriftMissing = "missing" // not published
	DriftDiffers = "differs" // published, but not what the wizard writes
	DriftSeveral = "several" // several records where one belongs
)

// Difference is a record of the plan that the live DNS does not have as
// planned.
type Difference struct {
	Purpose string   `json:"purpose"`
	Name    string   `json:"name"`
	Kind    string   `json:"kind"`
	Want    string   `json:"want"`
	Live    []string `json:"live,omitempty"`
}

func (d Difference) String() string {
	switch d.Kind {
	case DriftMissing:
		return fmt.Sprintf("%s: the %s record is not published; want %q", d.Name, d.Purpose, d.Want)
	case DriftSeveral:
		return fmt.Sprintf("%s: %d %s records are published where one belongs (%s); want only %q", d.Name, len(d.Live), d.Purpose, strings.Join(quotedList(d.Live), ", "), d.Want)
	}
	return fmt.Sprintf("%s: the %s record published is %q; the wizard writes %q", d.Name, d.Purpose, strings.Join(d.Live, ""), d.Want)
}

// Drift compares the plan with the live DNS and lists the records that
// differ. Records are compared by meaning: SPF by its terms, DMARC by its
// tags, DKIM by its public key, a report authorization by being there.
func Drift(ctx context.Context, r DNS, p *Plan) ([]Difference, error) {
	var diffs []Difference
	for _, pr := range p.Records {
		txts, err := r.TXT(ctx, pr.Name)
		if err != nil && !IsNotFound(err) {
			return diffs, fmt.Errorf("comparing with the live DNS: %w", err)
		}
		var live []string
		same := func(string) bool { return false }
		switch pr.Purpose {
		case PurposeSPF:
			live = dnsrecord.SelectSPF(txts)
			same = func(l string) bool { return spfCanonical(l) == spfCanonical(pr.Value) }
		case PurposeDMARC:
			live = dnsrecord.SelectDMARC(txts)
			same = func(l string) bool { return dmarcCanonical(l) == dmarcCanonical(pr.Value) }
		case PurposeReportAuthorization:
			live = dnsrecord.SelectDMARC(txts)
			same = func(string) bool { return true }
		case PurposeDKIM:
			want, wantErr := dnsrecord.ParseKey(pr.Value)
			live = txts
			same = func(l string) bool {
				k, err := dnsrecord.ParseKey(l)
				return wantErr == nil && err == nil && sameKey(want, k)
			}
		}
		diff := Difference{Purpose: pr.Purpose, Name: pr.Name, Want: pr.Value, Live: live}
		switch {
		case len(live) == 0:
			diff.Kind = DriftMissing
		case len(live) > 1:
			diff.Kind = DriftSeveral
		case !same(live[0]):
			diff.Kind = DriftDiffers
		default:
			continue
		}
		diffs = append(diffs, diff)
	}
	return diffs, nil
}

// spfCanonical writes an SPF record by its terms, so that case, extra
// spaces and "+" do not count as differences.
func spfCanonical(txt string) string {
	rec, fs := dnsrecord.ParseSPF(txt)
	if rec == nil || HasErrors(fs) {
		return txt
	}
	keys := make([]string, len(rec.Terms))
	for i, t := range rec.Terms {
		if t.Modifier != "" {
			keys[i] = t.Modifier + "=" + strings.ToLower(t.Domain)
			continue
		}
		keys[i] = spfTermKey(t)
	}
	return strings.Join(keys, " ")
}

// dmarcCanonical writes a DMARC record in the canonical order of
// Record.String.
func dmarcCanonical(txt string) string {
	rec, _, err := dnsrecord.ParseDMARC(txt)
	if err != nil {
		return txt
	}
	return rec.String()
}

// checkDomainName reports the number of labels of a domain name, and
// whether it is one: letters, digits, hyphens and underscores, labels of
// 1 to 63 octets, at most 253 octets.
func checkDomainName(s string) (int, bool) {
	if s == "" || len(s) > 253 {
		return 0, false
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || strings.HasPrefix(l, "-") || strings.HasSuffix(l, "-") {
			return 0, false
		}
		for i := 0; i < len(l); i++ {
			c := l[i] | 0x20
			if !(c >= 'a' && c <= 'z' || asciiDigit(l[i]) || l[i] == '-' || l[i] == '_') {
				return 0, false
			}
		}
	}
	return len(labels), true
}

// parentOf is domain without its left-most label.
func parentOf(domain string) (string, bool) {
	_, parent, ok := strings.Cut(domain, ".")
	return parent, ok && parent != ""
}
