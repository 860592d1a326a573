package failure

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func parseTestdata(t *testing.T, name string, opts Options) *dmarcd.FailureReport {
	t.Helper()
	r, err := Parse(readTestdata(t, name), opts)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return r
}

// eq reports a mismatch of one value.
func eq[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s: got %#v, want %#v", what, got, want)
	}
}

func fld(name, value string) dmarcd.Field { return dmarcd.Field{Name: name, Value: value} }

func eqSlice(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: got %q, want %q", what, got, want)
	}
}

// TestDMARCHeaders is an RFC 9991 DMARC failure report with the reported
// header as text/rfc822-headers.
func TestDMARCHeaders(t *testing.T) {
	r := parseTestdata(t, "dmarc-headers.eml", Options{KeepBody: true})
	eq(t, "ReportFrom", r.ReportFrom, `"Receiver DMARC Reports" <dmarc-noreply@receiver.example>`)
	eq(t, "ReportSubject", r.ReportSubject, "DMARC Failure Report for example.com")
	eq(t, "ReportDate", r.ReportDate.UTC(), time.Date(2025, 1, 14, 9, 12, 40, 0, time.UTC))
	eq(t, "ReportMessageID", r.ReportMessageID, "<ruf-20250114091240.4711@receiver.example>")
	eq(t, "FeedbackType", r.FeedbackType, "auth-failure")
	eq(t, "Version", r.Version, "1")
	eq(t, "UserAgent", r.UserAgent, "ReceiverDMARC/2.1")
	eq(t, "ReportedDomain", r.ReportedDomain, "example.com")
	eq(t, "SourceIP", r.SourceIP, "2001:db8:1234::25")
	eq(t, "OriginalMailFrom", r.OriginalMailFrom, "<bounce-7731@mailer.example.net>")
	eqSlice(t, "OriginalRcptTo", r.OriginalRcptTo, []string{"<alice@receiver.example>"})
	eq(t, "ArrivalDate", r.ArrivalDate.UTC(), time.Date(2025, 1, 14, 9, 12, 31, 0, time.UTC))
	eq(t, "ArrivalDateText", r.ArrivalDateText, "Tue, 14 Jan 2025 09:12:31 +0000")
	eq(t, "AuthFailure", r.AuthFailure, "dmarc")
	eq(t, "DeliveryResult", r.DeliveryResult, "reject")
	eq(t, "IdentityAlignment", r.IdentityAlignment, "none")
	eqSlice(t, "AuthenticationResults", r.AuthenticationResults, []string{
		"mx1.receiver.example; dmarc=fail (p=reject dis=reject) header.from=example.com; " +
			"spf=pass smtp.mailfrom=mailer.example.net; dkim=fail (signature verification failed) header.d=example.com",
	})
	eq(t, "len(Fields)", len(r.Fields), 14)
	eq(t, "Fields[3]", r.Fields[3], dmarcd.Field{Name: "Original-Envelope-Id", Value: "4YzKd81Qx2"})
	eq(t, "Fields[7]", r.Fields[7], dmarcd.Field{Name: "Reporting-MTA", Value: "dns; mx1.receiver.example"})
	eq(t, "OriginalPartType", r.OriginalPartType, "text/rfc822-headers")
	eq(t, "OriginalFrom", r.OriginalFrom, "Café Billing <billing@example.com>")
	eq(t, "OriginalTo", r.OriginalTo, "alice@receiver.example")
	eq(t, "OriginalSubject", r.OriginalSubject, "Ihre Rechnung für Januar")
	eq(t, "OriginalMessageID", r.OriginalMessageID, "<20250114091229.77C1@mailer.example.net>")
	eq(t, "OriginalDate", r.OriginalDate, "Tue, 14 Jan 2025 10:12:29 +0100")
	if !strings.HasPrefix(r.OriginalHeaders, "Received: from mailer.example.net") ||
		!strings.HasSuffix(r.OriginalHeaders, "Content-Type: text/plain; charset=utf-8\n") {
		t.Errorf("OriginalHeaders: %q", r.OriginalHeaders)
	}
	if r.OriginalBody != nil {
		t.Errorf("OriginalBody of a text/rfc822-headers part: %q", r.OriginalBody)
	}
	eqSlice(t, "Tolerations", r.Tolerations, nil)
	eq(t, "Domain()", r.Domain(), "example.com")
	if !IsFailureReport(readTestdata(t, "dmarc-headers.eml")) {
		t.Error("IsFailureReport false")
	}
}

