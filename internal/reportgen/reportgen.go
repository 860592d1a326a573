// Package reportgen writes realistic DMARC report corpora of any size:
// aggregate reports from the large reporters, in the containers and
// dialects they use (plain XML, gzip, zip, mail messages, RFC 9990
// namespaces), and failure reports. Output is reproducible from a seed.
//
// It serves the samples of the repository, tests, and benchmarks.
package reportgen

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"strings"
	"time"
)

// Reporter is a mailbox provider that sends aggregate reports, with the
// habits of its real reports.
type Reporter struct {
	OrgName   string
	Email     string
	Container string // "zip", "gzip", "xml"
	RFC9990   bool   // writes the dmarc-2.0 namespace and RFC 9990 fields
}

// Reporters are modelled on what Google, Microsoft, Yahoo, GMX and others
// send.
var Reporters = []Reporter{
	{OrgName: "google.com", Email: "noreply-dmarc-support@google.com", Container: "zip"},
	{OrgName: "Outlook.com", Email: "dmarcreport@microsoft.com", Container: "gzip"},
	{OrgName: "Yahoo", Email: "dmarchelp@yahooinc.com", Container: "gzip"},
	{OrgName: "GMX", Email: "noreply-dmarc@gmx.net", Container: "gzip", RFC9990: true},
	{OrgName: "Mail.Ru", Email: "dmarc_support@corp.mail.ru", Container: "gzip"},
	{OrgName: "Fastmail Pty Ltd", Email: "dmarc-reports@fastmail.com", Container: "gzip"},
	{OrgName: "WEB.DE", Email: "noreply-dmarc@web.de", Container: "xml", RFC9990: true},
}

// SourceClass says how a generated source behaves.
type SourceClass int

const (
	// Ours: our own servers, aligned DKIM and SPF pass.
	Ours SourceClass = iota
	// ThirdParty: an authorized sender (a newsletter service), DKIM with
	// our selector passes, SPF aligned only when it uses our domain.
	ThirdParty
	// Forwarder: mail forwarded by a list or mailbox; our DKIM survives,
	// SPF fails.
	Forwarder
	// Spoofer: unauthenticated mail using our domain, from an address
	// that changes every day (see dailyIP), as spoofing campaigns send.
	Spoofer
)

// dailyIP is the address a spoofer uses on the day of begin: its own
// address moved by the day number within its /16 (IPv4) or its last 32
// bits (IPv6). No random draw, so that the rest of the output stays as it
// was for a seed.
func dailyIP(ip string, begin time.Time) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	n := uint32(begin.Unix()/86400) * 7919
	b := a.AsSlice()
	k := len(b)
	if a.Is4() {
		v := uint32(b[2])<<8 | uint32(b[3])
		v = (v + n) & 0xffff
		b[2], b[3] = byte(v>>8), byte(v)
	} else {
		v := uint32(b[k-4])<<24 | uint32(b[k-3])<<16 | uint32(b[k-2])<<8 | uint32(b[k-1])
		v += n
		b[k-4], b[k-3], b[k-2], b[k-1] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
	}
	out, _ := netip.AddrFromSlice(b)
	return out.String()
}

// Source is one sending address in the generated data.
type Source struct {
	IP    string
	Class SourceClass
	// Weight is its share of the domain's volume.
	Weight float64
}

// Options say what to generate.
type Options struct {
	Seed    uint64
	Domains []string
	// Start is the first day; Days the number of days.
	Start time.Time
	Days  int
	// MessagesPerDay is the mean mail volume of one domain at one
	// reporter per day.
	MessagesPerDay int
	// Sources is the number of distinct source IPs per domain.
	Sources int
	// Selector is the DKIM selector our mail is signed with.
	Selector string
	// FailureReports is the number of failure report mails to write.
	FailureReports int

	// The options below change nothing when left zero: the same seed
	// writes the same files as before they existed.

	// Sizes, when set, draws the number of records of each aggregate
	// report from this mix (see RealisticSizes), each record a distinct
	// source of the domain, instead of one record per source of the
	// domain that sent mail that day (Sources, about 5-12 records).
	Sizes []Size
	// Legacy writes every report in the dialect of before RFC 9990 (no
	// dmarc-2.0 namespace, no RFC 9990 elements), which older tools read.
	Legacy bool
	// FailureKinds, when set, draws the kind of each failure report
	// uniformly from this list (repeat a kind to weight it); by default
	// every failure report is FailureHeaders.
	FailureKinds []FailureKind
	// TLSReports adds, after the other files, the SMTP TLS reports (RFC
	// 8460) of each day and domain from Google and Microsoft, in their
	// mails: an MTA-STS policy for the first domain (with certificate
	// failures at one MX host on two days), no policy found for the others.
	TLSReports bool
}

