// Package storetest holds the store contract, which every engine runs
// (storetest.Run, called by schema/sqlite and schema/clickhouse), and what
// the tests of the stores share: a small aggregate report and its records,
// a helper that writes them through dmarcd.Store, and one rendering of
// query answers for both engines (QueryString).
package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd"
)

// Report is an aggregate report from google.com about example.com for
// 2026-11-01, with report id id, an RFC 9990 testing policy and no records.
func Report(id string) *dmarcd.AggregateReport {
	return &dmarcd.AggregateReport{
		Metadata: dmarcd.ReportMetadata{
			OrgName: "google.com", Email: "noreply-dmarc-support@google.com", ReportID: id,
			DateBegin: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
			DateEnd:   time.Date(2026, 11, 1, 23, 59, 59, 0, time.UTC),
		},
		Policy: dmarcd.PolicyPublished{Domain: "example.com", ADKIM: "r", ASPF: "r", P: "quarantine", SP: "none", Pct: 5, Testing: "y"},
	}
}

// Records are two records: 10 messages that pass with two DKIM signatures
// from an IPv4 source, and 3 that fail, quarantined, from an IPv6 source.
func Records() []dmarcd.Record {
	return []dmarcd.Record{
		{SourceIP: "192.0.2.1", Count: 10, Disposition: "none", DKIM: "pass", SPF: "pass", HeaderFrom: "example.com",
			DKIMResults: []dmarcd.DKIMResult{{Domain: "example.com", Selector: "s1", Result: "pass"}, {Domain: "esp.example", Selector: "k2", Result: "pass"}},
			SPFResults:  []dmarcd.SPFResult{{Domain: "example.com", Scope: "mfrom", Result: "pass"}}},
		{SourceIP: "2001:db8::1", Count: 3, Disposition: "quarantine", DKIM: "fail", SPF: "fail", HeaderFrom: "example.com",
			Reasons: []dmarcd.PolicyOverride{{Type: "sampled_out"}}},
	}
}

// Write begins r in s and writes recs, setting r's record and message
// counts, without committing: the caller commits or aborts.
func Write(t testing.TB, s dmarcd.Store, r *dmarcd.AggregateReport, recs []dmarcd.Record) (dmarcd.RecordWriter, error) {
	t.Helper()
	ctx := context.Background()
	w, err := s.BeginAggregate(ctx, r, dmarcd.Origin{Source: "test", ReceivedAt: time.Now()})
	if err != nil {
		return nil, err
	}
	r.RecordCount, r.MessageCount = 0, 0
	for i := range recs {
		if err := w.Write(ctx, &recs[i]); err != nil {
			w.Abort()
			t.Fatal(err)
		}
		r.RecordCount++
		r.MessageCount += recs[i].Count
	}
	return w, nil
}

// Store writes r with recs and commits it, then flushes s when it groups
// its writes (dmarcd.Flusher), so that the report is visible.
func Store(t testing.TB, s dmarcd.Store, r *dmarcd.AggregateReport, recs []dmarcd.Record) error {
	t.Helper()
	w, err := Write(t, s, r, recs)
	if err != nil {
		return err
	}
	defer w.Abort()
	if err := w.Commit(context.Background(), r); err != nil {
		return err
	}
	if f, ok := s.(dmarcd.Flusher); ok {
		return f.Flush(context.Background())
	}
	return nil
}

// Views are queries over the documented views and what each store must
// answer once Report("r1") is stored with Records(): columns joined by |,
// rows ended by a newline, days as YYYY-MM-DD, times as YYYY-MM-DD
// HH:MM:SS, arrays as JSON.
var Views = []struct{ Query, Want string }{
	{`SELECT org_name, report_id, domain, date_begin, date_end, day, p, sp, pct, testing, record_count, message_count FROM reports`,
		"google.com|r1|example.com|2026-11-01 00:00:00|2026-11-01 23:59:59|2026-11-01|quarantine|none|5|y|2|13\n"},
	{`SELECT org_name, report_id, domain, source_ip, count, disposition, dkim, spf, dmarc_pass, header_from, dkim_domains, dkim_selectors, dkim_results, reasons FROM records ORDER BY seq`,
		"google.com|r1|example.com|192.0.2.1|10|none|pass|pass|1|example.com|[\"example.com\",\"esp.example\"]|[\"s1\",\"k2\"]|[\"pass\",\"pass\"]|[]\n" +
			"google.com|r1|example.com|2001:db8::1|3|quarantine|fail|fail|0|example.com|[]|[]|[]|[{\"type\":\"sampled_out\",\"comment\":\"\"}]\n"},
	{`SELECT dkim_domain, selector, result, count FROM dkim_signatures ORDER BY selector`,
		"esp.example|k2|pass|10\nexample.com|s1|pass|10\n"},
	{`SELECT day, domain, messages, dmarc_pass, dkim_aligned, spf_aligned, quarantined, rejected FROM daily_domains`,
		"2026-11-01|example.com|13|10|10|10|3|0\n"},
	{`SELECT day, domain, org_name, reports, messages FROM daily_reporters`, "2026-11-01|example.com|google.com|1|13\n"},
	{`SELECT selector, messages, passed FROM daily_selectors ORDER BY selector`, "k2|10|10\ns1|10|10\n"},
	{`SELECT source_ip, messages, dmarc_pass FROM daily_sources ORDER BY source_ip`, "192.0.2.1|10|10\n2001:db8::1|3|0\n"},
}
