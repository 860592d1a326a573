package aggregate

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/internal/corpus"
)

// corpusXML returns the decoded XML of a row of EXPECTED.tsv: the file
// itself (member "."), or what gunzip or unzip makes of it. MIME members
// are for the package that unpacks mail: ok is false for them.
func corpusXML(t testing.TB, row corpus.Row) (data []byte, ok bool) {
	t.Helper()
	data = corpus.Read(t, row["file"])
	member := row["member"]
	if member == "." {
		return data, true
	}
	for rest := member; rest != ""; {
		switch {
		case strings.HasPrefix(rest, ">gunzip"):
			rest = strings.TrimPrefix(rest, ">gunzip")
			zr, err := gzip.NewReader(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("%s: gunzip: %v", row["file"], err)
			}
			if data, err = io.ReadAll(zr); err != nil {
				t.Fatalf("%s: gunzip: %v", row["file"], err)
			}
		case strings.HasPrefix(rest, ">zip:"):
			// A zip member is the last step; its name may hold '>'.
			name := strings.TrimPrefix(rest, ">zip:")
			rest = ""
			if name == "<EMPTY-MEMBER-NAME>" {
				name = ""
			}
			zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatalf("%s: unzip: %v", row["file"], err)
			}
			i := slices.IndexFunc(zr.File, func(f *zip.File) bool { return f.Name == name })
			if i < 0 {
				t.Fatalf("%s: no zip member %q", row["file"], name)
			}
			f, err := zr.File[i].Open()
			if err != nil {
				t.Fatalf("%s: unzip %q: %v", row["file"], name, err)
			}
			data, err = io.ReadAll(f)
			f.Close()
			if err != nil {
				t.Fatalf("%s: unzip %q: %v", row["file"], name, err)
			}
		default: // >mime...
			return nil, false
		}
	}
	return data, true
}