// Size is a class of aggregate report sizes: reports of Min to Max
// records (uniformly), drawn with probability Weight / sum of weights.
type Size struct {
	Min, Max int
	Weight   float64
}

// RealisticSizes is the mix of report sizes of a mailbox of reports for a
// few busy domains: most reports hold a few records (small reporters, quiet
// days), some tens, few hundreds or thousands (the large reporters of a
// domain with many sending addresses). It averages about 60 records a
// report.
var RealisticSizes = []Size{
	{Min: 1, Max: 5, Weight: 60},
	{Min: 6, Max: 50, Weight: 30},
	{Min: 51, Max: 500, Weight: 9},
	{Min: 501, Max: 5000, Weight: 1},
}

// FailureKind says what a generated failure report looks like.
type FailureKind int

const (
	// FailureHeaders: Auth-Failure dmarc, SPF failed and no DKIM, the
	// reported message's header as text/rfc822-headers (what most
	// receivers send, RFC 9991 §3.2).
	FailureHeaders FailureKind = iota
	// FailureMessage: the whole reported message, body included, as
	// message/rfc822.
	FailureMessage
	// FailureDKIM: Auth-Failure dkim with the DKIM-Domain, DKIM-Selector
	// and DKIM-Identity fields (RFC 6591 §3.1), the reported header
	// carrying the failed DKIM-Signature.
	FailureDKIM
	// FailureSPF: Auth-Failure spf with the SPF-DNS field (RFC 6591 §3.2).
	FailureSPF
)

// FailureMix has each kind of failure report once.
var FailureMix = []FailureKind{FailureHeaders, FailureMessage, FailureDKIM, FailureSPF}

// File is one generated file: a name and its bytes.
type File struct {
	Name string
	Data []byte
	// Records and Messages are what the file holds, for checks.
	Reports  int
	Records  int
	Messages int64
}

// Generator produces files from Options.
type Generator struct {
	opt      Options
	rng      *rand.Rand
	sources  map[string][]Source
	msgSeq   int
	failures int
}

// New returns a generator. Zero options get defaults.
func New(opt Options) *Generator {
	if len(opt.Domains) == 0 {
		opt.Domains = []string{"example.com"}
	}
	if opt.Start.IsZero() {
		opt.Start = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	}
	if opt.Days == 0 {
		opt.Days = 7
	}
	if opt.MessagesPerDay == 0 {
		opt.MessagesPerDay = 1000
	}
	if opt.Sources == 0 {
		opt.Sources = 12
	}
	if opt.Selector == "" {
		opt.Selector = "s2026"
	}
	g := &Generator{opt: opt, rng: rand.New(rand.NewPCG(opt.Seed, opt.Seed^0x9e3779b97f4a7c15)), sources: map[string][]Source{}}
	for _, d := range opt.Domains {
		g.sources[d] = g.makeSources(g.poolSize())
	}
	return g
}

// poolSize is the number of sources of a domain: Sources, or enough for
// the largest report of Sizes.
func (g *Generator) poolSize() int {
	n := g.opt.Sources
	for _, s := range g.opt.Sizes {
		n = max(n, s.Max)
	}
	return n
}

// makeSources draws n sources: a few of ours carry most of the mail.
func (g *Generator) makeSources(n int) []Source {
	out := make([]Source, 0, n)
	for i := range n {
		var s Source
		switch {
		case i < max(1, n/4):
			s = Source{IP: g.ip("192.0.2.0/24"), Class: Ours, Weight: 20}
		case i < max(2, n/3):
			s = Source{IP: g.ip("198.51.100.0/24"), Class: ThirdParty, Weight: 6}
		case i < max(3, n/2):
			s = Source{IP: g.ip("203.0.113.0/24"), Class: Forwarder, Weight: 1}
		default:
			s = Source{IP: g.ip("100.64.0.0/10"), Class: Spoofer, Weight: 0.3}
		}
		if g.rng.IntN(5) == 0 {
			s.IP = g.ip6()
		}
		out = append(out, s)
	}
	return out
}