// TestOriginalBody is a report with the whole reported message, CRLF line
// endings: its body is dropped unless KeepBody.
func TestOriginalBody(t *testing.T) {
	msg := readTestdata(t, "rfc822-body.eml")
	if !bytes.Contains(msg, []byte("\r\n")) {
		t.Fatal("rfc822-body.eml should have CRLF line endings")
	}
	r := parseTestdata(t, "rfc822-body.eml", Options{})
	eq(t, "OriginalPartType", r.OriginalPartType, "message/rfc822")
	if r.OriginalBody != nil {
		t.Errorf("OriginalBody kept by default: %q", r.OriginalBody)
	}
	eq(t, "OriginalSubject", r.OriginalSubject, "Your March newsletter")
	eq(t, "OriginalFrom", r.OriginalFrom, "Example Newsletter <newsletter@example.org>")
	eq(t, "OriginalMessageID", r.OriginalMessageID, "<nl-2025-03@example.org>")
	if !strings.HasSuffix(r.OriginalHeaders, "Content-Type: text/plain; charset=us-ascii\r\n") {
		t.Errorf("OriginalHeaders: %q", r.OriginalHeaders)
	}
	eq(t, "ReportDate", r.ReportDate.UTC(), time.Date(2025, 3, 6, 1, 3, 22, 0, time.UTC))
	eq(t, "ArrivalDate", r.ArrivalDate.UTC(), time.Date(2025, 3, 6, 1, 3, 20, 0, time.UTC))
	eq(t, "Incidents", r.Incidents, int64(2))
	eq(t, "DeliveryResult", r.DeliveryResult, "spam")
	eq(t, "DKIMSelector", r.DKIMSelector, "news")
	eq(t, "SourceIP", r.SourceIP, "192.0.2.77")
	eqSlice(t, "Tolerations", r.Tolerations, nil)

	kept := parseTestdata(t, "rfc822-body.eml", Options{KeepBody: true})
	eq(t, "OriginalBody", string(kept.OriginalBody), "Hello Bob,\r\n\r\nthis is the body of the reported message.")
	// The body does not change the report's identity.
	eq(t, "Key", kept.Key(), r.Key())
}

// TestBase64Feedback is a feedback part in base64, with an ISO 8601 date
// and a bracketed address.
func TestBase64Feedback(t *testing.T) {
	r := parseTestdata(t, "base64-feedback.eml", Options{})
	eqSlice(t, "Tolerations", r.Tolerations, []string{"feedback-part-encoded"})
	eq(t, "FeedbackType", r.FeedbackType, "auth-failure")
	eq(t, "AuthFailure", r.AuthFailure, "spf")
	eq(t, "SPFDNS", r.SPFDNS, `txt : example.net : "v=spf1 ip4:198.51.100.0/24 -all"`)
	eq(t, "SourceIP", r.SourceIP, "192.0.2.200")
	eq(t, "OriginalMailFrom", r.OriginalMailFrom, "<>")
	eq(t, "ArrivalDate", r.ArrivalDate, time.Date(2025, 2, 1, 12, 30, 0, 0, time.UTC))
	eq(t, "IdentityAlignment", r.IdentityAlignment, "dkim")
	eq(t, "DeliveryResult", r.DeliveryResult, "reject")
	eq(t, "len(Fields)", len(r.Fields), 12)
	eq(t, "OriginalSubject", r.OriginalSubject, "Invoice")
	eq(t, "OriginalMessageID", r.OriginalMessageID, "<inv-77@example.net>")
}

