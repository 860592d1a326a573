package tlsrpt

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/ingest/unpack"
	"github.com/dmarcd/dmarcd/internal/corpus"
)

// corpusReport unpacks a corpus file (JSON, gzip, mail) and parses the TLS
// report in it.
func corpusReport(t *testing.T, row corpus.Row) *dmarcd.TLSReport {
	t.Helper()
	var reports []*dmarcd.TLSReport
	err := unpack.Walk(corpus.Read(t, row["file"]), func(p *unpack.Payload) error {
		if p.Kind != unpack.TLSReport {
			return nil
		}
		if want := row["member"]; want != "." && p.Part != want {
			t.Errorf("%s: part %q, want %q", row["file"], p.Part, want)
		}
		r, err := Parse(p.Body)
		if err != nil {
			return err
		}
		reports = append(reports, r)
		return nil
	})
	if err != nil {
		t.Fatalf("%s: %v", row["file"], err)
	}
	if len(reports) != 1 {
		t.Fatalf("%s: %d TLS reports, want 1", row["file"], len(reports))
	}
	return reports[0]
}

// TestCorpus checks every row of the corpus's EXPECTED_TLSRPT.tsv.
func TestCorpus(t *testing.T) {
	rows := corpus.Table(t, "EXPECTED_TLSRPT.tsv")
	if len(rows) == 0 {
		t.Fatal("EXPECTED_TLSRPT.tsv has no rows")
	}
	for _, row := range rows {
		t.Run(row["file"], func(t *testing.T) {
			r := corpusReport(t, row)
			var types []string
			var ok, failed int64
			for _, p := range r.Policies {
				types = append(types, p.Type)
				ok += p.SuccessfulSessions
				failed += p.FailedSessions
			}
			for _, c := range []struct{ name, got, want string }{
				{"organization_name", r.OrganizationName, row["organization_name"]},
				{"report_id", r.ReportID, row["report_id"]},
				{"start", r.DateBegin.Format(time.DateTime), expectedTime(t, row["start"])},
				{"end", r.DateEnd.Format(time.DateTime), expectedTime(t, row["end"])},
				{"contact_info", r.ContactInfo, row["contact_info"]},
				{"n_policies", strconv.Itoa(len(r.Policies)), row["n_policies"]},
				{"policy_types", strings.Join(slices.Sorted(slices.Values(types)), ","), row["policy_types"]}, // sorted there
				{"total_success", fmt.Sprint(ok), row["total_success"]},
				{"total_failure", fmt.Sprint(failed), row["total_failure"]},
			} {
				if c.got != c.want {
					t.Errorf("%s: got %q, want %q", c.name, c.got, c.want)
				}
			}
		})
	}
}

func expectedTime(t *testing.T, s string) string {
	t.Helper()
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05"} {
		if v, err := time.Parse(layout, s); err == nil {
			return v.UTC().Format(time.DateTime)
		}
	}
	t.Fatalf("EXPECTED_TLSRPT.tsv: bad time %q", s)
	return ""
}

const rfcExample = `{
  "organization-name": "Company-X",
  "date-range": {"start-datetime": "2016-04-01T00:00:00Z", "end-datetime": "2016-04-01T23:59:59Z"},
  "contact-info": "sts-reporting@company-x.example",
  "report-id": "5065427c-23d3-47ca-b6e0-946ea0e8c4be",
  "policies": [{
    "policy": {"policy-type": "sts", "policy-string": ["version: STSv1", "mode: testing"],
               "policy-domain": "Company-Y.example.", "mx-host": ["*.mail.company-y.example"]},
    "summary": {"total-successful-session-count": 5326, "total-failure-session-count": 303},
    "failure-details": [
      {"result-type": "certificate-expired", "sending-mta-ip": "2001:db8:abcd:0012::1",
       "receiving-mx-hostname": "mx1.mail.company-y.example", "failed-session-count": 100},
      {"result-type": "validation-failure", "sending-mta-ip": "198.51.100.62", "receiving-ip": "203.0.113.58",
       "receiving-mx-hostname": "mx-backup.mail.company-y.example", "failed-session-count": 3,
       "failure-reason-code": "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED"}]
  }]
}`