func (g *Generator) ip(prefix string) string {
	p := netip.MustParsePrefix(prefix)
	a := p.Addr().As4()
	host := g.rng.Uint32() & (1<<(32-p.Bits()) - 1)
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String()
}

func (g *Generator) ip6() string {
	var b [16]byte
	copy(b[:], []byte{0x20, 0x01, 0x0d, 0xb8})
	for i := 8; i < 16; i++ {
		b[i] = byte(g.rng.UintN(256))
	}
	return netip.AddrFrom16(b).String()
}

// Files writes every report of the options: for each day, domain and
// reporter one aggregate report in the reporter's container, then the
// failure reports.
func (g *Generator) Files() []File {
	var files []File
	g.Stream(func(f File) error { files = append(files, f); return nil })
	return files
}

// Stream is Files one file at a time, without holding them all: it calls
// fn with each file in the order of Files, and stops at the first error of
// fn, which it returns.
func (g *Generator) Stream(fn func(File) error) error {
	for day := range g.opt.Days {
		begin := g.opt.Start.AddDate(0, 0, day)
		for _, domain := range g.opt.Domains {
			for i, rep := range Reporters {
				// Smaller reporters do not report every day.
				if i > 2 && g.rng.IntN(3) == 0 {
					continue
				}
				if err := fn(g.Aggregate(rep, domain, begin, g.opt.MessagesPerDay/(1+i))); err != nil {
					return err
				}
			}
		}
	}
	for i := range g.opt.FailureReports {
		domain := g.opt.Domains[i%len(g.opt.Domains)]
		if err := fn(g.Failure(domain, g.opt.Start.Add(time.Duration(i)*37*time.Minute))); err != nil {
			return err
		}
	}
	if g.opt.TLSReports {
		for day := range g.opt.Days {
			begin := g.opt.Start.AddDate(0, 0, day)
			for d, domain := range g.opt.Domains {
				for i, rep := range TLSReporters {
					if err := fn(g.TLSReport(rep, domain, d == 0, begin, day, g.opt.MessagesPerDay/(1+i))); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// TLSReporters are the senders of the generated SMTP TLS reports.
var TLSReporters = []Reporter{
	{OrgName: "Google Inc.", Email: "smtp-tls-reporting@google.com"},
	{OrgName: "Microsoft Corporation", Email: "tlsrpt-noreply@microsoft.com"},
}

// TLSReport writes the SMTP TLS report (RFC 8460) of one reporter about
// one domain and day, as the mail the reporter sends (a gzipped JSON
// attachment, application/tlsrpt+gzip), with about sessions sessions. With
// sts, the domain publishes an MTA-STS policy, and on the fifth and sixth
// day of the run the certificate of its second MX host has expired.
func (g *Generator) TLSReport(rep Reporter, domain string, sts bool, begin time.Time, dayIndex, sessions int) File {
	end := begin.Add(24*time.Hour - time.Second)
	id := fmt.Sprintf("%s_%s", begin.Format(time.RFC3339), domain)
	ok := sessions/2 + g.rng.IntN(sessions/2+1)
	var policy string
	if sts {
		failed := 0
		details := ""
		if dayIndex == 4 || dayIndex == 5 {
			failed = 1 + ok/25
			ok -= failed
			details = fmt.Sprintf(`,
    "failure-details": [{"result-type": "certificate-expired", "sending-mta-ip": "%s",
      "receiving-mx-hostname": "mx2.%s", "receiving-ip": "%s", "failed-session-count": %d}]`,
				g.ip("209.85.220.0/24"), domain, g.ip("192.0.2.0/24"), failed)
		}
		policy = fmt.Sprintf(`{
    "policy": {"policy-type": "sts", "policy-string": ["version: STSv1", "mode: enforce", "mx: mx1.%[1]s", "mx: mx2.%[1]s", "max_age: 604800"],
      "policy-domain": "%[1]s", "mx-host": ["mx1.%[1]s", "mx2.%[1]s"]},
    "summary": {"total-successful-session-count": %[2]d, "total-failure-session-count": %[3]d}%[4]s
  }`, domain, ok, failed, details)
	} else {
		policy = fmt.Sprintf(`{
    "policy": {"policy-type": "no-policy-found", "policy-domain": "%s"},
    "summary": {"total-successful-session-count": %d, "total-failure-session-count": 0}
  }`, domain, ok)
	}
	report := fmt.Sprintf(`{
  "organization-name": "%s",
  "date-range": {"start-datetime": "%s", "end-datetime": "%s"},
  "contact-info": "%s",
  "report-id": "%s",
  "policies": [%s]
}
`, rep.OrgName, begin.Format(time.RFC3339), end.Format(time.RFC3339), rep.Email, id, policy)
	sender := strings.ToLower(strings.Fields(rep.OrgName)[0]) + ".com"
	name := fmt.Sprintf("%s!%s!%d!%d!001.json.gz", sender, domain, begin.Unix(), end.Unix())
	return File{Name: strings.TrimSuffix(name, ".json.gz") + ".tls.eml", Data: g.mail(rep, domain, name, "application/tlsrpt+gzip", gzipped([]byte(report))), Reports: 1}
}

// Aggregate writes one aggregate report of about messages mails, in the
// reporter's container.
func (g *Generator) Aggregate(rep Reporter, domain string, begin time.Time, messages int) File {
	xmlData, records, total := g.AggregateXML(rep, domain, begin, messages)
	end := begin.Add(24*time.Hour - time.Second)
	base := fmt.Sprintf("%s!%s!%d!%d", strings.ToLower(strings.ReplaceAll(rep.OrgName, " ", "")), domain, begin.Unix(), end.Unix())
	f := File{Reports: 1, Records: records, Messages: total}
	switch rep.Container {
	case "zip":
		f.Name, f.Data = base+".eml", g.mail(rep, domain, base+".zip", "application/zip", zipped(base+".xml", xmlData))
	case "gzip":
		f.Name, f.Data = base+".eml", g.mail(rep, domain, base+".xml.gz", "application/gzip", gzipped(xmlData))
	default:
		f.Name, f.Data = base+".xml", xmlData
	}
	return f
}

// Forms writes one aggregate report, as Aggregate does, in each container
// a report comes in, with the same XML inside: bare (NAME.xml), gzip
// (NAME.xml.gz), zip (NAME.zip holding NAME.xml), and the report mail the
// reporter sends (NAME.eml, with the reporter's zip or gzip attached; gzip
// for reporters that send bare XML). NAME is the reporter!domain!begin!end
// of the reporters' file names. Parsers can then be compared on the same
// reports in every container.
func (g *Generator) Forms(rep Reporter, domain string, begin time.Time, messages int) []File {
	xmlData, records, total := g.AggregateXML(rep, domain, begin, messages)
	end := begin.Add(24*time.Hour - time.Second)
	base := fmt.Sprintf("%s!%s!%d!%d", strings.ToLower(strings.ReplaceAll(rep.OrgName, " ", "")), domain, begin.Unix(), end.Unix())
	gz, zp := gzipped(xmlData), zipped(base+".xml", xmlData)
	var eml []byte
	if rep.Container == "zip" {
		eml = g.mail(rep, domain, base+".zip", "application/zip", zp)
	} else {
		eml = g.mail(rep, domain, base+".xml.gz", "application/gzip", gz)
	}
	f := func(name string, data []byte) File {
		return File{Name: name, Data: data, Reports: 1, Records: records, Messages: total}
	}
	return []File{f(base+".xml", xmlData), f(base+".xml.gz", gz), f(base+".zip", zp), f(base+".eml", eml)}
}

// AggregateMail writes one aggregate report as the report mail the
// reporter sends (NAME.eml, the fourth of Forms), without the other
// containers: what a mailbox of reports holds.
func (g *Generator) AggregateMail(rep Reporter, domain string, begin time.Time, messages int) File {
	xmlData, records, total := g.AggregateXML(rep, domain, begin, messages)
	end := begin.Add(24*time.Hour - time.Second)
	base := fmt.Sprintf("%s!%s!%d!%d", strings.ToLower(strings.ReplaceAll(rep.OrgName, " ", "")), domain, begin.Unix(), end.Unix())
	f := File{Name: base + ".eml", Reports: 1, Records: records, Messages: total}
	if rep.Container == "zip" {
		f.Data = g.mail(rep, domain, base+".zip", "application/zip", zipped(base+".xml", xmlData))
	} else {
		f.Data = g.mail(rep, domain, base+".xml.gz", "application/gzip", gzipped(xmlData))
	}
	return f
}

// AggregateXML writes the XML of one report. It returns the number of
// records and the sum of their counts.
func (g *Generator) AggregateXML(rep Reporter, domain string, begin time.Time, messages int) ([]byte, int, int64) {
	var b bytes.Buffer
	end := begin.Add(24*time.Hour - time.Second)
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	if g.opt.Legacy {
		rep.RFC9990 = false
	}
	if rep.RFC9990 {
		b.WriteString(`<feedback xmlns="urn:ietf:params:xml:ns:dmarc-2.0">` + "\n  <version>1.0</version>\n")
	} else {
		b.WriteString("<feedback>\n")
	}
	fmt.Fprintf(&b, "  <report_metadata>\n    <org_name>%s</org_name>\n    <email>%s</email>\n    <report_id>%d</report_id>\n    <date_range>\n      <begin>%d</begin>\n      <end>%d</end>\n    </date_range>\n",
		esc(rep.OrgName), esc(rep.Email), g.rng.Uint64()>>1, begin.Unix(), end.Unix())
	if rep.RFC9990 {
		b.WriteString("    <generator>reportgen</generator>\n")
	}
	b.WriteString("  </report_metadata>\n")
	fmt.Fprintf(&b, "  <policy_published>\n    <domain>%s</domain>\n    <adkim>r</adkim>\n    <aspf>r</aspf>\n    <p>none</p>\n    <sp>none</sp>\n", esc(domain))
	if rep.RFC9990 {
		b.WriteString("    <np>none</np>\n    <testing>n</testing>\n    <discovery_method>treewalk</discovery_method>\n")
	} else {
		b.WriteString("    <pct>100</pct>\n")
	}
	b.WriteString("  </policy_published>\n")

	sources := g.sources[domain]
	if sources == nil {
		sources = g.makeSources(g.poolSize())
		g.sources[domain] = sources
	}
	if len(g.opt.Sizes) > 0 {
		return g.sizedRecords(&b, domain, sources, messages, rep.RFC9990, begin)
	}
	var weight float64
	for _, s := range sources {
		weight += s.Weight
	}
	records := 0
	var total int64
	for _, s := range sources {
		n := int64(float64(messages) * s.Weight / weight * (0.5 + g.rng.Float64()))
		if n == 0 {
			if g.rng.IntN(2) == 0 {
				continue
			}
			n = 1
		}
		if s.Class == Spoofer {
			s.IP = dailyIP(s.IP, begin)
		}
		g.record(&b, domain, s, n, rep.RFC9990)
		records++
		total += n
	}
	b.WriteString("</feedback>\n")
	return b.Bytes(), records, total
}

// sizedRecords writes the records of a report whose size is drawn from
// Options.Sizes: that many distinct sources of the domain, each with at
// least one message, then closes the document.
func (g *Generator) sizedRecords(b *bytes.Buffer, domain string, sources []Source, messages int, rfc9990 bool, begin time.Time) ([]byte, int, int64) {
	var sum float64
	for _, s := range g.opt.Sizes {
		sum += s.Weight
	}
	x := g.rng.Float64() * sum
	size := g.opt.Sizes[len(g.opt.Sizes)-1]
	for _, s := range g.opt.Sizes {
		if x < s.Weight {
			size = s
			break
		}
		x -= s.Weight
	}
	n := size.Min
	if size.Max > size.Min {
		n += g.rng.IntN(size.Max - size.Min + 1)
	}
	n = max(1, min(n, len(sources)))
	// A partial Fisher-Yates shuffle picks n distinct sources.
	idx := make([]int, len(sources))
	for i := range idx {
		idx[i] = i
	}
	var weight float64
	for i := range n {
		j := i + g.rng.IntN(len(idx)-i)
		idx[i], idx[j] = idx[j], idx[i]
		weight += sources[idx[i]].Weight
	}
	var total int64
	for _, k := range idx[:n] {
		s := sources[k]
		c := max(1, int64(float64(messages)*s.Weight/weight*(0.5+g.rng.Float64())))
		if s.Class == Spoofer {
			s.IP = dailyIP(s.IP, begin)
		}
		g.record(b, domain, s, c, rfc9990)
		total += c
	}
	b.WriteString("</feedback>\n")
	return b.Bytes(), n, total
}

func (g *Generator) record(b *bytes.Buffer, domain string, s Source, n int64, rfc9990 bool) {
	dkimPass, spfPass := true, true
	dkimDomain, spfDomain := domain, domain
	switch s.Class {
	case ThirdParty:
		spfDomain = "bounces.mailer.example.net"
		spfPass = true
	case Forwarder:
		spfDomain = "lists.example.org"
		spfPass = false
	case Spoofer:
		dkimPass, spfPass = false, false
		dkimDomain = ""
	}
	aligned := func(pass bool, d string) string {
		if pass && d == domain {
			return "pass"
		}
		return "fail"
	}
	dkimEval, spfEval := aligned(dkimPass, dkimDomain), aligned(spfPass, spfDomain)
	fmt.Fprintf(b, "  <record>\n    <row>\n      <source_ip>%s</source_ip>\n      <count>%d</count>\n      <policy_evaluated>\n        <disposition>none</disposition>\n        <dkim>%s</dkim>\n        <spf>%s</spf>\n",
		s.IP, n, dkimEval, spfEval)
	if s.Class == Forwarder && !rfc9990 && g.rng.IntN(2) == 0 {
		b.WriteString("        <reason>\n          <type>forwarded</type>\n        </reason>\n")
	}
	b.WriteString("      </policy_evaluated>\n    </row>\n")
	envelope := spfDomain
	if s.Class == Spoofer {
		envelope = domain
	}
	fmt.Fprintf(b, "    <identifiers>\n      <header_from>%s</header_from>\n      <envelope_from>%s</envelope_from>\n    </identifiers>\n    <auth_results>\n", domain, envelope)
	if dkimDomain != "" {
		result := "pass"
		if !dkimPass {
			result = "fail"
		}
		fmt.Fprintf(b, "      <dkim>\n        <domain>%s</domain>\n        <selector>%s</selector>\n        <result>%s</result>\n      </dkim>\n", dkimDomain, g.opt.Selector, result)
	}
	spfResult := "pass"
	if !spfPass {
		spfResult = "softfail"
	}
	fmt.Fprintf(b, "      <spf>\n        <domain>%s</domain>\n", envelope)
	if !rfc9990 {
		b.WriteString("        <scope>mfrom</scope>\n")
	}
	fmt.Fprintf(b, "        <result>%s</result>\n      </spf>\n    </auth_results>\n  </record>\n", spfResult)
}

// Failure writes one RFC 9991 failure report mail about a spoofed message,
// of a kind drawn from Options.FailureKinds (FailureHeaders by default).
func (g *Generator) Failure(domain string, at time.Time) File {
	kind := FailureHeaders
	if len(g.opt.FailureKinds) > 0 {
		kind = g.opt.FailureKinds[g.rng.IntN(len(g.opt.FailureKinds))]
	}
	g.msgSeq++
	g.failures++
	src := g.ip("100.64.0.0/10")
	orig := fmt.Sprintf("From: \"Billing\" <billing@%s>\r\nTo: someone@example.net\r\nSubject: Invoice %d overdue\r\nDate: %s\r\nMessage-ID: <%d.spoof@%s>\r\n",
		domain, 1000+g.msgSeq, at.Format(time.RFC1123Z), g.rng.Uint64(), "spoofer.example")
	authFailure, fields, dkimResult := "dmarc", "", "dkim=none"
	origType := "text/rfc822-headers"
	switch kind {
	case FailureMessage:
		origType = "message/rfc822"
		orig += "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n" +
			"Dear customer,\r\n\r\nyour invoice is overdue. Please pay at once using the link below.\r\n\r\n" +
			"https://pay.spoofer.example/invoice\r\n\r\nBilling department\r\n"
	case FailureDKIM:
		authFailure = "dkim"
		fields = fmt.Sprintf("DKIM-Domain: %s\r\nDKIM-Identity: @%s\r\nDKIM-Selector: %s\r\n", domain, domain, g.opt.Selector)
		dkimResult = fmt.Sprintf("dkim=fail (signature did not verify) header.d=%s header.s=%s", domain, g.opt.Selector)
		orig = fmt.Sprintf("DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=%s; s=%s;\r\n\th=from:to:subject:date:message-id; bh=%s;\r\n\tb=%s\r\n",
			domain, g.opt.Selector, base64.StdEncoding.EncodeToString(g.bytes(32)), base64.StdEncoding.EncodeToString(g.bytes(256))) + orig
	case FailureSPF:
		authFailure = "spf"
		fields = fmt.Sprintf("SPF-DNS: txt : %s : \"v=spf1 ip4:192.0.2.0/24 include:_spf.mailer.example.net -all\"\r\n", domain)
	}
	var b bytes.Buffer
	boundary := fmt.Sprintf("==boundary-%d==", g.msgSeq)
	fmt.Fprintf(&b, "From: DMARC failure reports <dmarc-failure@receiver.example>\r\nTo: ruf@%s\r\nSubject: DMARC failure report for %s from IP %s\r\nDate: %s\r\nMessage-ID: <failure-%d@receiver.example>\r\nMIME-Version: 1.0\r\n",
		domain, domain, src, at.Add(time.Minute).Format(time.RFC1123Z), g.msgSeq)
	fmt.Fprintf(&b, "Content-Type: multipart/report; report-type=feedback-report; boundary=\"%s\"\r\n\r\n", boundary)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nThis is a DMARC failure report for %s: a message from %s failed authentication.\r\n\r\n", boundary, domain, src)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: auth-failure\r\nVersion: 1\r\nUser-Agent: reportgen/1.0\r\nAuth-Failure: %s\r\n%sIdentity-Alignment: none\r\nReported-Domain: %s\r\nSource-IP: %s\r\nOriginal-Mail-From: <billing@%s>\r\nArrival-Date: %s\r\nAuthentication-Results: receiver.example; dmarc=fail (p=none) header.from=%s; spf=fail smtp.mailfrom=%s; %s\r\n\r\n",
		boundary, authFailure, fields, domain, src, domain, at.Format(time.RFC1123Z), domain, domain, dkimResult)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: %s\r\n\r\n%s\r\n--%s--\r\n", boundary, origType, orig, boundary)
	return File{Name: fmt.Sprintf("failure-%s-%03d.eml", domain, g.failures), Data: b.Bytes(), Reports: 1}
}

// bytes returns n random bytes.
func (g *Generator) bytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.rng.UintN(256))
	}
	return b
}

// mail wraps an attachment in a report mail as the reporters send it.
func (g *Generator) mail(rep Reporter, domain, filename, contentType string, attachment []byte) []byte {
	g.msgSeq++
	var b bytes.Buffer
	boundary := fmt.Sprintf("_----------=_%d", g.rng.Uint64())
	fmt.Fprintf(&b, "From: %s <%s>\r\nTo: dmarc-reports@%s\r\nSubject: Report Domain: %s Submitter: %s Report-ID: <%d>\r\nDate: Mon, 2 Nov 2026 08:00:00 +0000\r\nMessage-ID: <%d.%d@%s>\r\nMIME-Version: 1.0\r\n",
		rep.OrgName, rep.Email, domain, domain, rep.OrgName, g.msgSeq, g.rng.Uint64(), g.msgSeq, "reports.example")
	fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nThis is an aggregate report from %s.\r\n\r\n", boundary, boundary, rep.OrgName)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: %s; name=\"%s\"\r\nContent-Disposition: attachment; filename=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n\r\n", boundary, contentType, filename, filename)
	enc := base64.StdEncoding.EncodeToString(attachment)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n--" + boundary + "--\r\n")
	return b.Bytes()
}

func gzipped(data []byte) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(data)
	zw.Close()
	return b.Bytes()
}

func zipped(name string, data []byte) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, _ := zw.Create(name)
	io.Copy(w, bytes.NewReader(data))
	zw.Close()
	return b.Bytes()
}

var xmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")

func esc(s string) string { return xmlEscaper.Replace(s) }
