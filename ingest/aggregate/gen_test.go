package aggregate

import (
	"bufio"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd/internal/reportgen"
)

// writeReport writes an aggregate report of n records to w, as a large
// reporter would send it, for benchmarks and the memory test. Compact
// records leave out the indentation and the DKIM result.
func writeReport(w io.Writer, n int, compact bool) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	fmt.Fprintf(bw, `<?xml version="1.0" encoding="UTF-8"?>
<feedback>
  <report_metadata>
    <org_name>generated.example</org_name>
    <email>dmarc@generated.example</email>
    <report_id>generated-%d</report_id>
    <date_range><begin>1700000000</begin><end>1700086399</end></date_range>
  </report_metadata>
  <policy_published>
    <domain>example.com</domain><adkim>r</adkim><aspf>r</aspf><p>reject</p><sp>reject</sp><pct>100</pct>
  </policy_published>
`, n)
	dispositions := [...]string{"none", "quarantine", "reject"}
	results := [...]string{"pass", "fail"}
	for i := range n {
		ip := fmt.Sprintf("%d.%d.%d.%d", 10+i>>24&0x7f, i>>16&0xff, i>>8&0xff, i&0xff)
		if i%10 == 0 {
			ip = fmt.Sprintf("2001:db8::%x", i)
		}
		if compact {
			fmt.Fprintf(bw, `<record><row><source_ip>%s</source_ip><count>%d</count><policy_evaluated><disposition>%s</disposition><dkim>%s</dkim><spf>%s</spf></policy_evaluated></row><identifiers><header_from>example.com</header_from></identifiers><auth_results><spf><domain>bounce%d.example.com</domain><result>%s</result></spf></auth_results></record>
`, ip, 1+i%7, dispositions[i%3], results[i%2], results[i/2%2], i%100, results[i/2%2])
			continue
		}
		fmt.Fprintf(bw, `  <record>
    <row>
      <source_ip>%s</source_ip>
      <count>%d</count>
      <policy_evaluated><disposition>%s</disposition><dkim>%s</dkim><spf>%s</spf></policy_evaluated>
    </row>
    <identifiers><header_from>example.com</header_from><envelope_from>bounce%d.example.com</envelope_from></identifiers>
    <auth_results>
      <dkim><domain>example.com</domain><selector>s%d</selector><result>%s</result></dkim>
      <spf><domain>bounce%d.example.com</domain><scope>mfrom</scope><result>%s</result></spf>
    </auth_results>
  </record>
`, ip, 1+i%7, dispositions[i%3], results[i%2], results[i/2%2], i%100, i%4, results[i%2], i%100, results[i/2%2])
	}
	bw.WriteString("</feedback>\n")
	return bw.Flush()
}

// generatedReports returns the XML of n reports of internal/reportgen's
// realistic mix of sizes and reporters, as the parse section of make bench
// writes them (internal/bench/corpus.go: seed 1, 20 domains, the dialect
// of before RFC 9990), for benchmarks.
func generatedReports(tb testing.TB, n int) [][]byte {
	tb.Helper()
	return generate(n, 1, true)
}

// generate returns n reports of reportgen with seed; legacy leaves out the
// RFC 9990 dialect that some reporters write.
func generate(n int, seed uint64, legacy bool) [][]byte {
	var domains []string
	for i := range 20 {
		domains = append(domains, fmt.Sprintf("domain%02d.example", i))
	}
	g := reportgen.New(reportgen.Options{Seed: seed, Domains: domains, Sizes: reportgen.RealisticSizes, Legacy: legacy})
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	reps := reportgen.Reporters
	docs := make([][]byte, n)
	for i := range n {
		day := start.AddDate(0, 0, i/(len(reps)*len(domains)))
		docs[i], _, _ = g.AggregateXML(reps[i%len(reps)], domains[(i/len(reps))%len(domains)], day, 2000)
	}
	return docs
}
