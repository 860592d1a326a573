package web

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/ingest"
	"github.com/dmarcd/dmarcd/internal/corpus"
	"github.com/dmarcd/dmarcd/internal/testserver"
	"github.com/dmarcd/dmarcd/schema/clickhouse"
)

// TestClickHouse shows the same pages over ClickHouse and SQLite, with the
// samples in both, and compares what they show: the SQL of the page runs on
// both stores.
func TestClickHouse(t *testing.T) {
	dsn := testserver.ClickHouse(t)
	ch, err := clickhouse.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	lite := openStore(t)
	ingestSamples(t, ch)
	ingestSamples(t, lite)
	// And the corpus's SMTP TLS reports.
	var tlsFiles []string
	for _, f := range corpus.Files(t, "tls-rpt") {
		tlsFiles = append(tlsFiles, corpus.Path(t, f))
	}
	tlsInputs, err := ingest.Expand(tlsFiles)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []dmarcd.Store{ch, lite} {
		if sum, err := ingest.New(s, ingest.Options{}).Files(context.Background(), tlsInputs, nil); err != nil || sum.TLS == 0 {
			t.Fatalf("TLS reports: %+v, %v", sum, err)
		}
	}

	dns := samplesDNS()
	hCH := newHandler(t, fullOptions(ch, dns, nil, samplesNow))
	hLite := newHandler(t, fullOptions(lite, dns, nil, samplesNow))

	ip := strs(t, lite, `SELECT source_ip FROM records WHERE domain = 'example.com' GROUP BY source_ip ORDER BY SUM(count) DESC LIMIT 1`)[0]
	ip6 := strs(t, lite, `SELECT source_ip FROM records WHERE domain = 'example.com' AND source_ip LIKE '%:%' GROUP BY source_ip ORDER BY SUM(count) DESC LIMIT 1`)[0]
	for _, path := range []string{
		"/", "/?days=7", "/domain/example.com", "/domain/news.example.com?days=90", "/domain/example.com?days=7&to=2026-11-04",
		"/domain/example.com/source/" + ip, "/domain/example.com/source/" + ip6, "/domain/example.com/records",
		"/failures", "/failures?domain=news.example.com",
		"/tls?days=90&to=2025-06-14", "/tls?domain=example.com&days=90&to=2024-02-22", "/tls?domain=cardinalhealth.ca",
	} {
		a, b := mustGet(t, hCH, path), mustGet(t, hLite, path)
		if fa, fb := pageText(a), pageText(b); fa != fb {
			t.Errorf("%s: ClickHouse and SQLite pages differ:\n%s\n----\n%s", path, fa, fb)
		}
	}
	// Failure reports by their ids, which differ between the stores (a
	// hash in ClickHouse, a sequence in SQLite).
	page := mustGet(t, hCH, "/failures")
	ids := regexp.MustCompile(`href="/failures/(\d+)"`).FindAllStringSubmatch(page, -1)
	if len(ids) != 3 {
		t.Fatalf("ClickHouse failure list: %d reports, want 3", len(ids))
	}
	for _, m := range ids {
		page := mustGet(t, hCH, "/failures/"+m[1])
		if !strings.Contains(text(page), "Subject: Invoice 10") {
			t.Errorf("ClickHouse failure %s: no original headers", m[1])
		}
	}
	if res := get(t, hCH, "/failures/18446744073709551615"); res.Status != 404 {
		t.Errorf("ClickHouse, an unknown large id: %d", res.Status)
	}
	if res := get(t, hCH, "/domain/example.com/source/192.0.2.1"); res.Status != 404 {
		t.Errorf("ClickHouse, an unknown source: %d", res.Status)
	}
}

var idsRE = regexp.MustCompile(`/failures/\d+`)

// pageText is the text of a page without its markup and the failure
// reports' ids, which differ between the stores.
func pageText(page string) string {
	s := idsRE.ReplaceAllString(page, "/failures/ID")
	s = text(tagRE.ReplaceAllString(s, " "))
	// "Read" times are when each store's ingest ran.
	s = regexp.MustCompile(`read \d{4}-\d\d-\d\d \d\d:\d\d`).ReplaceAllString(s, "read TIME")
	return strings.Join(strings.Fields(s), " ")
}