func TestParseFields(t *testing.T) {
	r, err := Parse(strings.NewReader(rfcExample))
	if err != nil {
		t.Fatal(err)
	}
	p := r.Policies[0]
	if r.Domain() != "company-y.example" || p.Type != "sts" || len(p.String) != 2 || p.MXHosts[0] != "*.mail.company-y.example" ||
		p.SuccessfulSessions != 5326 || p.FailedSessions != 303 || len(p.FailureDetails) != 2 {
		t.Fatalf("%+v", r)
	}
	f := p.FailureDetails[1]
	if f.ResultType != "validation-failure" || f.SendingMTAIP != "198.51.100.62" || f.ReceivingIP != "203.0.113.58" ||
		f.FailedSessions != 3 || f.FailureReasonCode != "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED" {
		t.Errorf("%+v", f)
	}
	if len(r.Tolerations) != 0 {
		t.Errorf("tolerations %v", r.Tolerations)
	}
	if r.Key() == "" || r.Key() != (&dmarcd.TLSReport{OrganizationName: "company-x", ReportID: r.ReportID}).Key() {
		t.Error("the key depends on the case of the organization name")
	}
}

func TestTolerations(t *testing.T) {
	doc := strings.NewReplacer(
		`"2016-04-01T00:00:00Z"`, `"2016-04-01T00:00:00"`,
		`5326`, `"5326"`,
		`["*.mail.company-y.example"]`, `"*.mail.company-y.example"`,
		`"certificate-expired"`, `"certificate-revoked"`,
		`"policy-type": "sts"`, `"policy-type": "invalid-policy-type"`,
	).Replace(rfcExample)
	r, err := Parse(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"time-without-zone", "unknown-policy-type", "mx-host-string", "number-as-string", "unknown-result-type"}
	if fmt.Sprint(r.Tolerations) != fmt.Sprint(want) {
		t.Errorf("tolerations %v, want %v", r.Tolerations, want)
	}
	if r.Policies[0].SuccessfulSessions != 5326 || r.Policies[0].MXHosts[0] != "*.mail.company-y.example" {
		t.Errorf("%+v", r.Policies[0])
	}
}

func TestErrors(t *testing.T) {
	for name, doc := range map[string]string{
		"not JSON":           "<feedback/>",
		"no report-id":       strings.Replace(rfcExample, `"report-id"`, `"id"`, 1),
		"no policies":        `{"organization-name": "x", "report-id": "1", "date-range": {"start-datetime": "2016-04-01T00:00:00Z", "end-datetime": "2016-04-01T23:59:59Z"}, "policies": []}`,
		"bad date":           strings.Replace(rfcExample, `"2016-04-01T23:59:59Z"`, `"yesterday"`, 1),
		"bad count":          strings.Replace(rfcExample, `5326`, `"many"`, 1),
		"policy-string type": strings.Replace(rfcExample, `["version: STSv1", "mode: testing"]`, `{"a": 1}`, 1),
	} {
		if _, err := Parse(strings.NewReader(doc)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	big := `{"organization-name": "` + strings.Repeat("x", MaxReportBytes) + `"}`
	if _, err := Parse(strings.NewReader(big)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("a report beyond MaxReportBytes: %v", err)
	}
}

// FuzzParse: any bytes give a report or an error, never a panic, and a
// report holds what the limits allow.
func FuzzParse(f *testing.F) {
	f.Add([]byte(rfcExample))
	f.Add([]byte(`{"organization-name":"x","report-id":"1","date-range":{"start-datetime":"2016-04-01","end-datetime":"2016-04-02"},"policies":[{"policy":{"policy-type":"sts","mx-host":"a"},"summary":{"total-successful-session-count":"1"}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse(strings.NewReader(string(data)))
		if err != nil {
			return
		}
		if r.OrganizationName == "" || r.ReportID == "" || len(r.Policies) == 0 || len(r.Policies) > MaxPolicies {
			t.Fatalf("a report without its required parts: %+v", r)
		}
		for _, p := range r.Policies {
			if p.SuccessfulSessions < 0 || p.FailedSessions < 0 || len(p.FailureDetails) > MaxFailureDetails {
				t.Fatalf("%+v", p)
			}
		}
	})
}

// BenchmarkParse parses the RFC 8460 example report: reports/s and MB/s.
func BenchmarkParse(b *testing.B) {
	data := []byte(rfcExample)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(strings.NewReader(rfcExample)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reports/s")
}