// TestFoldedRepeated has folded fields, repeated fields, a duplicate
// Feedback-Type, names in any case, a blank line among the fields and a
// non-standard field.
func TestFoldedRepeated(t *testing.T) {
	r := parseTestdata(t, "folded-repeated.eml", Options{})
	eqSlice(t, "Tolerations", r.Tolerations, []string{"blank-line-in-feedback", "duplicate:feedback-type"})
	eq(t, "ReportDate", r.ReportDate.UTC(), time.Date(2025, 2, 1, 13, 0, 0, 0, time.UTC))
	eq(t, "FeedbackType", r.FeedbackType, "auth-failure")
	eq(t, "UserAgent", r.UserAgent, "FoldTester/1.0")
	eq(t, "SourceIP", r.SourceIP, "192.0.2.9")
	eqSlice(t, "OriginalRcptTo", r.OriginalRcptTo, []string{"<one@isp.example>", "<two@isp.example>"})
	eqSlice(t, "AuthenticationResults", r.AuthenticationResults, []string{
		"mx.isp.example; dkim=fail (bodyhash) header.d=example.com",
		"backup.isp.example; spf=softfail smtp.mailfrom=example.com",
	})
	eqSlice(t, "ReportedURI", r.ReportedURI, []string{"http://example.com/a", "mailto:list@example.com"})
	eq(t, "DKIMCanonicalHeader", r.DKIMCanonicalHeader, "ZnJvbTpFeGFtcGxlIDxub3JlcGx5QGV4YW1wbGUuY29tPg0K")
	eq(t, "AuthFailure", r.AuthFailure, "bodyhash")
	eq(t, "DKIMDomain", r.DKIMDomain, "example.com")
	eq(t, "DKIMIdentity", r.DKIMIdentity, "@example.com")
	eq(t, "DKIMSelector", r.DKIMSelector, "s1")
	eq(t, "Incidents", r.Incidents, int64(12))
	eq(t, "ReportedDomain", r.ReportedDomain, "example.com")
	wantFields := []dmarcd.Field{
		fld("Feedback-Type", "auth-failure"),
		fld("FEEDBACK-TYPE", "abuse"),
		fld("user-agent", "FoldTester/1.0"),
		fld("Version", "1"),
		fld("source-ip", "192.0.2.9 (mail9.example.com)"),
		fld("Original-Rcpt-To", "<one@isp.example>"),
		fld("Original-Rcpt-To", "<two@isp.example>"),
		fld("Authentication-Results", "mx.isp.example; dkim=fail (bodyhash) header.d=example.com"),
		fld("Authentication-Results", "backup.isp.example; spf=softfail smtp.mailfrom=example.com"),
		fld("Reported-URI", "http://example.com/a"),
		fld("Reported-URI", "mailto:list@example.com"),
		fld("X-Custom-Field", "kept in order"),
		fld("DKIM-Canonicalized-Header", "ZnJvbTpFeGFtcGxlIDxub3JlcGx5QGV4YW1w bGUuY29tPg0K"),
		fld("Auth-Failure", "BodyHash"),
		fld("DKIM-Domain", "example.com"),
		fld("DKIM-Identity", "@example.com"),
		fld("DKIM-Selector", "s1"),
		fld("Incidents", "12"),
		fld("REPORTED-DOMAIN", "example.com"),
		fld("Reported-Domain", "mail.example.com"),
	}
	if !slices.Equal(r.Fields, wantFields) {
		t.Errorf("Fields:\ngot  %q\nwant %q", r.Fields, wantFields)
	}
	eq(t, "OriginalSubject", r.OriginalSubject, "folded subject line")
}

// TestFeedbackAsText has the feedback fields in a text/plain attachment,
// quoted-printable, in a multipart/mixed, and the reported message in
// base64.
func TestFeedbackAsText(t *testing.T) {
	r := parseTestdata(t, "feedback-as-text.eml", Options{KeepBody: true})
	eqSlice(t, "Tolerations", r.Tolerations, []string{"feedback-part-as-text", "not-multipart-report", "original-encoded"})
	eq(t, "UserAgent", r.UserAgent, "Text/0.9")
	eqSlice(t, "AuthenticationResults", r.AuthenticationResults, []string{"receiver.example; dmarc=fail header.from=example.org"})
	eq(t, "OriginalFrom", r.OriginalFrom, "Org <info@example.org>")
	eq(t, "OriginalBody", string(r.OriginalBody), "Body.\r\n")
}