// dispositionCounts renders the records' dispositions as EXPECTED.tsv does: the
// number of records of each, "<empty>" for none, sorted, comma-separated.
func dispositionCounts(records []dmarcd.Record) string {
	n := map[string]int{}
	for _, r := range records {
		d := r.Disposition
		if d == "" {
			d = "<empty>"
		}
		n[d]++
	}
	var parts []string
	for d, c := range n {
		parts = append(parts, fmt.Sprintf("%s:%d", d, c))
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// TestCorpus decodes every aggregate report of the shared corpus that is
// raw XML, gzip or zip, and compares it with EXPECTED.tsv. EXPECTED holds
// values as written (whitespace stripped); enumerated values are compared in
// lower case, as the decoder normalizes them (report_with_upper_cased_pass
// has "None" and "Pass").
func TestCorpus(t *testing.T) {
	rows := corpus.Table(t, "EXPECTED.tsv")
	checked := 0
	for _, row := range rows {
		data, ok := corpusXML(t, row)
		if !ok {
			continue
		}
		checked++
		t.Run(row["file"]+row["member"], func(t *testing.T) {
			r, records, err := Parse(bytes.NewReader(data))
			if row["status"] == "malformed" {
				if err == nil {
					t.Fatalf("parsed a report EXPECTED says is malformed (%s)", row["reason"])
				}
				if !strings.HasPrefix(err.Error(), "parsing aggregate report: ") || !strings.Contains(err.Error(), "line ") {
					t.Errorf("error without context or line: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s report: %v", row["status"], err)
			}
			checkExpected(t, row, r, records)
		})
	}
	if checked < 40 {
		t.Errorf("only %d corpus rows checked", checked)
	}
}

func checkExpected(t *testing.T, row corpus.Row, r *dmarcd.AggregateReport, records []dmarcd.Record) {
	t.Helper()
	p := r.Policy
	exact := []struct{ col, got string }{
		{"version", r.Version},
		{"namespace", r.Namespace},
		{"org_name", r.Metadata.OrgName},
		{"email", r.Metadata.Email},
		{"report_id", r.Metadata.ReportID},
		{"begin", strconv.FormatInt(r.Metadata.DateBegin.Unix(), 10)},
		{"end", strconv.FormatInt(r.Metadata.DateEnd.Unix(), 10)},
		{"domain", p.Domain},
		{"fo", p.FO},
		{"n_records", strconv.FormatInt(r.RecordCount, 10)},
		{"sum_count", strconv.FormatInt(r.MessageCount, 10)},
	}
	for _, c := range exact {
		if c.got != row[c.col] {
			t.Errorf("%s = %q, EXPECTED %q", c.col, c.got, row[c.col])
		}
	}
	enums := []struct{ col, got string }{
		{"adkim", p.ADKIM}, {"aspf", p.ASPF}, {"p", p.P}, {"sp", p.SP}, {"np", p.NP},
		{"testing", p.Testing}, {"discovery_method", p.DiscoveryMethod},
		{"dispositions", dispositionCounts(records)},
	}
	for _, c := range enums {
		if want := strings.ToLower(row[c.col]); c.got != want {
			t.Errorf("%s = %q, EXPECTED %q (in lower case)", c.col, c.got, want)
		}
	}
	wantPct := dmarcd.PctAbsent
	if row["pct"] != "" {
		wantPct, _ = strconv.Atoi(row["pct"])
	}
	if p.Pct != wantPct {
		t.Errorf("pct = %d, EXPECTED %q", p.Pct, row["pct"])
	}
	if int64(len(records)) != r.RecordCount {
		t.Errorf("%d records returned, RecordCount %d", len(records), r.RecordCount)
	}
	ipv6 := 0
	for _, rec := range records {
		if a, err := netip.ParseAddr(rec.SourceIP); err == nil && a.Is6() {
			ipv6++
			if a.String() != rec.SourceIP {
				t.Errorf("source IP %q not canonical", rec.SourceIP)
			}
		}
	}
	if got := strconv.Itoa(ipv6); got != row["n_ipv6_sources"] {
		t.Errorf("%s IPv6 sources, EXPECTED %s", got, row["n_ipv6_sources"])
	}
	// The quirks EXPECTED notes must show as tolerations.
	for q := range strings.SplitSeq(row["quirks"], "; ") {
		var code string
		switch {
		case strings.HasPrefix(q, "ws-in:"):
			code = q
		case q == "empty-org_name":
			code = "empty:org_name"
		default:
			continue
		}
		if !slices.Contains(r.Tolerations, code) {
			t.Errorf("tolerations %q lack %q (EXPECTED quirk %q)", r.Tolerations, code, q)
		}
	}
	if row["status"] == "malformed-lenient-ok" && len(r.Tolerations) == 0 {
		t.Errorf("malformed report (%s) decoded without tolerations", row["reason"])
	}
	for _, v := range []string{p.ADKIM, p.ASPF, p.P, p.SP, p.NP, p.Testing} {
		if v != strings.ToLower(v) {
			t.Errorf("enumerated value %q not in lower case", v)
		}
	}
	if strings.ToLower(row["dispositions"]) != row["dispositions"] && !slices.Contains(r.Tolerations, "uppercase-values") {
		t.Errorf("upper-case values not noted in %q", r.Tolerations)
	}
}

// TestCorpusNotReports feeds the decoder the corpus files that are not
// aggregate reports, or are malformed ones that cannot be read: each gives a
// clear error. Files whose report EXPECTED.tsv reads leniently are left to
// TestCorpus.
func TestCorpusNotReports(t *testing.T) {
	lenient := map[string]bool{}
	for _, row := range corpus.Table(t, "EXPECTED.tsv") {
		if row["member"] == "." && row["status"] != "malformed" {
			lenient[row["file"]] = true
		}
	}
	files := corpus.Files(t, "malformed", "non-report", "tls-rpt", "forensic", "expected-json", "schema")
	if len(files) < 20 {
		t.Fatalf("only %d files of those kinds in MANIFEST.tsv", len(files))
	}
	for _, file := range files {
		if lenient[file] {
			continue
		}
		t.Run(file, func(t *testing.T) {
			data := corpus.Read(t, file)
			_, _, err := Parse(bytes.NewReader(data))
			if err == nil {
				t.Fatal("parsed as an aggregate report")
			}
			if !strings.HasPrefix(err.Error(), "parsing aggregate report: ") {
				t.Errorf("error without context: %v", err)
			}
			// Only the malformed reports are reports at all.
			if !strings.HasSuffix(file, "invalid_xml.xml") && !errors.Is(err, ErrNotAggregateReport) {
				t.Errorf("error is not ErrNotAggregateReport: %v", err)
			}
		})
	}
}
