package aggregate_test

import (
	"fmt"
	"io"
	"log"
	"strings"

	"github.com/dmarcd/dmarcd/ingest/aggregate"
)

func Example() {
	const xml = `<?xml version="1.0" encoding="UTF-8"?>
<feedback>
  <report_metadata>
    <org_name>receiver.example</org_name>
    <email>dmarc@receiver.example</email>
    <report_id>42</report_id>
    <date_range><begin>1700000000</begin><end>1700086399</end></date_range>
  </report_metadata>
  <policy_published><domain>example.com</domain><p>reject</p><pct>100</pct></policy_published>
  <record>
    <row>
      <source_ip>192.0.2.1</source_ip>
      <count> 3 </count>
      <policy_evaluated><disposition>none</disposition><dkim>PASS</dkim><spf>fail</spf></policy_evaluated>
    </row>
    <identifiers><header_from>example.com</header_from></identifiers>
    <auth_results><spf><domain>example.com</domain><result>fail</result></spf></auth_results>
  </record>
</feedback>`

	d := aggregate.NewDecoder(strings.NewReader(xml))
	h, err := d.Header()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(h.Reporter(), h.Metadata.ReportID, h.Policy.Domain, h.Policy.P)
	for {
		rec, err := d.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(rec.SourceIP, rec.Count, rec.Disposition, rec.DKIM, rec.SPF)
	}
	r := d.Report()
	fmt.Println(r.RecordCount, r.MessageCount, r.Tolerations)
	// Output:
	// receiver.example 42 example.com reject
	// 192.0.2.1 3 none pass fail
	// 1 3 [ws-in:count uppercase-values]
}