// TestFeedbackInText has the fields after prose in a single text/plain
// body.
func TestFeedbackInText(t *testing.T) {
	msg := readTestdata(t, "feedback-in-text.eml")
	if !IsFailureReport(msg) {
		t.Error("IsFailureReport false")
	}
	r := parseTestdata(t, "feedback-in-text.eml", Options{})
	eqSlice(t, "Tolerations", r.Tolerations, []string{"feedback-in-text", "not-multipart-report", "no-original-part"})
	eq(t, "AuthFailure", r.AuthFailure, "dkim")
	eq(t, "SourceIP", r.SourceIP, "192.0.2.66")
	eq(t, "len(Fields)", len(r.Fields), 6)
}

// TestForwarded is a report attached, as message/rfc822, to a forward.
func TestForwarded(t *testing.T) {
	msg := readTestdata(t, "forwarded.eml")
	if !IsFailureReport(msg) {
		t.Error("IsFailureReport false")
	}
	r := parseTestdata(t, "forwarded.eml", Options{})
	eqSlice(t, "Tolerations", r.Tolerations, []string{"forwarded-report"})
	eq(t, "ReportMessageID", r.ReportMessageID, "<inner-1@receiver.example>")
	eq(t, "UserAgent", r.UserAgent, "Inner/1.0")
	eq(t, "OriginalSubject", r.OriginalSubject, "Forged")
}

// TestTruncatedOriginal is cut inside the reported message: the report is
// read, the truncation noted.
func TestTruncatedOriginal(t *testing.T) {
	r := parseTestdata(t, "truncated-original.eml", Options{KeepBody: true})
	eqSlice(t, "Tolerations", r.Tolerations, []string{"truncated-mime"})
	eq(t, "SourceIP", r.SourceIP, "192.0.2.44")
	eq(t, "OriginalMessageID", r.OriginalMessageID, "<long-1@example.com>")
	if !strings.HasPrefix(string(r.OriginalBody), "Lorem ipsum") {
		t.Errorf("OriginalBody: %q", r.OriginalBody)
	}
}

// TestErrors checks that broken or foreign input gives a clear error.
func TestErrors(t *testing.T) {
	tests := []struct {
		name     string
		msg      []byte
		contains string
		notARF   bool
	}{
		{"no boundary", readTestdata(t, "no-boundary.eml"), "parsing failure report: message: multipart/report without boundary parameter", false},
		{"truncated feedback", readTestdata(t, "truncated.eml"), "parsing failure report: feedback part 2: truncated", false},
		{"plain mail", readTestdata(t, "not-a-report.eml"), "not a failure report", true},
		{"empty", nil, "not a mail message", true},
		{"not mail", []byte("<?xml version=\"1.0\"?>\n<feedback/>\n"), "not a mail message", true},
		{"too large", bytes.Repeat([]byte("a"), MaxMessageBytes+1), "larger than MaxMessageBytes", false},
		{"no delimiter", []byte("Subject: DMARC Failure Report\nContent-Type: multipart/report; boundary=x\n\nno parts\n"), "no delimiter line --x", false},
		{"deep nesting", nested(MaxMIMEDepth + 1), "nested deeper than 8 (MaxMIMEDepth)", false},
		{"many fields", manyFields(MaxFeedbackFields + 1), "more than 1000 fields (MaxFeedbackFields)", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse(tt.msg, Options{})
			if err == nil {
				t.Fatalf("no error, report %+v", r)
			}
			if !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("error %q does not contain %q", err, tt.contains)
			}
			if errors.Is(err, ErrNotFailureReport) != tt.notARF {
				t.Errorf("errors.Is(%v, ErrNotFailureReport) = %v", err, !tt.notARF)
			}
		})
	}
	if IsFailureReport(readTestdata(t, "not-a-report.eml")) {
		t.Error("IsFailureReport true for a plain mail")
	}
	// A report Parse cannot read still goes to Parse, to say why.
	if !IsFailureReport(readTestdata(t, "no-boundary.eml")) {
		t.Error("IsFailureReport false for a report without boundary")
	}
}

