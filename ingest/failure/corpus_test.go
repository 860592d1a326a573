package failure

import (
	"errors"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/internal/corpus"
)

// rawField returns the values of the feedback fields named name, as
// written, joined like the corpus tables join repeated fields.
func rawField(r *dmarcd.FailureReport, name string) string {
	var vs []string
	for _, f := range r.Fields {
		if strings.EqualFold(f.Name, name) {
			vs = append(vs, f.Value)
		}
	}
	return strings.Join(vs, " || ")
}

// sameAddress compares two From values: as addresses when both parse (the
// table's reader wrote decoded display names with spaces inside the quotes),
// else as text.
func sameAddress(got, want string) bool {
	if got == want {
		return true
	}
	g, err1 := mail.ParseAddress(got)
	w, err2 := mail.ParseAddress(want)
	if err1 != nil || err2 != nil {
		return false
	}
	return strings.EqualFold(g.Address, w.Address) && strings.TrimSpace(g.Name) == strings.TrimSpace(w.Name)
}

// TestCorpus parses every failure report of the shared corpus and checks it
// against EXPECTED_FORENSIC.tsv.
func TestCorpus(t *testing.T) {
	rows := corpus.Table(t, "EXPECTED_FORENSIC.tsv")
	if len(rows) == 0 {
		t.Fatal("EXPECTED_FORENSIC.tsv has no rows")
	}
	for _, row := range rows {
		t.Run(row["file"], func(t *testing.T) {
			msg := corpus.Read(t, row["file"])
			r, err := Parse(msg, Options{})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			check := func(column, got, want string) {
				t.Helper()
				if got != want {
					t.Errorf("%s: got %q, want %q", column, got, want)
				}
			}
			check("reporter_from", strings.TrimSpace(r.ReportFrom), row["reporter_from"])
			check("subject", r.ReportSubject, row["subject"])
			if r.ReportDate.IsZero() {
				t.Errorf("ReportDate is zero; tolerations %q", r.Tolerations)
			}

			// The table's feedback columns are the fields as written; a
			// report without feedback part has none.
			arf := row["has_arf_part"] == "True"
			if !arf && len(r.Fields) > 0 {
				t.Errorf("report without ARF part has fields %q", r.Fields)
			}
			check("feedback_type", r.FeedbackType, strings.ToLower(row["feedback_type"]))
			check("version", r.Version, row["version"])
			check("user_agent", r.UserAgent, row["user_agent"])
			check("reported_domain", rawField(r, "Reported-Domain"), row["reported_domain"])
			if arf {
				check("reported_domain (typed)", r.ReportedDomain, row["reported_domain"])
			}
			check("source_ip", rawField(r, "Source-IP"), row["source_ip"])
			if arf {
				wantIP, _, _ := strings.Cut(row["source_ip"], " ")
				check("source_ip (address)", r.SourceIP, wantIP)
			}
			check("original_mail_from", r.OriginalMailFrom, row["original_mail_from"])
			check("original_rcpt_to", strings.Join(r.OriginalRcptTo, " || "), row["original_rcpt_to"])
			if arf {
				check("arrival_date", r.ArrivalDateText, row["arrival_date"])
				if row["arrival_date"] != "" && r.ArrivalDate.IsZero() {
					t.Errorf("arrival_date %q did not parse", row["arrival_date"])
				}
			}
			check("auth_failure", r.AuthFailure, strings.ToLower(row["auth_failure"]))
			check("delivery_result", r.DeliveryResult, strings.ToLower(row["delivery_result"]))
			check("identity_alignment", rawField(r, "Identity-Alignment"), row["identity_alignment"])
			if row["identity_alignment"] != "" && r.IdentityAlignment == "" {
				t.Errorf("identity_alignment %q: typed value empty", row["identity_alignment"])
			}
			check("dkim_domain", r.DKIMDomain, row["dkim_domain"])
			check("authentication_results", strings.Join(r.AuthenticationResults, " || "), row["authentication_results"])
			check("reported_uri", strings.Join(r.ReportedURI, " || "), row["reported_uri"])
			wantIncidents := int64(0)
			if s := row["incidents"]; s != "" {
				n, err := strconv.ParseInt(s, 10, 64)
				if err != nil {
					t.Fatalf("incidents %q: %v", s, err)
				}
				wantIncidents = n
			}
			if r.Incidents != wantIncidents {
				t.Errorf("incidents: got %d, want %d", r.Incidents, wantIncidents)
			}

			// The original-message columns come from its MIME part; a
			// plain-text report has none ("none"), what it copies in its
			// text is checked in TestPlainTextReport.
			if row["original_part"] == "none" {
				check("original_part", r.OriginalPartType, "")
				return
			}
			check("original_part", r.OriginalPartType, row["original_part"])
			if !sameAddress(r.OriginalFrom, row["original_from"]) {
				t.Errorf("original_from: got %q, want %q", r.OriginalFrom, row["original_from"])
			}
			check("original_subject", r.OriginalSubject, row["original_subject"])
			if r.OriginalHeaders == "" {
				t.Errorf("OriginalHeaders is empty")
			}
			if r.OriginalBody != nil {
				t.Errorf("OriginalBody kept without Options.KeepBody")
			}
		})
	}
}

