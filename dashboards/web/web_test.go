package web

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/advisor"
	"github.com/dmarcd/dmarcd/analyze"
	"github.com/dmarcd/dmarcd/internal/corpus"
	"github.com/dmarcd/dmarcd/internal/figures"
	"github.com/dmarcd/dmarcd/internal/synth"
)

// TestSamplesPages shows the repository's samples on every page: the
// figures the pages show are the ones the records view gives.
func TestSamplesPages(t *testing.T) {
	st := openStore(t)
	ingestSamples(t, st)
	dns := samplesDNS()
	ks, _ := testKeys(t, dns)
	o := fullOptions(st, dns, ks, samplesNow)
	h := newHandler(t, o)

	// The samples' TLS reports: the domain page links to them, and the
	// TLS page shows example.com's expired certificate.
	if page := mustGet(t, h, "/domain/example.com?days=90"); !strings.Contains(page, `href="/tls?days=90&amp;domain=example.com"`) {
		t.Error("/domain/example.com: no link to its TLS reports")
	}
	if page := mustGet(t, h, "/tls?domain=example.com"); !strings.Contains(page, "certificate-expired") || !strings.Contains(page, "mx2.example.com") {
		t.Error("/tls?domain=example.com: the samples' certificate failures are missing")
	}

	// The front page: every domain with its mail of the last 30 days.
	page := mustGet(t, h, "/")
	var total int64
	for _, d := range []string{"example.com", "news.example.com"} {
		n := scalar(t, st, `SELECT SUM(count) FROM records WHERE domain = ?`, d)
		pass := scalar(t, st, `SELECT SUM(count) FROM records WHERE domain = ? AND dmarc_pass = 1`, d)
		total += n
		row := frontRow(t, page, d)
		for _, want := range []string{figures.Count(n), percent(ratio(pass, n)), "Nov 7, 2026"} {
			if !strings.Contains(row, want) {
				t.Errorf("front page row of %s lacks %q:\n%s", d, want, row)
			}
		}
		// The recommendation is the advisor's, with its record.
		rec, err := o.Recommender.Recommend(context.Background(), dmarcd.SenderDomain{Name: d})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(text(row), actionLabel(rec)) {
			t.Errorf("front page row of %s lacks the advice %q:\n%s", d, actionLabel(rec), row)
		}
		if rec.Record == "" || !strings.Contains(text(page), rec.Record) {
			t.Errorf("front page lacks the record %q for %s", rec.Record, d)
		}
	}
	if got := byID(t, page, "total-messages"); got != figures.Count(total) {
		t.Errorf("total messages %q, want %s", got, figures.Count(total))
	}
	if got, want := byID(t, page, "total-pass"), percent(ratio(scalar(t, st, `SELECT SUM(count) FROM records WHERE dmarc_pass = 1`), total)); got != want {
		t.Errorf("total pass rate %q, want %s", got, want)
	}

	// A domain's page, over each window.
	for _, days := range WindowChoices {
		path := "/domain/example.com?days=" + strconv.Itoa(days)
		page := mustGet(t, h, path)
		from := samplesNow.AddDate(0, 0, 1-days).Format(time.DateOnly)
		n := scalar(t, st, `SELECT SUM(count) FROM records WHERE domain = 'example.com' AND day >= ?`, from)
		pass := scalar(t, st, `SELECT SUM(count) FROM records WHERE domain = 'example.com' AND day >= ? AND dmarc_pass = 1`, from)
		dkim := scalar(t, st, `SELECT SUM(count) FROM records WHERE domain = 'example.com' AND day >= ? AND dkim = 'pass'`, from)
		spf := scalar(t, st, `SELECT SUM(count) FROM records WHERE domain = 'example.com' AND day >= ? AND spf = 'pass'`, from)
		for id, want := range map[string]string{"messages": figures.Count(n), "dmarc-pass": percent(ratio(pass, n)),
			"dkim-aligned": percent(ratio(dkim, n)), "spf-aligned": percent(ratio(spf, n))} {
			if got := byID(t, page, id); got != want {
				t.Errorf("%s: %s reads %q, want %q", path, id, got, want)
			}
		}
		// One hover column per day of the window in each chart.
		if got := strings.Count(page, `class="hover"`); got != 2*days {
			t.Errorf("%s: %d hover columns, want %d", path, got, 2*days)
		}
		// Every reporter and every source of the window is listed.
		for _, org := range strs(t, st, `SELECT DISTINCT org_name FROM reports WHERE domain = 'example.com' AND day >= ?`, from) {
			if !strings.Contains(text(page), org) {
				t.Errorf("%s: reporter %q missing", path, org)
			}
		}
		for _, ip := range strs(t, st, `SELECT DISTINCT source_ip FROM records WHERE domain = 'example.com' AND day >= ?`, from) {
			if !strings.Contains(page, `/domain/example.com/source/`+ip) {
				t.Errorf("%s: source %s has no link", path, ip)
			}
		}
	}

	// The bars of the week: one passing bar per day with mail.
	page = mustGet(t, h, "/domain/news.example.com?days=7")
	days := scalar(t, st, `SELECT COUNT(DISTINCT day) FROM records WHERE domain = 'news.example.com' AND day >= '2026-11-02'`)
	if got := int64(strings.Count(page, `class="bar-pass"`)); got != days {
		t.Errorf("news.example.com, 7 days: %d passing bars, want %d", got, days)
	}

	// A source's records.
	ip := strs(t, st, `SELECT source_ip FROM records WHERE domain = 'example.com' GROUP BY source_ip ORDER BY SUM(count) DESC LIMIT 1`)[0]
	page = mustGet(t, h, "/domain/example.com/source/"+ip)
	n := scalar(t, st, `SELECT SUM(count) FROM records WHERE domain = 'example.com' AND source_ip = ?`, ip)
	rows := scalar(t, st, `SELECT COUNT(*) FROM records WHERE domain = 'example.com' AND source_ip = ?`, ip)
	if got := byID(t, page, "source-messages"); got != figures.Count(n) {
		t.Errorf("source %s: messages %q, want %s", ip, got, figures.Count(n))
	}
	if got := int64(strings.Count(page, `<td class="nowrap">2026-11-0`)); got != rows {
		t.Errorf("source %s: %d records listed, want %d", ip, got, rows)
	}
	for _, s := range strs(t, st, `SELECT DISTINCT envelope_from FROM records WHERE domain = 'example.com' AND source_ip = ? AND envelope_from != ''`, ip) {
		if !strings.Contains(text(page), s) {
			t.Errorf("source %s: envelope from %q missing", ip, s)
		}
	}

	// The wizard's records, as rows and as zone file lines.
	page = mustGet(t, h, "/domain/example.com/records")
	plan, err := o.Plan(context.Background(), dmarcd.SenderDomain{Name: "example.com"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range plan.Records {
		if !strings.Contains(text(page), r.Value) {
			t.Errorf("records page lacks %s value %q", r.Purpose, r.Value)
		}
	}
	var bind strings.Builder
	plan.WriteBIND(&bind, "example.com")
	if !strings.Contains(text(page), bind.String()) {
		t.Errorf("records page lacks the zone file lines:\n%s", bind.String())
	}

	// The keys with their advice.
	page = mustGet(t, h, "/keys")
	for _, want := range []string{"s2026a", "e2026b", ">current<", ">created<", "publish its record"} {
		if !strings.Contains(page, want) {
			t.Errorf("keys page lacks %q", want)
		}
	}

	// The failure reports, newest first, and each one's headers.
	page = mustGet(t, h, "/failures")
	subjects := strs(t, st, `SELECT original_subject FROM failures ORDER BY arrival_date DESC`)
	last := -1
	for _, s := range subjects {
		i := strings.Index(text(page), s)
		if i < 0 || i < last {
			t.Errorf("failure list: %q missing or out of order", s)
		}
		last = i
	}
	for _, id := range strs(t, st, `SELECT CAST(id AS TEXT) FROM failures`) {
		page := mustGet(t, h, "/failures/"+id)
		headers := strs(t, st, `SELECT original_headers FROM failures WHERE CAST(id AS TEXT) = ?`, id)[0]
		if headers == "" || !strings.Contains(text(page), headers) {
			t.Errorf("failure %s: the original headers are missing", id)
		}
	}
	page = mustGet(t, h, "/failures?domain=news.example.com")
	if !strings.Contains(page, "Invoice 1073 overdue") || strings.Contains(page, "Invoice 1072 overdue") {
		t.Errorf("failures of news.example.com: the filter does not hold")
	}

	// HEAD gives the headers of GET without the body.
	res := do(t, h, http.MethodHead, "/domain/example.com")
	if res.Status != http.StatusOK || res.Body != "" || res.Header.Get("Content-Length") == "" {
		t.Errorf("HEAD: %d, %d bytes, Content-Length %q", res.Status, len(res.Body), res.Header.Get("Content-Length"))
	}
}

// frontRow returns the row of the front page's table for domain.
func frontRow(t *testing.T, page, domain string) string {
	t.Helper()
	i := strings.Index(page, `<tr data-domain="`+domain+`">`)
	if i < 0 {
		t.Fatalf("no row for %s", domain)
	}
	return page[i : i+strings.Index(page[i:], "</tr>")]
}

// TestCorpusPages shows the shared corpus: every domain, the mail of each
// as the corpus's EXPECTED.tsv says, and every failure report.
func TestCorpusPages(t *testing.T) {
	st := openStore(t)
	ingestCorpus(t, st)
	now := time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC)
	h := newHandler(t, Options{Store: st, Now: func() time.Time { return now }})

	// What the corpus says: the distinct reports of its EXPECTED rows that
	// parse, per domain and day.
	type key struct{ domain, day string }
	perDay := map[key]int64{}
	lastDay := map[string]string{}
	seen := map[string]bool{}
	for _, r := range corpus.Table(t, "EXPECTED.tsv") {
		if r["status"] == "malformed" {
			continue
		}
		k := r["org_name"] + "|" + r["email"] + "|" + r["report_id"] + "|" + r["domain"] + "|" + r["begin"] + "|" + r["end"]
		if seen[k] {
			continue
		}
		seen[k] = true
		begin, _ := strconv.ParseInt(r["begin"], 10, 64)
		day := time.Unix(begin, 0).UTC().Format(time.DateOnly)
		n, _ := strconv.ParseInt(r["sum_count"], 10, 64)
		d := strings.ToLower(r["domain"])
		perDay[key{d, day}] += n
		lastDay[d] = max(lastDay[d], day)
	}

	page := mustGet(t, h, "/")
	for d := range lastDay {
		if !strings.Contains(page, `<tr data-domain="`+d+`">`) {
			t.Errorf("front page: no row for %s", d)
		}
	}
	for d, last := range lastDay {
		path := "/domain/" + d + "?days=90&to=" + last
		page := mustGet(t, h, path)
		end, _ := time.Parse(time.DateOnly, last)
		from := end.AddDate(0, 0, -89).Format(time.DateOnly)
		var want int64
		for k, n := range perDay {
			if k.domain == d && k.day >= from && k.day <= last {
				want += n
			}
		}
		if got := byID(t, page, "messages"); got != figures.Count(want) {
			t.Errorf("%s: %s messages, the corpus says %s", path, got, figures.Count(want))
		}
	}
	// A window without mail points to the last report.
	page = mustGet(t, h, "/domain/stalw.art")
	if !strings.Contains(page, "?days=30&amp;to="+lastDay["stalw.art"]) {
		t.Errorf("stalw.art without mail in the window: no link to the window of its last report")
	}

	// TLS reports: the window of the corpus's reports of early 2024 has
	// their sessions and failures; an empty window points to the last.
	page = mustGet(t, h, "/tls?days=90&to=2024-02-22")
	for _, want := range []string{`data-domain="example.com" data-policy="sts"`, "validation-failure", "sts-policy-fetch-error"} {
		if !strings.Contains(page, want) {
			t.Errorf("/tls: lacks %q", want)
		}
	}
	if !strings.Contains(page, `<span class="badge poor">100%</span>`) {
		t.Errorf("/tls: example.com's 4 of 4 failed sessions are not shown as 100%%")
	}
	page = mustGet(t, h, "/tls?domain=cardinalhealth.ca")
	if !strings.Contains(page, "No TLS reports in this window") || !strings.Contains(page, "to=2024-09-03") {
		t.Errorf("/tls in a window without reports: no link to the last one")
	}
	page = mustGet(t, h, "/tls?domain=cardinalhealth.ca&days=90&to=2024-09-03")
	if strings.Contains(page, `data-domain="example.com"`) || !strings.Contains(page, `data-domain="cardinalhealth.ca"`) {
		t.Errorf("/tls?domain=cardinalhealth.ca shows other domains")
	}

	// Every failure report is listed, and opens.
	want := len(corpus.Table(t, "EXPECTED_FORENSIC.tsv"))
	ids := strs(t, st, `SELECT CAST(id AS TEXT) FROM failures`)
	if len(ids) < want-1 { // the two LinkedIn files are one report
		t.Fatalf("%d failure reports stored, the corpus has %d", len(ids), want)
	}
	page = mustGet(t, h, "/failures")
	if got := strings.Count(page, `<a href="/failures/`); got != len(ids) {
		t.Errorf("failure list: %d links, want %d", got, len(ids))
	}
	for _, id := range ids {
		page := mustGet(t, h, "/failures/"+id)
		for _, s := range strs(t, st, `SELECT original_subject FROM failures WHERE CAST(id AS TEXT) = ?`, id) {
			if !strings.Contains(text(page), s) {
				t.Errorf("failure %s: subject %q missing", id, s)
			}
		}
	}
}

// TestNoBodiesOfFailureReports: with the bodies of reported messages kept
// in the store, no page shows any of them.
func TestNoBodiesOfFailureReports(t *testing.T) {
	st := openStore(t)
	ingestCorpus(t, st)
	h := newHandler(t, Options{Store: st})
	bodies := strs(t, st, `SELECT original_body FROM failure_reports WHERE original_body IS NOT NULL AND original_body != ''`)
	if len(bodies) == 0 {
		t.Fatal("no failure report body kept: the test proves nothing")
	}
	var pages []string
	pages = append(pages, mustGet(t, h, "/failures"))
	for _, id := range strs(t, st, `SELECT CAST(id AS TEXT) FROM failures`) {
		pages = append(pages, mustGet(t, h, "/failures/"+id))
	}
	checked := 0
	for _, b := range bodies {
		for _, line := range strings.Split(b, "\n") {
			line = strings.TrimSpace(line)
			if len(line) < 24 || strings.Contains(line, ":") {
				continue // short lines and header-like lines may repeat in the headers
			}
			checked++
			for _, p := range pages {
				if strings.Contains(text(p), line) {
					t.Errorf("a page shows a line of a reported message's body: %q", line)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no body line to look for")
	}
}

// TestSynthPages checks the figures, the classes of the sources and the
// advisor's record against synthetic traffic whose numbers are known.
func TestSynthPages(t *testing.T) {
	st := openStore(t)
	synth.Dataset{
		Domain: "synth.example", From: "2026-11-01", To: "2026-11-28",
		Published: synth.Constant("quarantine", 5, "y"),
		Sources: []synth.Traffic{
			{IP: "192.0.2.10", PerDay: 1000, Pass: true, Selector: "s1"},
			{IP: "203.0.113.5", PerDay: 100, DKIMOnly: true},
			{IP: "198.51.100.7", PerDay: 40},
		},
	}.Write(t, st)
	now := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
	dns := &fakeDNS{
		txt: map[string][]string{"_dmarc.synth.example": {"v=DMARC1; p=quarantine; pct=5; t=y; rua=mailto:d@synth.example"}},
		ptr: map[string]string{"203.0.113.5": "mail-forward.outlook.com", "192.0.2.10": "out1.synth.example"},
	}
	// 198.51.100.7 sends every day without authentication: a sender not
	// set up, which holds the rollout; the page names it with its fixes.
	page := mustGet(t, newHandler(t, fullOptions(st, dns, nil, now)), "/domain/synth.example")
	for _, want := range []string{"Hold at quarantine 5% (t=y)", "1 sender to fix", `data-sender="ip:198.51.100.7"`,
		"find out what sends from 198.51.100.7", `add &#34;198.51.100.7&#34; to not_ours`} {
		if !strings.Contains(page, want) {
			t.Errorf("domain page lacks %q", want)
		}
	}
	o := fullOptions(st, dns, nil, now)
	// The owner says it is not theirs.
	o.Domains = func(context.Context) ([]dmarcd.SenderDomain, error) {
		return []dmarcd.SenderDomain{{Name: "synth.example", NotOurs: []string{"198.51.100.7"}}}, nil
	}
	h := newHandler(t, o)

	// 28 days of 1,140 messages (two reporters, half each): 1,100 pass
	// (1,000 aligned both ways, 100 DKIM only).
	page = mustGet(t, h, "/domain/synth.example")
	for id, want := range map[string]string{"messages": "31,920", "dmarc-pass": "96.5%", "dkim-aligned": "96.5%", "spf-aligned": "87.7%"} {
		if got := byID(t, page, id); got != want {
			t.Errorf("%s reads %q, want %q", id, got, want)
		}
	}
	if got := strings.Count(page, `class="bar-pass"`); got != 28 {
		t.Errorf("%d passing bars, want 28", got)
	}
	if got := strings.Count(page, `class="bar-fail"`); got != 28 {
		t.Errorf("%d failing bars, want 28", got)
	}
	for _, want := range []string{
		"2026-11-28: 1,140 messages, 1,100 pass DMARC (96.5%), 40 fail",
		"2026-11-28: DMARC 96.5%, DKIM aligned 96.5%, SPF aligned 87.7% of 1,140 messages",
	} {
		if !strings.Contains(text(page), want) {
			t.Errorf("no chart title %q", want)
		}
	}
	sources := section(t, page, `id="sources"`)
	for _, row := range []struct{ ip, class, ptr, base string }{
		{"192.0.2.10", "authorized", "out1.synth.example", "synth.example"},
		{"203.0.113.5", "forwarder", "mail-forward.outlook.com", "outlook.com"},
		{"198.51.100.7", "spoofing", "", ""},
	} {
		r := sources[strings.Index(sources, row.ip):]
		r = r[:strings.Index(r, "</tr>")]
		for _, want := range []string{">" + row.class + "<", row.ptr, row.base} {
			if !strings.Contains(r, want) {
				t.Errorf("source %s lacks %q:\n%s", row.ip, want, r)
			}
		}
	}
	// Authorized mail passes, the step held 28 days: the advisor goes to
	// the next step whose share of a week's mail (7,980) is meaningful.
	for _, want := range []string{"Advance to quarantine 10%", "v=DMARC1; p=quarantine; pct=10; t=y; rua=mailto:d@synth.example"} {
		if !strings.Contains(text(page), want) {
			t.Errorf("domain page lacks %q", want)
		}
	}
	// The 7-day window ends today, which has no reports yet: 6 days of
	// mail in 6 bars.
	page = mustGet(t, h, "/domain/synth.example?days=7")
	if got := byID(t, page, "messages"); got != "6,840" {
		t.Errorf("7 days: %s messages, want 6,840", got)
	}
	if got := strings.Count(page, `class="bar-pass"`); got != 6 {
		t.Errorf("7 days: %d bars, want 6", got)
	}
	// A source: 28 days of two reports of two records each (the receiver
	// quarantined 5% of its failing mail, and let the rest through).
	page = mustGet(t, h, "/domain/synth.example/source/198.51.100.7")
	if got := byID(t, page, "source-messages"); got != "1,120" {
		t.Errorf("source messages %q, want 1,120", got)
	}
	if got := strings.Count(page, `<td class="nowrap">2026-11-`); got != 112 {
		t.Errorf("source records: %d, want 112", got)
	}
	if got := byID(t, page, "source-class"); got != "spoofing" {
		t.Errorf("source class %q", got)
	}
}

// section returns page from marker to the end of its table.
func section(t *testing.T, page, marker string) string {
	t.Helper()
	i := strings.Index(page, marker)
	if i < 0 {
		t.Fatalf("no %s", marker)
	}
	s := page[i:]
	return s[:strings.Index(s, "</table>")]
}

// TestBadInputs: every input is checked; what is wrong gives 400, what
// does not exist 404, and nothing is echoed unescaped.
func TestBadInputs(t *testing.T) {
	st := openStore(t)
	ingestSamples(t, st)
	h := newHandler(t, fullOptions(st, samplesDNS(), nil, samplesNow))
	long := strings.Repeat("a", 64) + "." + strings.Repeat("b.", 100) + "com"
	for _, c := range []struct {
		path   string
		status int
	}{
		{"/", 200},
		{"/?days=30", 200},
		{"/?days=8", 400},
		{"/?days=-7", 400},
		{"/?days=7e1", 400},
		{"/?to=2026-11-01", 200},
		{"/?to=2026-13-01", 400},
		{"/?to=2999-01-01", 400},
		{"/?to=1969-12-31", 400},
		{"/domain/example.com", 200},
		{"/domain/EXAMPLE.com", 404},
		{"/domain/example..com", 400},
		{"/domain/.example.com", 400},
		{"/domain/%3Cscript%3Ealert(1)%3C%2Fscript%3E", 400},
		{"/domain/exa%20mple.com", 400},
		{"/domain/" + long, 400},
		{"/domain/unknown.example", 404},
		{"/domain/example.com?days=31", 400},
		{"/domain/example.com/source/192.0.2.84", 200},
		{"/domain/example.com/source/192.0.2.1", 404},
		{"/domain/example.com/source/not-an-ip", 400},
		{"/domain/example.com/source/fe80::1%25eth0", 400},
		{"/domain/example.com/source/999.1.1.1", 400},
		{"/domain/unknown.example/source/192.0.2.84", 404},
		{"/domain/example.com/records", 200},
		{"/domain/unknown.example/records", 404},
		{"/domain/a%2Fb/records", 400},
		{"/failures", 200},
		{"/failures?page=1", 200},
		{"/failures?page=2", 200},
		{"/failures?page=0", 400},
		{"/failures?page=10001", 400},
		{"/failures?page=x", 400},
		{"/failures?domain=example.com", 200},
		{"/failures?domain=%3Cx%3E", 400},
		{"/failures/1", 200},
		{"/failures/999999", 404},
		{"/failures/18446744073709551615", 404},
		{"/failures/18446744073709551616", 400},
		{"/failures/-1", 400},
		{"/failures/1x", 400},
		{"/keys", 200},
		{"/static/style.css", 200},
		{"/static/copy.js", 200},
		{"/static/", 404},
		{"/static/nope.css", 404},
		{"/favicon.ico", 200},
		{"/nope", 404},
		{"/domain/", 404},
	} {
		res := get(t, h, c.path)
		if res.Status != c.status {
			t.Errorf("GET %s: %d, want %d", c.path, res.Status, c.status)
		}
		if strings.Contains(res.Body, "<script>") || strings.Contains(res.Body, "<x>") {
			t.Errorf("GET %s: the input is echoed unescaped", c.path)
		}
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions} {
		res := do(t, h, m, "/")
		if res.Status != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s /: %d, Allow %q", m, res.Status, res.Header.Get("Allow"))
		}
	}
	res := get(t, h, "/domain/example.com/source/not-an-ip")
	if !strings.Contains(res.Body, "is not an IP address") {
		t.Errorf("a bad address does not say so:\n%s", res.Body)
	}
	// Without the wizard and the key store, their pages say so.
	h = newHandler(t, Options{Store: st})
	if res := get(t, h, "/domain/example.com/records"); res.Status != http.StatusNotFound {
		t.Errorf("records page without a wizard: %d", res.Status)
	}
	if page := mustGet(t, h, "/keys"); !strings.Contains(page, "No key store") {
		t.Errorf("keys page without a key store does not say so")
	}
}

// TestSecurityHeaders: every answer, errors included, carries them.
func TestSecurityHeaders(t *testing.T) {
	st := openStore(t)
	h := newHandler(t, Options{Store: st, Auth: Auth{Token: "0123456789abcdef0123"}})
	for _, path := range []string{"/", "/?token=0123456789abcdef0123", "/nope", "/static/style.css"} {
		res := get(t, h, path)
		for name, want := range map[string]string{
			"Content-Security-Policy": contentSecurityPolicy,
			"X-Content-Type-Options":  "nosniff",
			"X-Frame-Options":         "DENY",
			"Referrer-Policy":         "same-origin",
		} {
			if got := res.Header.Get(name); got != want {
				t.Errorf("GET %s: %s %q, want %q", path, name, got, want)
			}
		}
	}
	if !strings.Contains(contentSecurityPolicy, "script-src 'self'") || strings.Contains(contentSecurityPolicy, "unsafe") {
		t.Errorf("the policy allows inline code: %s", contentSecurityPolicy)
	}
	// No inline script, style or event handler in any page: the policy
	// would block them.
	st2 := openStore(t)
	ingestSamples(t, st2)
	dns := samplesDNS()
	ks, _ := testKeys(t, dns)
	h = newHandler(t, fullOptions(st2, dns, ks, samplesNow))
	inline := regexp.MustCompile(`(?i)<script>|<script [^>]*>[^<]|<style|\sstyle=|\son[a-z]+=|javascript:`)
	for _, path := range []string{"/", "/domain/example.com", "/domain/example.com/source/192.0.2.84", "/domain/example.com/records", "/keys", "/failures", "/failures/1", "/nope"} {
		res := get(t, h, path)
		if m := inline.FindString(res.Body); m != "" {
			t.Errorf("GET %s: inline code %q", path, m)
		}
		if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("GET %s: Content-Type %q", path, ct)
		}
	}
}

// TestAuth: on a network address a secret is required; the handler
// enforces it, and compares it whole.
func TestAuth(t *testing.T) {
	for _, c := range []struct {
		addr string
		auth Auth
		ok   bool
	}{
		{"127.0.0.1:8478", Auth{}, true},
		{"127.1.2.3:8478", Auth{}, true},
		{"[::1]:8478", Auth{}, true},
		{"localhost:8478", Auth{}, true},
		{":8478", Auth{}, false},
		{"0.0.0.0:8478", Auth{}, false},
		{"[::]:8478", Auth{}, false},
		{"192.0.2.1:8478", Auth{}, false},
		{"[::ffff:192.0.2.1]:8478", Auth{}, false},
		{"dmarc.example.com:8478", Auth{}, false},
		{"0.0.0.0:8478", Auth{Token: "0123456789abcdef"}, true},
		{":8478", Auth{BasicUser: "pm", BasicPassword: "correct horse battery"}, true},
		{"127.0.0.1", Auth{}, false}, // no port
	} {
		err := CheckListen(c.addr, c.auth)
		if (err == nil) != c.ok {
			t.Errorf("CheckListen(%q, enabled=%v): %v", c.addr, c.auth.Enabled(), err)
		}
	}
	for _, a := range []Auth{{Token: "short"}, {BasicUser: "pm"}, {BasicPassword: "correct horse battery"}, {BasicUser: "p:m", BasicPassword: "correct horse battery"}, {BasicUser: "pm", BasicPassword: "short"}} {
		if _, err := New(Options{Store: openStore(t), Auth: a}); err == nil {
			t.Errorf("New accepts %+v", a)
		}
	}

	st := openStore(t)
	ingestSamples(t, st)
	const token = "s3cr3t-t0ken-0123456789"
	h := newHandler(t, Options{Store: st, Auth: Auth{Token: token}})
	for _, c := range []struct {
		name    string
		path    string
		headers []string
		status  int
	}{
		{"nothing", "/", nil, 401},
		{"nothing, static", "/static/style.css", nil, 401},
		{"nothing, other host", "/", []string{"Host: dmarc.example.com"}, 401},
		{"bearer", "/", []string{"Authorization: Bearer " + token}, 200},
		{"bearer, other host", "/domain/example.com", []string{"Authorization: Bearer " + token, "Host: dmarc.example.com"}, 200},
		{"wrong bearer", "/", []string{"Authorization: Bearer " + token + "x"}, 401},
		{"prefix of the bearer", "/", []string{"Authorization: Bearer " + token[:10]}, 401},
		{"empty bearer", "/", []string{"Authorization: Bearer "}, 401},
		{"token as basic", "/", []string{"Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("x:"+token))}, 401},
		{"wrong query token", "/?token=nope", nil, 401},
		{"forged cookie", "/", []string{"Cookie: " + sessionCookie + "=" + strings.Repeat("0", 64)}, 401},
		{"raw token as cookie", "/", []string{"Cookie: " + sessionCookie + "=" + token}, 401},
		{"cookie", "/", []string{"Cookie: " + sessionCookie + "=" + sessionValue(token)}, 200},
	} {
		res := get(t, h, c.path, c.headers...)
		if res.Status != c.status {
			t.Errorf("%s: %d, want %d", c.name, res.Status, c.status)
		}
		if res.Status == 401 && res.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", c.name)
		}
		if res.Status == 401 && strings.Contains(res.Body, "example.com") {
			t.Errorf("%s: 401 shows data", c.name)
		}
	}
	// ?token= sets the cookie and sends the browser on without the token.
	res := get(t, h, "/domain/example.com?days=7&token="+token)
	if res.Status != http.StatusSeeOther || res.Header.Get("Location") != "/domain/example.com?days=7" {
		t.Fatalf("?token=: %d, Location %q", res.Status, res.Header.Get("Location"))
	}
	for _, path := range []string{"//evil.example/?token=" + token, "/%2F%2Fevil.example?token=" + token, "/\\evil.example?token=" + token} {
		r := httptest.NewRequest(http.MethodGet, "http://localhost:8478/", nil)
		r.URL, _ = url.ParseRequestURI(path)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if loc := w.Header().Get("Location"); w.Code != http.StatusSeeOther || strings.HasPrefix(loc, "//") || strings.Contains(loc, "\\") || strings.Contains(loc, "token") {
			t.Errorf("?token= on %q: %d, Location %q", path, w.Code, loc)
		}
	}
	cookie := res.Header.Get("Set-Cookie")
	for _, want := range []string{sessionCookie + "=" + sessionValue(token), "HttpOnly", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(cookie, want) {
			t.Errorf("Set-Cookie %q lacks %q", cookie, want)
		}
	}
	if strings.Contains(cookie, token) {
		t.Errorf("the cookie holds the token itself")
	}

	// Basic authentication.
	h = newHandler(t, Options{Store: st, Auth: Auth{BasicUser: "postmaster", BasicPassword: "correct horse battery"}})
	basic := func(u, p string) string {
		return "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p))
	}
	for _, c := range []struct {
		header string
		status int
	}{
		{"", 401},
		{basic("postmaster", "correct horse battery"), 200},
		{basic("postmaster", "correct horse batter"), 401},
		{basic("postmaste", "correct horse battery"), 401},
		{basic("", ""), 401},
	} {
		var hs []string
		if c.header != "" {
			hs = append(hs, c.header)
		}
		res := get(t, h, "/", hs...)
		if res.Status != c.status {
			t.Errorf("basic %q: %d, want %d", c.header, res.Status, c.status)
		}
		if res.Status == 401 && !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Basic ") {
			t.Errorf("basic: WWW-Authenticate %q", res.Header.Get("WWW-Authenticate"))
		}
	}

	// Without a secret, only the local machine's names: a page fetched
	// through another name is a DNS rebinding attempt.
	h = newHandler(t, Options{Store: st})
	for host, status := range map[string]int{"localhost:8478": 200, "127.0.0.1:8478": 200, "[::1]:8478": 200, "dmarc.example.com": 421, "192.0.2.1:8478": 421} {
		if res := get(t, h, "/", "Host: "+host); res.Status != status {
			t.Errorf("no secret, Host %s: %d, want %d", host, res.Status, status)
		}
	}
}

// TestNoPrivateKeyMaterial: no page shows any part of a private key of the
// key store, while the public keys are shown.
func TestNoPrivateKeyMaterial(t *testing.T) {
	st := openStore(t)
	ingestSamples(t, st)
	dns := samplesDNS()
	ks, pems := testKeys(t, dns)
	h := newHandler(t, fullOptions(st, dns, ks, samplesNow))
	var secrets []string
	for _, path := range pems {
		block, _ := pem.Decode(readFile(t, path))
		if block == nil || !strings.Contains(block.Type, "PRIVATE KEY") {
			t.Fatalf("%s holds no private key", filepath.Base(path))
		}
		b64 := base64.StdEncoding.EncodeToString(block.Bytes)
		// Every 16-character piece of the key, in base64, hex-free
		// forms as PEM lines would show it.
		for i := 0; i+16 <= len(b64); i += 8 {
			secrets = append(secrets, b64[i:i+16])
		}
	}
	keys, err := ks.List()
	if err != nil {
		t.Fatal(err)
	}
	var pages []string
	for _, path := range []string{"/", "/?days=90", "/keys", "/domain/example.com", "/domain/example.com/records",
		"/domain/example.com/source/192.0.2.84", "/failures", "/failures/1", "/domain/news.example.com"} {
		pages = append(pages, mustGet(t, h, path))
	}
	all := strings.Join(pages, "\n")
	if strings.Contains(all, "PRIVATE KEY") {
		t.Error("a page says PRIVATE KEY")
	}
	leaks := 0
	for _, s := range secrets {
		// A piece may occur by chance in the public key of the same
		// RSA key (the private key holds the modulus): skip those.
		public := false
		for _, k := range keys {
			if strings.Contains(base64.StdEncoding.EncodeToString(k.PublicKey), s) {
				public = true
			}
		}
		if !public && strings.Contains(all, s) {
			leaks++
		}
	}
	if leaks > 0 {
		t.Errorf("%d pieces of private keys are on the pages", leaks)
	}
	for _, k := range keys {
		if !strings.Contains(text(pages[2]), k.TXT()) {
			t.Errorf("the keys page lacks the public record of %s", k.ID())
		}
	}
}

// TestCache: the recommendation is asked once per CacheTTL, and an error
// is shown on the page rather than failing it.
func TestCache(t *testing.T) {
	st := openStore(t)
	ingestSamples(t, st)
	now := samplesNow
	r := &countingRecommender{}
	h := newHandler(t, Options{Store: st, Recommender: r, Now: func() time.Time { return now },
		Domains: func(context.Context) ([]dmarcd.SenderDomain, error) {
			return []dmarcd.SenderDomain{{Name: "example.com"}, {Name: "quiet.example"}}, nil
		}})
	page := mustGet(t, h, "/")
	mustGet(t, h, "/domain/example.com")
	if r.calls["example.com"] != 1 || r.calls["quiet.example"] != 1 || r.calls["news.example.com"] != 0 {
		t.Errorf("calls %v: want one per configured domain", r.calls)
	}
	if !strings.Contains(page, "&lt;b&gt;too little&lt;/b&gt; mail") {
		t.Errorf("the reasons of a recommendation are not shown escaped")
	}
	if !strings.Contains(page, "resolver unreachable") {
		t.Errorf("the error of a recommendation is not shown")
	}
	if !strings.Contains(page, "No reports yet for quiet.example") {
		t.Errorf("a configured domain without reports is not named")
	}
	if res := get(t, h, "/domain/quiet.example"); res.Status != http.StatusOK {
		t.Errorf("a configured domain without reports: %d", res.Status)
	}
	now = now.Add(DefaultCacheTTL + time.Second)
	mustGet(t, h, "/")
	if r.calls["example.com"] != 2 {
		t.Errorf("after the TTL: %d calls", r.calls["example.com"])
	}
}

type countingRecommender struct {
	mu    sync.Mutex
	calls map[string]int
}

func (c *countingRecommender) Recommend(_ context.Context, d dmarcd.SenderDomain) (*advisor.Recommendation, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls == nil {
		c.calls = map[string]int{}
	}
	c.calls[d.Name]++
	if d.Name == "quiet.example" {
		return nil, fmt.Errorf("reading the DMARC record of %s: resolver unreachable", d.Name)
	}
	return &advisor.Recommendation{Domain: d.Name, Action: advisor.Hold, Current: dmarcd.Rollout[0], Next: dmarcd.Rollout[0],
		Reasons: []string{"<b>too little</b> mail"}, RecordName: "_dmarc." + d.Name, LiveRecord: "v=DMARC1; p=none"}, nil
}

// TestFormat pins the figures' formats.
func TestFormat(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 16246: "16,246", 1234567: "1,234,567", -1500: "-1,500"} {
		if got := figures.Count(n); got != want {
			t.Errorf("figures.Count(%d) = %q", n, got)
		}
	}
	for x, want := range map[float64]string{0: "0%", 1: "100%", 0.9999: "99.9%", 0.00001: "0.1%", 0.979: "97.9%", 0.5: "50%"} {
		if got := percent(x); got != want {
			t.Errorf("percent(%v) = %q, want %q", x, got, want)
		}
	}
	for v, want := range map[float64]float64{0: 1, 3: 5, 650: 1000, 1100: 2000, 2400: 2500, 4100: 5000} {
		if got := niceCeil(v); got != want {
			t.Errorf("niceCeil(%v) = %v, want %v", v, got, want)
		}
	}
	if got := daySpan("2026-11-01", "2026-11-07"); got != "Nov 1–7, 2026" {
		t.Errorf("daySpan: %q", got)
	}
	if !slices.Equal(windowDays(analyze.Window{From: "2026-10-30", To: "2026-11-02"}), []string{"2026-10-30", "2026-10-31", "2026-11-01", "2026-11-02"}) {
		t.Error("windowDays")
	}
}

// TestAlertsShown: the front page shows the alerts firing, the alerts page
// their history, a domain page its own; report-controlled text is escaped.
func TestAlertsShown(t *testing.T) {
	st := openStore(t)
	ingestSamples(t, st)
	at := samplesNow.Add(-time.Hour)
	ptr := `<script>alert(1)</script>.attacker.example`
	for _, e := range []dmarcd.AlertEvent{
		{At: at.Add(-48 * time.Hour), Key: "example.com|pass-rate|dmarc", Domain: "example.com", Kind: dmarcd.AlertPassRate, Subject: "dmarc", State: dmarcd.AlertFiring, Title: "DMARC pass rate of example.com is 71.0%"},
		{At: at.Add(-24 * time.Hour), Key: "example.com|pass-rate|dmarc", Domain: "example.com", Kind: dmarcd.AlertPassRate, Subject: "dmarc", State: dmarcd.AlertResolved, Title: "Resolved: DMARC pass rate of example.com is 96.0%"},
		{At: at, Key: "example.com|failing-source|203.0.113.9", Domain: "example.com", Kind: dmarcd.AlertFailingSource, Subject: "203.0.113.9", State: dmarcd.AlertFiring,
			Title: "New source 203.0.113.9 (" + ptr + ") fails DMARC for example.com", Text: "400 of 400 messages failed DMARC."},
		{At: at, Key: "|dmarcd-health|chat", Kind: dmarcd.AlertHealth, Subject: "chat", State: dmarcd.AlertFiring, Title: "The chat service refuses dmarcd's messages"},
	} {
		if err := st.AddAlertEvent(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	h := newHandler(t, fullOptions(st, samplesDNS(), nil, samplesNow))
	index := mustGet(t, h, "/")
	if !strings.Contains(index, "2 alerts firing") || !strings.Contains(index, "The chat service refuses") || strings.Contains(index, "pass rate of example.com is 71.0%") {
		t.Errorf("front page alerts:\n%s", section(t, index, `id="alerts"`))
	}
	page := mustGet(t, h, "/alerts")
	for _, want := range []string{"Resolved: DMARC pass rate of example.com is 96.0%", "DMARC pass rate of example.com is 71.0%", "&lt;script&gt;"} {
		if !strings.Contains(page, want) {
			t.Errorf("alerts page lacks %q", want)
		}
	}
	for _, p := range []string{index, page} {
		if strings.Contains(p, "<script>alert(1)") {
			t.Error("a PTR name is not escaped")
		}
	}
	dom := mustGet(t, h, "/domain/example.com")
	if s := dom[strings.Index(dom, `id="alerts"`):]; !strings.Contains(s, "New source 203.0.113.9") || !strings.Contains(s, "The last 3 changes") {
		t.Errorf("domain page alerts:\n%.2000s", s)
	}
	if res := get(t, h, "/alerts?domain=%3Cx%3E"); res.Status != http.StatusBadRequest {
		t.Errorf("/alerts?domain=<x>: %d", res.Status)
	}
}