// nested returns a report with depth nested multiparts.
func nested(depth int) []byte {
	var b bytes.Buffer
	b.WriteString("Subject: DMARC Failure Report\n")
	for i := range depth {
		b.WriteString("Content-Type: multipart/mixed; boundary=b" + string(rune('a'+i)) + "\n\n--b" + string(rune('a'+i)) + "\n")
	}
	b.WriteString("Content-Type: message/feedback-report\n\nFeedback-Type: auth-failure\n")
	return b.Bytes()
}

// manyFields returns a report with n feedback fields.
func manyFields(n int) []byte {
	var b bytes.Buffer
	b.WriteString("Subject: x\nContent-Type: multipart/report; report-type=feedback-report; boundary=z\n\n--z\nContent-Type: message/feedback-report\n\n")
	for range n {
		b.WriteString("X-F: 1\n")
	}
	b.WriteString("\n--z--\n")
	return b.Bytes()
}

// TestDetect checks IsFailureReport on non-standard mails.
func TestDetect(t *testing.T) {
	tests := []struct {
		name string
		msg  string
		want bool
	}{
		{"subject only", "From: a@example.com\nSubject: DMARC Forensic Report for example.com\n\ntext\n", true},
		{"netease subject", "From: <abuse@163.com>\nSubject: [Netease DMARC Failure Report] Hi\n\ntext\n", true},
		{"sender word", "From: DMARC <dmarc-forensic@receiver.example>\nSubject: Report\n\ntext\n", true},
		{"sender no word", "From: Rufus <rufus@example.com>\nSubject: Hello\n\ntext\n", false},
		{"aggregate subject", "From: noreply-dmarc-support@google.com\nSubject: Report domain: example.com Submitter: google.com Report-ID: 1\nContent-Type: application/zip\nContent-Transfer-Encoding: base64\n\nUEsDBA==\n", false},
		{"failure subject, aggregate attachment", "From: x@example.com\nSubject: DMARC Failure Report\nContent-Type: multipart/mixed; boundary=q\n\n--q\nContent-Type: application/gzip\n\nxx\n--q--\n", false},
		{"feedback part", "From: x@example.com\nContent-Type: multipart/mixed; boundary=q\n\n--q\nContent-Type: message/feedback-report\n\nFeedback-Type: auth-failure\n--q--\n", true},
		{"tls report", "From: x@example.com\nSubject: Report Domain: example.com\nContent-Type: multipart/report; report-type=tlsrpt; boundary=q\n\n--q\nContent-Type: application/tlsrpt+gzip\n\nxx\n--q--\n", false},
		{"garbage", "\x00\x01\x02", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eq(t, "IsFailureReport", IsFailureReport([]byte(tt.msg)), tt.want)
		})
	}
}

