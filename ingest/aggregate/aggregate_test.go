package aggregate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/encoding/unicode"

	"github.com/dmarcd/dmarcd"
)

func parseFile(t *testing.T, name string) (*dmarcd.AggregateReport, []dmarcd.Record) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	r, records, err := Parse(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return r, records
}

func parseString(t *testing.T, doc string) (*dmarcd.AggregateReport, []dmarcd.Record) {
	t.Helper()
	r, records, err := Parse(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	return r, records
}

// wantTolerations checks that r notes exactly the codes given, in any order.
func wantTolerations(t *testing.T, r *dmarcd.AggregateReport, codes ...string) {
	t.Helper()
	got := slices.Sorted(slices.Values(r.Tolerations))
	want := slices.Sorted(slices.Values(codes))
	if !slices.Equal(got, want) {
		t.Errorf("tolerations %q, want %q", got, want)
	}
}

func check[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// report builds a small report around the records given, as XML.
func report(records ...string) string {
	return `<feedback>
<report_metadata><org_name>o</org_name><email>e@o.example</email><report_id>id</report_id>
<date_range><begin>1700000000</begin><end>1700086399</end></date_range></report_metadata>
<policy_published><domain>example.com</domain><p>none</p></policy_published>
` + strings.Join(records, "\n") + "\n</feedback>\n"
}

// record is a complete record from ip with count messages.
func record(ip string, count int) string {
	return fmt.Sprintf(`<record><row><source_ip>%s</source_ip><count>%d</count>
<policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated></row>
<identifiers><header_from>example.com</header_from></identifiers>
<auth_results><spf><domain>example.com</domain><result>pass</result></spf></auth_results></record>`, ip, count)
}

func TestBOMWindows1252(t *testing.T) {
	r, records := parseFile(t, "bom-windows-1252.xml")
	check(t, "org_name", r.Metadata.OrgName, "Société Générale")
	check(t, "report_id", r.Metadata.ReportID, "sg-42")
	check(t, "records", len(records), 1)
	check(t, "count", records[0].Count, 3)
	wantTolerations(t, r, "bom", "charset:windows-1252")
}

// TestCharsetMismatch: UTF-8 text under a latin-1 declaration is read as
// UTF-8; latin-1 text under it is converted.
func TestCharsetMismatch(t *testing.T) {
	doc := `<?xml version="1.0" encoding="ISO-8859-1"?>` + strings.Replace(report(record("192.0.2.1", 1)), "<org_name>o<", "<org_name>Société<", 1)
	r, _ := parseString(t, doc)
	check(t, "org_name", r.Metadata.OrgName, "Société")
	wantTolerations(t, r, "charset-mismatch:iso-8859-1")

	doc = strings.ReplaceAll(doc, "é", "\xe9")
	r, _ = parseString(t, doc)
	check(t, "org_name", r.Metadata.OrgName, "Société")
	wantTolerations(t, r, "charset:iso-8859-1")
}

func TestUnsupportedCharset(t *testing.T) {
	doc := `<?xml version="1.0" encoding="EBCDIC-XYZ"?>` + report(record("192.0.2.1", 1))
	_, _, err := Parse(strings.NewReader(doc))
	if err == nil || !strings.Contains(err.Error(), `unsupported charset "ebcdic-xyz"`) {
		t.Fatalf("got %v", err)
	}
}

func TestUTF16(t *testing.T) {
	doc, err := unicode.UTF16(unicode.LittleEndian, unicode.UseBOM).NewEncoder().String(
		`<?xml version="1.0" encoding="UTF-16"?>` + strings.Replace(report(record("192.0.2.1", 1)), "<org_name>o<", "<org_name>Ørsted<", 1))
	if err != nil {
		t.Fatal(err)
	}
	r, records := parseString(t, doc)
	check(t, "org_name", r.Metadata.OrgName, "Ørsted")
	check(t, "records", len(records), 1)
	wantTolerations(t, r, "charset:utf-16")
}

func TestInvalidUTF8(t *testing.T) {
	doc := strings.Replace(report(record("192.0.2.1", 1)), "<org_name>o<", "<org_name>bad\x91byte \xe2\x82<", 1)
	doc = strings.Replace(doc, "<email>", "<email>\x01", 1)
	r, _ := parseString(t, doc)
	check(t, "org_name", r.Metadata.OrgName, "bad\uFFFDbyte \uFFFD\uFFFD") // one per byte
	check(t, "email", r.Metadata.Email, "\uFFFDe@o.example")
	wantTolerations(t, r, "invalid-utf8", "invalid-xml-char")
}

// TestInvalidUTF8AcrossReads checks the repair of UTF-8 sequences that the
// reads of the input cut in two.
func TestInvalidUTF8AcrossReads(t *testing.T) {
	doc := strings.Replace(report(record("192.0.2.1", 1)), "<org_name>o<", "<org_name>"+strings.Repeat("é€𝄞", 3000)+"\xff<", 1)
	r, _, err := Parse(&oneByteReader{strings.NewReader(doc)})
	if err != nil {
		t.Fatal(err)
	}
	check(t, "org_name", r.Metadata.OrgName, strings.Repeat("é€𝄞", 3000)+"\uFFFD")
	wantTolerations(t, r, "invalid-utf8")
	r, _, err = Parse(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	check(t, "org_name", r.Metadata.OrgName, strings.Repeat("é€𝄞", 3000)+"\uFFFD")
}

type oneByteReader struct{ r io.Reader }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return r.r.Read(p)
}

func TestWhitespace(t *testing.T) {
	r, records := parseFile(t, "whitespace.xml")
	check(t, "org_name", r.Metadata.OrgName, "Example Receiver")
	check(t, "report_id", r.Metadata.ReportID, "ws-1")
	check(t, "begin", r.Metadata.DateBegin, time.Unix(1538413632, 0).UTC())
	check(t, "end", r.Metadata.DateEnd, time.Unix(1538499999, 0).UTC())
	check(t, "p", r.Policy.P, "reject")
	check(t, "pct", r.Policy.Pct, 50)
	check(t, "source_ip", records[0].SourceIP, "192.0.2.7")
	check(t, "count", records[0].Count, 5)
	check(t, "disposition", records[0].Disposition, "none")
	wantTolerations(t, r, "ws-in:org_name", "ws-in:report_id", "ws-in:begin", "fraction-in:end",
		"ws-in:p", "ws-in:pct", "ws-in:source_ip", "ws-in:count", "ws-in:disposition")
}

func TestIdentities(t *testing.T) {
	r, records := parseFile(t, "identities.xml")
	rec := records[0]
	check(t, "header_from", rec.HeaderFrom, "example.com")
	check(t, "envelope_from", rec.EnvelopeFrom, "bounce.example.com")
	check(t, "envelope_to", rec.EnvelopeTo, "receiver.example")
	wantTolerations(t, r, "identities-for-identifiers")
}

func TestMissingParts(t *testing.T) {
	r, records := parseFile(t, "missing-parts.xml")
	check(t, "records", len(records), 2)
	check(t, "first disposition", records[0].Disposition, "")
	check(t, "first count", records[0].Count, 4)
	check(t, "first SPF results", len(records[0].SPFResults), 0)
	second := records[1]
	check(t, "second source_ip", second.SourceIP, "192.0.2.11")
	check(t, "second count", second.Count, 6)
	check(t, "second disposition", second.Disposition, "quarantine")
	check(t, "second SPF result", second.SPFResults[0].Result, "softfail")
	check(t, "messages", r.MessageCount, 10)
	wantTolerations(t, r, "missing:policy_evaluated", "missing:auth_results", "missing:row")
}

func TestUppercase(t *testing.T) {
	r, records := parseFile(t, "uppercase.xml")
	p := r.Policy
	for _, c := range []struct{ what, got, want string }{
		{"adkim", p.ADKIM, "s"}, {"aspf", p.ASPF, "r"}, {"p", p.P, "reject"}, {"sp", p.SP, "quarantine"},
		{"testing", p.Testing, "n"},
		{"disposition", records[0].Disposition, "reject"}, {"dkim", records[0].DKIM, "fail"},
		{"spf", records[0].SPF, "pass"}, {"dkim result", records[0].DKIMResults[0].Result, "fail"},
		{"spf result", records[0].SPFResults[0].Result, "pass"}, {"scope", records[0].SPFResults[0].Scope, "mfrom"},
	} {
		check(t, c.what, c.got, c.want)
	}
	wantTolerations(t, r, "uppercase-values")
}

func TestUnclosed(t *testing.T) {
	r, records := parseFile(t, "unclosed.xml")
	check(t, "records", len(records), 2)
	check(t, "messages", r.MessageCount, 3)
	wantTolerations(t, r, "unclosed:feedback")
}

// TestTruncatedTag: a document cut inside a tag after complete records
// keeps them.
func TestTruncatedTag(t *testing.T) {
	doc := report(record("192.0.2.1", 1), record("192.0.2.2", 1))
	doc = doc[:strings.LastIndex(doc, "</feedback>")+5]
	r, records := parseString(t, doc)
	check(t, "records", len(records), 2)
	wantTolerations(t, r, "truncated")
}

func TestTruncatedRecord(t *testing.T) {
	doc := report(record("192.0.2.1", 1), record("192.0.2.2", 1))
	doc = doc[:strings.LastIndex(doc, "<identifiers>")]
	d := NewDecoder(strings.NewReader(doc))
	if _, err := d.Next(); err != nil {
		t.Fatalf("first record: %v", err)
	}
	_, err := d.Next()
	if err == nil || err == io.EOF || !strings.Contains(err.Error(), "<record> 2") || !strings.Contains(err.Error(), "document ends inside <record>") {
		t.Fatalf("got %v, want an error about the cut record", err)
	}
	if _, err2 := d.Next(); err2 != err {
		t.Errorf("error not kept: %v, then %v", err, err2)
	}
}

// TestMalformedRecord: bad XML after the header is an error, not the end.
func TestMalformedRecord(t *testing.T) {
	doc := report(record("192.0.2.1", 1), strings.Replace(record("192.0.2.2", 1), "</row>", "</rwo>", 1), record("192.0.2.3", 1))
	d := NewDecoder(strings.NewReader(doc))
	if _, err := d.Header(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Next(); err != nil {
		t.Fatal(err)
	}
	_, err := d.Next()
	const want = "parsing aggregate report: <record> 2 (line 9): <row>: line 10: element <row> closed by </rwo>"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}

func TestRecordsBeforeHeader(t *testing.T) {
	d := NewDecoder(bytes.NewReader(readTestdata(t, "records-first.xml")))
	h, err := d.Header()
	if err != nil {
		t.Fatal(err)
	}
	check(t, "report_id", h.Metadata.ReportID, "r-1")
	check(t, "domain", h.Policy.Domain, "example.com")
	var ips []string
	for {
		rec, err := d.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ips = append(ips, rec.SourceIP)
	}
	check(t, "order", strings.Join(ips, " "), "192.0.2.40 192.0.2.41 192.0.2.42")
	r := d.Report()
	check(t, "records", r.RecordCount, 3)
	check(t, "messages", r.MessageCount, 6)
	wantTolerations(t, r, "records-before-header")
}

func TestMaxRecordsBeforeHeader(t *testing.T) {
	var b strings.Builder
	b.WriteString("<feedback>")
	rec := record("192.0.2.1", 1)
	for range MaxRecordsBeforeHeader + 1 {
		b.WriteString(rec)
	}
	_, _, err := Parse(strings.NewReader(b.String()))
	if err == nil || !strings.Contains(err.Error(), "(MaxRecordsBeforeHeader)") {
		t.Fatalf("got %v, want the limit", err)
	}
}

func TestRFC9990(t *testing.T) {
	r, records := parseFile(t, "rfc9990.xml")
	want := &dmarcd.AggregateReport{
		Version:   "1.0",
		Namespace: "urn:ietf:params:xml:ns:dmarc-2.0",
		Metadata: dmarcd.ReportMetadata{
			OrgName:          "Receiver & Co",
			Email:            "reports@receiver.example",
			ExtraContactInfo: "https://receiver.example/dmarc",
			ReportID:         "rfc9990-7",
			DateBegin:        time.Unix(1735689600, 0).UTC(),
			DateEnd:          time.Unix(1735775999, 0).UTC(),
			Errors:           []string{"DNS timeout fetching _dmarc.sub.example.org"},
			Generator:        "ReceiverMTA 4.2",
		},
		Policy: dmarcd.PolicyPublished{
			Domain: "example.org", ADKIM: "s", ASPF: "r", P: "quarantine", SP: "reject", NP: "reject",
			Pct: dmarcd.PctAbsent, FO: "1", Testing: "y", DiscoveryMethod: "treewalk",
		},
		Extensions: []string{`<extension xmlns="urn:ietf:params:xml:ns:dmarc-2.0" xmlns:ex="https://ext.example/dmarc">
    <ex:policy-source ex:ttl="3600">dns</ex:policy-source>
  </extension>`},
		RecordCount:  2,
		MessageCount: 10,
	}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("report\n%+v, want\n%+v", r, want)
	}
	wantRecords := []dmarcd.Record{{
		SourceIP: "2001:db8::1", Count: 9,
		Disposition: "pass", DKIM: "pass", SPF: "fail",
		Reasons:      []dmarcd.PolicyOverride{{Type: "policy_test_mode", Comment: "t=y"}},
		EnvelopeTo:   "receiver.example",
		EnvelopeFrom: "mail.example.org",
		HeaderFrom:   "example.org",
		DKIMResults: []dmarcd.DKIMResult{
			{Domain: "example.org", Selector: "2025a", Result: "pass", HumanResult: "good signature"},
			{Domain: "esp.example", Selector: "esp1", Result: "temperror"},
		},
		SPFResults: []dmarcd.SPFResult{{Domain: "mail.example.org", Scope: "mfrom", Result: "softfail", HumanResult: "~all"}},
		Extensions: []string{`<ex:arc xmlns:ex="https://ext.example/dmarc">pass</ex:arc>`},
	}, {
		SourceIP: "203.0.113.9", Count: 1,
		Disposition: "quarantine", DKIM: "fail", SPF: "fail",
		HeaderFrom: "example.org",
		SPFResults: []dmarcd.SPFResult{{Domain: "example.org", Result: "fail"}},
	}}
	if !reflect.DeepEqual(records, wantRecords) {
		t.Errorf("records\n%+v, want\n%+v", records, wantRecords)
	}
}

// TestTrailingExtension: an extension after the records shows in Report,
// not in the Header returned before.
func TestTrailingExtension(t *testing.T) {
	doc := strings.Replace(report(record("192.0.2.1", 1)), "</feedback>", `<extension><x a="1&amp;2">y &lt; z</x></extension></feedback>`, 1)
	d := NewDecoder(strings.NewReader(doc))
	h, err := d.Header()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := d.Next(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	check(t, "header extensions", len(h.Extensions), 0)
	check(t, "header records", h.RecordCount, 0)
	r := d.Report()
	check(t, "records", r.RecordCount, 1)
	if !slices.Equal(r.Extensions, []string{`<extension><x a="1&amp;2">y &lt; z</x></extension>`}) {
		t.Errorf("extensions %q", r.Extensions)
	}
}

func TestNextReturnsFreshRecords(t *testing.T) {
	d := NewDecoder(strings.NewReader(report(record("192.0.2.1", 1), record("192.0.2.2", 2))))
	a, err := d.Next()
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.Next()
	if err != nil {
		t.Fatal(err)
	}
	if a == b || a.SourceIP != "192.0.2.1" || b.SourceIP != "192.0.2.2" {
		t.Errorf("records %+v and %+v", a, b)
	}
	if _, err := d.Next(); err != io.EOF {
		t.Errorf("after the last record: %v", err)
	}
	if _, err := d.Next(); err != io.EOF {
		t.Errorf("again after the last record: %v", err)
	}
}

func TestSourceIP(t *testing.T) {
	r, records := parseString(t, report(
		record("2001:0DB8:0000::0001", 1), record("::ffff:192.0.2.5", 1), record("mail.example.com", 1), record("192.0.2.9", 1)))
	var got []string
	for _, rec := range records {
		got = append(got, rec.SourceIP)
	}
	check(t, "addresses", strings.Join(got, " "), "2001:db8::1 192.0.2.5 mail.example.com 192.0.2.9")
	wantTolerations(t, r, "ipv4-mapped", "invalid-ip")
}

func TestPct(t *testing.T) {
	for _, c := range []struct {
		pct  string
		want int
		tol  []string
	}{
		{"", dmarcd.PctAbsent, nil},
		{"<pct>100</pct>", 100, nil},
		{"<pct>0</pct>", 0, nil},
		{"<pct/>", dmarcd.PctAbsent, []string{"empty:pct"}},
		{"<pct>150</pct>", dmarcd.PctAbsent, []string{"invalid:pct"}},
		{"<pct>ten</pct>", dmarcd.PctAbsent, []string{"invalid:pct"}},
	} {
		r, _ := parseString(t, strings.Replace(report(record("192.0.2.1", 1)), "<p>none</p>", "<p>none</p>"+c.pct, 1))
		check(t, c.pct, r.Policy.Pct, c.want)
		wantTolerations(t, r, c.tol...)
	}
}

func TestLenientText(t *testing.T) {
	doc := strings.Replace(report(record("192.0.2.1", 1)), "<org_name>o</org_name>", "<org_name>AT&T&nbsp;Mail</org_name>", 1)
	r, _ := parseString(t, doc)
	check(t, "org_name", r.Metadata.OrgName, "AT&T\u00a0Mail")
	wantTolerations(t, r, "bare-ampersand", "html-entity")
}

// TestErrors checks the errors for reports that lack what cannot be done
// without, or have values that cannot be read.
func TestErrors(t *testing.T) {
	base := report(record("192.0.2.1", 1))
	for _, c := range []struct{ old, new, want string }{
		{"<begin>1700000000</begin>", "<begin>yesterday</begin>",
			`parsing aggregate report: <report_metadata>: <date_range>: begin: not seconds since the epoch: "yesterday"`},
		{"<begin>1700000000</begin>", "<begin>-5</begin>",
			`parsing aggregate report: <report_metadata>: <date_range>: begin: not seconds since the epoch: "-5"`},
		{"<end>1700086399</end>", "<end>99999999999999</end>",
			`parsing aggregate report: <report_metadata>: <date_range>: end: 99999999999999 seconds since the epoch is after the year 9999`},
		{"<end>1700086399</end>", "",
			`parsing aggregate report: <report_metadata>: <date_range>: missing <end>`},
		{"<report_id>id</report_id>", "",
			`parsing aggregate report: <report_metadata>: missing <report_id>`},
		{"<report_id>id</report_id>", "<report_id> </report_id>",
			`parsing aggregate report: <report_metadata>: empty <report_id>`},
		{"<org_name>o</org_name><email>e@o.example</email>", "<org_name/>",
			`parsing aggregate report: <report_metadata>: neither <org_name> nor <email> names the reporter`},
		{"<domain>example.com</domain>", "",
			`parsing aggregate report: <policy_published>: missing <domain>`},
		{"<policy_published><domain>example.com</domain><p>none</p></policy_published>", "",
			`parsing aggregate report: missing <policy_published>`},
		{"<count>1</count>", "<count>1.5</count>",
			`parsing aggregate report: <record> 1 (line 5): <row>: count: not a number of messages: "1.5"`},
		{"<count>1</count>", "<count>-1</count>",
			`parsing aggregate report: <record> 1 (line 5): <row>: count: not a number of messages: "-1"`},
		{"<email>e@o.example</email>", "<email>e@o.example</mail>",
			`parsing aggregate report: <report_metadata>: email: line 2: element <email> closed by </mail>`},
	} {
		doc := strings.Replace(base, c.old, c.new, 1)
		_, _, err := Parse(strings.NewReader(doc))
		if err == nil || err.Error() != c.want {
			t.Errorf("%s -> %s: got %v\nwant %s", c.old, c.new, err, c.want)
		}
	}
}

func TestNotAggregateReport(t *testing.T) {
	for _, doc := range []string{
		"",
		"  \n",
		"A text file",
		`{"organization-name":"Google Inc."}`,
		"\x1f\x8b\x08\x00\x00\x00\x00\x00",
		"PK\x03\x04\x14\x00",
		"From: a@example.com\r\nSubject: Report\r\n\r\nbody",
		`<?xml version="1.0"?><!-- nothing -->`,
		`<!DOCTYPE html><html><head><title>x</title></head></html>`,
		`<?xml version="1.0"?><xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"><xs:element name="feedback"/></xs:schema>`,
		`<report><feedback-like/></report>`,
		`<root/>`,
		`<root>text<feedback/></root>`,
	} {
		_, _, err := Parse(strings.NewReader(doc))
		if !errors.Is(err, ErrNotAggregateReport) {
			t.Errorf("%q: got %v, want ErrNotAggregateReport", doc, err)
		}
	}
}

func TestMaxElementDepth(t *testing.T) {
	deep := strings.Repeat("<x>", MaxElementDepth) + strings.Repeat("</x>", MaxElementDepth)
	doc := strings.Replace(report(record("192.0.2.1", 1)), "</feedback>", "<extension>"+deep+"</extension></feedback>", 1)
	_, _, err := Parse(strings.NewReader(doc))
	if err == nil || !strings.Contains(err.Error(), "(MaxElementDepth)") {
		t.Fatalf("got %v, want the depth limit", err)
	}
	// Just within the limit: feedback, extension and 62 levels.
	within := strings.Repeat("<x>", MaxElementDepth-2) + strings.Repeat("</x>", MaxElementDepth-2)
	doc = strings.Replace(report(record("192.0.2.1", 1)), "</feedback>", "<extension>"+within+"</extension></feedback>", 1)
	r, _ := parseString(t, doc)
	check(t, "extensions", len(r.Extensions), 1)
}

func TestHugeText(t *testing.T) {
	for _, c := range []struct {
		size  int
		limit string
	}{
		{MaxTextBytes + 1, "(MaxTextBytes)"},
		// encoding/xml returns the text it read up to MaxTokenBytes.
		{4 << 20, "(MaxTextBytes)"},
	} {
		doc := strings.Replace(report(record("192.0.2.1", 1)), "<org_name>o<", "<org_name>"+strings.Repeat("o", c.size)+"<", 1)
		_, _, err := Parse(strings.NewReader(doc))
		if err == nil || !strings.Contains(err.Error(), c.limit) || !strings.HasPrefix(err.Error(), "parsing aggregate report: <report_metadata>: org_name: ") {
			t.Errorf("%d bytes: got %v, want %s", c.size, err, c.limit)
		}
	}
	// A comment or a tag is one token too.
	for _, c := range []struct{ old, new string }{
		{"<feedback>", "<feedback><!--" + strings.Repeat("<>", 1<<20) + "-->"},
		{"<feedback>", `<feedback a="` + strings.Repeat("a", 1<<20) + `">`},
		{"</feedback>", "<extension><x" + strings.Repeat(" a", 1<<20) + "/></extension></feedback>"},
	} {
		doc := strings.Replace(report(record("192.0.2.1", 1)), c.old, c.new, 1)
		if _, _, err := Parse(strings.NewReader(doc)); err == nil || !strings.Contains(err.Error(), "(MaxTokenBytes)") {
			t.Errorf("huge token %.20s...: got %v", c.new, err)
		}
	}
}

func TestMaxRecordBytes(t *testing.T) {
	big := strings.Repeat("d", MaxTextBytes-10)
	dkim := "<dkim><domain>" + big + "</domain><result>pass</result></dkim>"
	rec := strings.Replace(record("192.0.2.1", 1), "<auth_results>", "<auth_results>"+strings.Repeat(dkim, MaxRecordBytes/MaxTextBytes+1), 1)
	_, _, err := Parse(strings.NewReader(report(rec)))
	if err == nil || !strings.Contains(err.Error(), "(MaxRecordBytes)") {
		t.Fatalf("got %v, want the record size limit", err)
	}
}

func TestExcessRepeats(t *testing.T) {
	rec := strings.Replace(record("192.0.2.1", 1), "<auth_results>",
		"<auth_results>"+strings.Repeat("<dkim><domain>example.com</domain><result>pass</result></dkim>", MaxRepeats+5), 1)
	r, records := parseString(t, report(rec))
	check(t, "DKIM results", len(records[0].DKIMResults), MaxRepeats)
	wantTolerations(t, r, "excess:dkim")
}

// An empty <dkim/>, <spf/>, <reason/> or <error/> says nothing and is not kept.
func TestEmptyRepeatsDropped(t *testing.T) {
	rec := strings.Replace(record("192.0.2.1", 1), "<auth_results>", "<auth_results><dkim></dkim><spf> </spf>", 1)
	rec = strings.Replace(rec, "</policy_evaluated>", "<reason></reason></policy_evaluated>", 1)
	_, records := parseString(t, report(rec))
	check(t, "DKIM results", len(records[0].DKIMResults), 0)
	check(t, "SPF results", len(records[0].SPFResults), 1)
	check(t, "reasons", len(records[0].Reasons), 0)
}

func TestOversizedExtension(t *testing.T) {
	ext := "<extension><x>" + strings.Repeat("y", MaxTextBytes-1) + "</x><x>" + strings.Repeat("y", 10) + "</x></extension>"
	r, _ := parseString(t, strings.Replace(report(record("192.0.2.1", 1)), "</feedback>", ext+"</feedback>", 1))
	check(t, "extensions", len(r.Extensions), 0)
	wantTolerations(t, r, "oversized:extension")
}

func TestUnknownElementsAndWrapper(t *testing.T) {
	doc := `<?xml version="1.0"?><xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">` +
		strings.Replace(report(record("192.0.2.1", 1)), "<p>none</p>", "<p>none</p><psd>n</psd>", 1)
	r, records := parseString(t, doc)
	check(t, "records", len(records), 1)
	wantTolerations(t, r, "wrapper:xs:schema", "unknown:psd", "unclosed:xs:schema")
}

func TestTolerationsBounded(t *testing.T) {
	var unknown strings.Builder
	for i := range 2 * MaxTolerations {
		fmt.Fprintf(&unknown, "<u%d/>", i)
	}
	r, _ := parseString(t, strings.Replace(report(record("192.0.2.1", 1)), "<p>none</p>", "<p>none</p>"+unknown.String(), 1))
	check(t, "tolerations", len(r.Tolerations), MaxTolerations+1)
	check(t, "last", r.Tolerations[MaxTolerations], "more-tolerations")
}

// TestHeaderIsCopy: the header returned does not change as decoding goes on.
func TestHeaderIsCopy(t *testing.T) {
	doc := strings.Replace(report(record("192.0.2.1", 1), record("192.0.2.2", 1)), "<count>1</count>", "<count> 1</count>", 2)
	d := NewDecoder(strings.NewReader(doc))
	h, err := d.Header()
	if err != nil {
		t.Fatal(err)
	}
	before := fmt.Sprintf("%+v", *h)
	for {
		if _, err := d.Next(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if after := fmt.Sprintf("%+v", *h); after != before {
		t.Errorf("header changed from\n%s to\n%s", before, after)
	}
	check(t, "records", d.Report().RecordCount, 2)
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestInputNotedAsRead: what the input replaced or let through is noted
// only where the decoder read, so that the codes do not depend on how the
// input is cut into reads. Here the '&' after the trailing element is in
// the same read as the report, but never read as XML.
func TestInputNotedAsRead(t *testing.T) {
	doc := report(record("192.0.2.1", 1)) + "<trailer/>AT&T \xff"
	for _, r := range []io.Reader{strings.NewReader(doc), &oneByteReader{strings.NewReader(doc)}} {
		got, _, err := Parse(r)
		if err != nil {
			t.Fatal(err)
		}
		wantTolerations(t, got, "trailing-data")
	}
}