// TestCorpusDetect checks IsFailureReport on the corpus's mail messages:
// true for every failure report, false for aggregate and TLS reports.
func TestCorpusDetect(t *testing.T) {
	for _, file := range corpus.Files(t, "forensic") {
		if !IsFailureReport(corpus.Read(t, file)) {
			t.Errorf("%s: IsFailureReport false for a failure report", file)
		}
	}
	for _, file := range corpus.Files(t, "aggregate", "aggregate-dmarcbis", "tls-rpt", "non-report", "malformed") {
		if !strings.HasSuffix(file, ".eml") {
			continue
		}
		if IsFailureReport(corpus.Read(t, file)) {
			t.Errorf("%s: IsFailureReport true for a report of another kind", file)
		}
		if _, err := Parse(corpus.Read(t, file), Options{}); !errors.Is(err, ErrNotFailureReport) {
			t.Errorf("%s: Parse gave %v, want ErrNotFailureReport", file, err)
		}
	}
}

// TestPlainTextReport checks what is read from exim's report without ARF
// part: the subject and text give domain and address, the text a copy of
// the reported header.
func TestPlainTextReport(t *testing.T) {
	r, err := Parse(corpus.Read(t, "parsedmarc/samples/failure/exim_plain_text_only_no_arf_part.eml"), Options{KeepBody: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, code := range []string{"no-arf-part", "original-headers-in-text", "no-report-type"} {
		if !slices.Contains(r.Tolerations, code) {
			t.Errorf("tolerations %q lack %q", r.Tolerations, code)
		}
	}
	want := map[string][2]string{
		"ReportedDomain":    {r.ReportedDomain, "example.com"},
		"SourceIP":          {r.SourceIP, "203.0.113.68"},
		"ArrivalDateText":   {r.ArrivalDateText, "Mon, 07 Apr 2025 23:16:09 +0200"},
		"OriginalFrom":      {r.OriginalFrom, "<user@example.com>"},
		"OriginalTo":        {r.OriginalTo, "<user@example.com>"},
		"OriginalSubject":   {r.OriginalSubject, "Payment from your account."},
		"OriginalMessageID": {r.OriginalMessageID, "<134117F8-2145-AECE-9CCA-25FC98731341@example.com>"},
		"OriginalPartType":  {r.OriginalPartType, ""},
		"Domain()":          {r.Domain(), "example.com"},
	}
	for name, gw := range want {
		if gw[0] != gw[1] {
			t.Errorf("%s: got %q, want %q", name, gw[0], gw[1])
		}
	}
	if r.ArrivalDate.IsZero() {
		t.Errorf("ArrivalDate not parsed")
	}
	if !strings.HasPrefix(r.OriginalHeaders, "Received: from [203.0.113.68]") || !strings.Contains(r.OriginalHeaders, "Authentication-Results:  mailgate.example.net") {
		t.Errorf("OriginalHeaders: %q", r.OriginalHeaders)
	}
	if r.OriginalBody != nil {
		t.Errorf("OriginalBody set from a header copy: %q", r.OriginalBody)
	}
}

// BenchmarkParse parses the corpus's failure reports.
func BenchmarkParse(b *testing.B) {
	var msgs [][]byte
	size := 0
	for _, file := range corpus.Files(b, "forensic") {
		m := corpus.Read(b, file)
		msgs = append(msgs, m)
		size += len(m)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		for _, m := range msgs {
			if _, err := Parse(m, Options{}); err != nil {
				b.Fatal(err)
			}
		}
	}
}