// TestParseDate checks the date forms reporters write.
func TestParseDate(t *testing.T) {
	utc := func(y int, mo time.Month, d, h, mi, s int) time.Time {
		return time.Date(y, mo, d, h, mi, s, 0, time.UTC)
	}
	tests := []struct {
		in   string
		want time.Time
	}{
		{"Mon, 01 Oct 2018 11:20:27 +0200", utc(2018, 10, 1, 9, 20, 27)},
		{"Tue,  5 Oct 2021 17:37:02 +1300 (NZDT)", utc(2021, 10, 5, 4, 37, 2)},
		{"Thu, 8 Mar 2005 14:00:00 EDT", utc(2005, 3, 8, 18, 0, 0)},
		{"Wed, 14 Apr 2010 12:15:31 -0700 (PDT)", utc(2010, 4, 14, 19, 15, 31)},
		{"8 Oct 2011 20:15:58 +0000 (GMT)", utc(2011, 10, 8, 20, 15, 58)},
		{"Sat, 1 Feb 2025 08:00:00 CST", utc(2025, 2, 1, 14, 0, 0)},
		{"Sat, 1 Feb 2025 08:00:00 GMT", utc(2025, 2, 1, 8, 0, 0)},
		{"2025-02-01T12:30:00Z", utc(2025, 2, 1, 12, 30, 0)},
		{"2025-02-01 12:30:00 +0100", utc(2025, 2, 1, 11, 30, 0)},
		{"Sat Feb  1 12:30:00 2025", utc(2025, 2, 1, 12, 30, 0)},
		{"Sat Feb  1 12:30:00 UTC 2025", utc(2025, 2, 1, 12, 30, 0)},
	}
	for _, tt := range tests {
		got, ok := parseDate(tt.in)
		if !ok || !got.Equal(tt.want) {
			t.Errorf("parseDate(%q) = %v, %v; want %v", tt.in, got, ok, tt.want)
		}
	}
	for _, bad := range []string{"", "yesterday", "(comment only)", "32 Jan 2025 10:00:00 +0000"} {
		if got, ok := parseDate(bad); ok {
			t.Errorf("parseDate(%q) = %v, want failure", bad, got)
		}
	}
}

func TestIdentityAlignment(t *testing.T) {
	for in, want := range map[string]string{
		"none":       "none",
		"spf,dkim":   "dkim, spf",
		"DKIM, SPF":  "dkim, spf",
		"spf":        "spf",
		"dkim (x)":   "dkim",
		"none, arc":  "arc",
		"":           "",
		"spf , spf ": "spf",
	} {
		eq(t, "identityAlignment("+in+")", identityAlignment(in), want)
	}
}

func TestSourceIP(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":                           "192.0.2.1",
		"148.163.85.135 (sainay.example.org)": "148.163.85.135",
		"[192.0.2.1]":                         "192.0.2.1",
		"IPv6:2001:DB8::1":                    "2001:db8::1",
		"::ffff:192.0.2.7":                    "192.0.2.7",
		"not-an-address (x)":                  "not-an-address",
	} {
		p := &parser{msg: &message{}}
		eq(t, "sourceIP("+in+")", p.sourceIP(in), want)
	}
}

func TestDecodeBase64(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"aGVsbG8=", "hello", true},
		{"aGVs\r\nbG8=\r\n", "hello", true},
		{"aGVsbG8", "hello", true},
		{"aGV*sbG8=", "hello", false},
		{"aGVsbG8=x", "hello", false},
	} {
		got, ok := decodeBase64([]byte(tt.in))
		if string(got) != tt.want || ok != tt.ok {
			t.Errorf("decodeBase64(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestDecodeQuotedPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"caf=C3=A9":         "café",
		"soft=\r\nbreak":    "softbreak",
		"soft= \nbreak":     "softbreak",
		"bad =ZZ escape":    "bad =ZZ escape",
		"lower =c3=a9":      "lower é",
		"end =":             "end ",
		"equals=3D and =3d": "equals= and =",
	} {
		eq(t, "decodeQuotedPrintable("+in+")", string(decodeQuotedPrintable([]byte(in))), want)
	}
}

func TestSplitMultipart(t *testing.T) {
	body := "preamble\r\n--b \r\nA: 1\r\n\r\none\r\n--b\r\n\r\ntwo\r\n--bb\r\nstill two\r\n--b--\r\nepilogue\r\n"
	parts, closed := splitMultipart([]byte(body), "b", 10)
	if !closed || len(parts) != 2 || string(parts[0]) != "A: 1\r\n\r\none" || string(parts[1]) != "\r\ntwo\r\n--bb\r\nstill two" {
		t.Errorf("splitMultipart = %q, %v", parts, closed)
	}
	parts, closed = splitMultipart([]byte("--b\nx\n"), "b", 10)
	if closed || len(parts) != 1 || string(parts[0]) != "x\n" {
		t.Errorf("splitMultipart unclosed = %q, %v", parts, closed)
	}
}
