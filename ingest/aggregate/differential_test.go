package aggregate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/text/encoding/unicode"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/internal/corpus"
)

// The differential tests run the decoder (the scanner, handing over to
// encoding/xml where it must) and the reference decoder (encoding/xml
// alone, as the decoder was before the scanner) over the same documents
// and require the same outcome: the header, every record, every
// toleration, the error and where it came, byte for byte.

// outcome is all that a decoder gives for a document, in the order the
// caller sees it.
type outcome struct {
	Header    *dmarcd.AggregateReport
	HeaderErr string
	Records   []dmarcd.Record
	Err       string // what Next returned last, "" for io.EOF
	Report    *dmarcd.AggregateReport
}

func decodeOutcome(d *Decoder) outcome {
	var o outcome
	h, err := d.Header()
	if err != nil {
		o.HeaderErr = err.Error()
		return o
	}
	o.Header = h
	for {
		rec, err := d.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			o.Err = err.Error()
			return o
		}
		o.Records = append(o.Records, *rec)
	}
	o.Report = d.Report()
	return o
}

// reads are the ways the input of the decoder is cut into reads; the
// reference reads it whole.
var reads = []struct {
	name string
	wrap func(r io.Reader, seed int) io.Reader
}{
	{"whole", func(r io.Reader, _ int) io.Reader { return r }},
	{"one-byte", func(r io.Reader, _ int) io.Reader { return &oneByteReader{r} }},
	{"random", func(r io.Reader, seed int) io.Reader {
		return &randomReader{r: r, rng: rand.New(rand.NewPCG(uint64(seed), 7))}
	}},
}

// randomReader returns reads of 1 to 20,000 bytes.
type randomReader struct {
	r   io.Reader
	rng *rand.Rand
}

func (r *randomReader) Read(p []byte) (int, error) {
	if n := 1 + r.rng.IntN(20_000); len(p) > n {
		p = p[:n]
	}
	return r.r.Read(p)
}

// differ compares the decoder with the reference on doc, read whole and
// cut into reads the ways listed by cuts (indexes of reads). It returns a
// description of the first difference, or "", and the fallback of the
// decoder on the whole document.
func differ(doc []byte, cuts ...int) (diff, fallback string) {
	want := decodeOutcome(newReferenceDecoder(bytes.NewReader(doc)))
	for _, i := range append([]int{0}, cuts...) {
		d := NewDecoder(reads[i].wrap(bytes.NewReader(doc), len(doc)))
		got := decodeOutcome(d)
		if i == 0 {
			fallback = d.Fallback()
		}
		if !reflect.DeepEqual(got, want) {
			return fmt.Sprintf("read %s (fallback %q):\n%s", reads[i].name, d.Fallback(), describe(got, want)), fallback
		}
	}
	return "", fallback
}

// describe names the first part in which two outcomes differ.
func describe(got, want outcome) string {
	switch {
	case got.HeaderErr != want.HeaderErr:
		return fmt.Sprintf("header error\n%q, reference\n%q", got.HeaderErr, want.HeaderErr)
	case !reflect.DeepEqual(got.Header, want.Header):
		return fmt.Sprintf("header\n%+v, reference\n%+v", got.Header, want.Header)
	case got.Err != want.Err:
		return fmt.Sprintf("error after %d records\n%q, reference (after %d)\n%q", len(got.Records), got.Err, len(want.Records), want.Err)
	case len(got.Records) != len(want.Records):
		return fmt.Sprintf("%d records, reference %d", len(got.Records), len(want.Records))
	}
	for i := range got.Records {
		if !reflect.DeepEqual(got.Records[i], want.Records[i]) {
			return fmt.Sprintf("record %d\n%+v, reference\n%+v", i+1, got.Records[i], want.Records[i])
		}
	}
	return fmt.Sprintf("report\n%+v, reference\n%+v", got.Report, want.Report)
}

// checkSame fails t if the decoder and the reference differ on doc.
func checkSame(t *testing.T, name string, doc []byte, cuts ...int) string {
	t.Helper()
	diff, fallback := differ(doc, cuts...)
	if diff != "" {
		t.Errorf("%s: %s", name, diff)
	}
	return fallback
}

// TestDifferentialCorpus: every file of the shared corpus, as it is and,
// for the rows of EXPECTED.tsv, decompressed; read whole, a byte at a time
// and in random reads. It logs which documents fall back and why.
func TestDifferentialCorpus(t *testing.T) {
	fallbacks := map[string][]string{}
	n := 0
	check := func(name string, doc []byte) {
		n++
		if fb := checkSame(t, name, doc, 1, 2); fb != "" {
			fallbacks[fb] = append(fallbacks[fb], name)
		}
	}
	reports := map[string]bool{}
	for _, row := range corpus.Table(t, "EXPECTED.tsv") {
		name := row["file"] + row["member"]
		if row["member"] == "." {
			name = row["file"] // read below with every file
		} else if data, ok := corpusXML(t, row); ok {
			check(name, data)
		}
		if row["status"] != "malformed" {
			reports[name] = true
		}
	}
	for _, file := range corpus.Files(t) {
		check(file, corpus.Read(t, file))
	}
	// The reports that parse are regular XML: the scanner reads them
	// all, or the decoder would be slow where it matters.
	for _, names := range fallbacks {
		for _, name := range names {
			if reports[name] {
				t.Errorf("%s: the scanner hands over", name)
			}
		}
	}
	t.Logf("%d documents", n)
	for _, reason := range FallbackReasons {
		t.Logf("fallback %s: %d %q", reason, len(fallbacks[reason]), fallbacks[reason])
	}
}

// differentialSeeds are the documents of the package's tests: testdata,
// the fuzz target's seeds and its corpus of found inputs.
func differentialSeeds(t testing.TB) map[string][]byte {
	seeds := map[string][]byte{
		"report":          []byte(report(record("192.0.2.1", 1))),
		"report-crlf":     []byte(strings.ReplaceAll(report(record("192.0.2.1", 1), record("2001:db8::1", 2)), "\n", "\r\n")),
		"report-cr":       []byte(strings.ReplaceAll(report(record("192.0.2.1", 1)), "\n", "\r")),
		"xml-decl":        []byte(`<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` + "\n" + report(record("192.0.2.1", 1))),
		"xml-decl-lat":    []byte(`<?xml version='1.0' encoding='ISO-8859-1'?>` + "\n" + report(record("192.0.2.1", 1))),
		"utf-8-as-latin1": []byte(`<?xml version="1.0" encoding="ISO-8859-1"?>` + strings.Replace(report(record("192.0.2.1", 1)), "<org_name>o<", "<org_name>Société<", 1)),
		"namespaced": []byte(`<?xml version="1.0"?><dmarc:feedback xmlns:dmarc="urn:ietf:params:xml:ns:dmarc-2.0" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">` +
			strings.TrimPrefix(strings.ReplaceAll(report(record("192.0.2.1", 1)), "</feedback>", "</dmarc:feedback>"), "<feedback>")),
	}
	utf16, err := unicode.UTF16(unicode.BigEndian, unicode.UseBOM).NewEncoder().String(
		`<?xml version="1.0" encoding="UTF-16"?>` + strings.Replace(report(record("192.0.2.1", 1)), "<org_name>o<", "<org_name>Ørsted<", 1))
	if err != nil {
		t.Fatal(err)
	}
	seeds["utf-16"] = []byte(utf16)
	files, err := filepath.Glob(filepath.Join("testdata", "*.xml"))
	if err != nil {
		t.Fatal(err)
	}
	fuzzed, err := filepath.Glob(filepath.Join("testdata", "fuzz", "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		seeds[file] = readTestdata(t, filepath.Base(file))
	}
	for _, file := range fuzzed {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if doc, ok := fuzzInput(data); ok {
			seeds[file] = doc
		}
	}
	if corpusPresent() {
		// FuzzDecode's seeds from the corpus.
		for _, file := range corpus.Files(t, "aggregate", "aggregate-dmarcbis", "malformed", "non-report") {
			if ext := filepath.Ext(file); ext == ".xml" || ext == ".txt" {
				data := corpus.Read(t, file)
				seeds["seed:"+file] = data[:min(len(data), maxSeedBytes)]
			}
		}
	}
	return seeds
}

// fuzzInput reads the []byte of a file of the fuzzing engine's corpus
// ("go test fuzz v1" and one []byte("...") line).
func fuzzInput(file []byte) ([]byte, bool) {
	_, arg, ok := bytes.Cut(file, []byte("\n[]byte("))
	if !ok {
		return nil, false
	}
	arg = bytes.TrimSpace(arg)
	arg = bytes.TrimSuffix(arg, []byte(")"))
	var s string
	if _, err := fmt.Sscanf(string(arg), "%q", &s); err != nil {
		return nil, false
	}
	return []byte(s), true
}

// TestDifferentialSeeds: testdata and the fuzz corpus, read whole, a byte
// at a time and in random reads.
func TestDifferentialSeeds(t *testing.T) {
	for name, doc := range differentialSeeds(t) {
		checkSame(t, name, doc, 1, 2)
	}
}

// TestDifferentialGenerated: reports of internal/reportgen, in the dialect
// of before RFC 9990 and in RFC 9990's, and of writeReport, up to a few
// thousand records.
func TestDifferentialGenerated(t *testing.T) {
	docs := append(generate(40, 3, true), generate(40, 4, false)...)
	for _, compact := range []bool{false, true} {
		var b bytes.Buffer
		if err := writeReport(&b, 3000, compact); err != nil {
			t.Fatal(err)
		}
		docs = append(docs, b.Bytes())
	}
	for i, doc := range docs {
		if fb := checkSame(t, fmt.Sprintf("generated %d", i), doc, 2); fb != "" {
			t.Errorf("generated %d falls back (%s)", i, fb)
		}
	}
}

// snippets are inserted into documents, and bytes replaced by them, to
// reach what the scanner takes, what it hands over and where each error
// comes.
var snippets = []string{
	"<", ">", "&", "/", "=", "'", `"`, ":", "?", "!", "-", "]", " ", "\n", "\r", "\r\n", "\t",
	"&amp;", "&lt;", "&#65;", "&#x41;", "&#xd;", "&#0;", "&#1;", "&#xFFFE;", "&#xD800;", "&#x110000;",
	"&#99999999999999999999;", "&#;", "&#x;", "&#12", "&nbsp;", "&eacute;", "&bogus;", "&;", "&é;",
	"]]>", "]]", "<!--x-->", "<!-- a -- b -->", "<!---->", "<!--", "<![CDATA[a<b&c\r\nd]]>", "<![CDATA[", "<![CDAT",
	"<?pi x?>", "<?xml version=\"1.0\"?>", "<?xml version=\"1.1\"?>", "<?xml version=\"1.0\" encoding=\"latin1\"?>",
	"<?xml encoding='utf-8' version='1.0'?>", "<?xml version = \"1.0\"?>", "<?xml?>", "<??>",
	"<!DOCTYPE feedback>", "<!DOCTYPE x [<!ENTITY e 'v'>]>", "<!ELEMENT x>",
	"<a/>", "<a />", "<a/ >", "</a>", "<a b='1'/>", "<a b=1/>", "<a b/>", "<a b=\"<\"/>", "<a b=\"&amp;\r\n\"/>",
	"<a:b/>", "<a:b:c/>", "<:a/>", "<a:/>", "<1a/>", "<é/>", "<a\xc3\xa9/>", "< a/>", "</ a>", "</a >",
	"<extension><x y='1'>z</x></extension>", "<x xmlns='urn:x' xmlns:p='urn:p'><p:y/></x>",
	"\xff", "\x00", "\x01", "\xc3", "é", "€", "\uFFFE", "\xef\xbb\xbf",
	"\u00a0", "AT&T",
}

// mutationBases are the documents mutated: small, with every part of a
// report, in each dialect.
func mutationBases(t testing.TB) map[string][]byte {
	full := strings.Replace(report(record("192.0.2.1", 3), record("2001:db8::1", 1)), "<policy_published>",
		`<extension xmlns:e="urn:e"><e:x a="1">y</e:x></extension><policy_published>`, 1)
	return map[string][]byte{
		"report":  []byte(full),
		"rfc9990": readTestdata(t, "rfc9990.xml"),
		"crlf":    []byte(`<?xml version="1.0" encoding="UTF-8"?>` + "\r\n" + strings.ReplaceAll(report(record("192.0.2.7", 2)), "\n", "\r\n")),
	}
}

// TestDifferentialMutations: documents cut at every byte, with a snippet
// inserted at every byte, and with every byte replaced by a snippet.
func TestDifferentialMutations(t *testing.T) {
	step := 1
	if testing.Short() {
		step = 7
	}
	docs := 0
	for name, base := range mutationBases(t) {
		for i := 0; i <= len(base); i += step {
			docs++
			checkSame(t, fmt.Sprintf("%s cut at %d", name, i), base[:i])
			for j, sn := range snippets {
				// Each position gets a few snippets, in turn, so
				// that every snippet meets every kind of place.
				if (i+j)%11 != 0 {
					continue
				}
				docs += 2
				checkSame(t, fmt.Sprintf("%s + %q at %d", name, sn, i), concat(base[:i], sn, base[i:]))
				if i < len(base) {
					checkSame(t, fmt.Sprintf("%s with %q for byte %d", name, sn, i), concat(base[:i], sn, base[i+1:]))
				}
			}
		}
	}
	t.Logf("%d documents", docs)
}

func concat(a []byte, s string, b []byte) []byte {
	out := make([]byte, 0, len(a)+len(s)+len(b))
	return append(append(append(out, a...), s...), b...)
}

// TestDifferentialLimits: tokens around MaxTokenBytes, right after text
// and right after a tag (encoding/xml has read one byte of a tag with the
// text before it), and text around MaxTextBytes.
func TestDifferentialLimits(t *testing.T) {
	base := report(record("192.0.2.1", 1))
	r := strings.Repeat
	cases := []struct {
		name     string
		old, new func(n int) string // the part of base replaced, and by what, with n bytes of filling
	}{
		{"text", func(int) string { return "<org_name>o<" }, func(n int) string { return "<org_name>" + r("o", n) + "<" }},
		{"space", func(int) string { return "<org_name>" }, func(n int) string { return r(" ", n) + "<org_name>" }},
		{"comment after text", func(int) string { return "<org_name>" }, func(n int) string { return " <!--" + r("c", n) + "--><org_name>" }},
		{"comment after tag", func(int) string { return "<org_name>" }, func(n int) string { return "<!--" + r("c", n) + "--><org_name>" }},
		{"attribute", func(int) string { return "<org_name>" }, func(n int) string { return `<org_name a="` + r("a", n) + `">` }},
		{"attribute after text", func(int) string { return "</feedback>" }, func(n int) string { return ` <extension a="` + r("a", n) + `"/></feedback>` }},
		{"trailing text", func(int) string { return "</feedback>\n" }, func(n int) string { return "</feedback>" + r("\n", n) }},
		{"trailing comment", func(int) string { return "</feedback>\n" }, func(n int) string { return "</feedback>\n<!--" + r("c", n) + "-->" }},
		// Handed over for another reason, right after text: the
		// limit of the token must still count from the byte after
		// its '<'.
		{"doctype after text", func(int) string { return "<feedback>" }, func(n int) string { return " <!DOCTYPE x" + r("d", n) + "><feedback>" }},
		{"doctype first", func(int) string { return "<feedback>" }, func(n int) string { return "<!DOCTYPE x" + r("d", n) + "><feedback>" }},
		{"unquoted after text", func(int) string { return "</feedback>" }, func(n int) string { return " <x a=" + r("a", n) + "/></feedback>" }},
	}
	for _, size := range []int{MaxTextBytes, MaxTokenBytes} {
		for _, c := range cases {
			// The markup around the filling is up to 20 bytes.
			for delta := -24; delta <= 2; delta++ {
				n := size + delta
				doc := strings.Replace(base, c.old(n), c.new(n), 1)
				checkSame(t, fmt.Sprintf("%s of %d", c.name, n), []byte(doc), 2)
			}
		}
	}
}

// FuzzDifferential runs the decoder and the reference on the same input
// and requires the same outcome.
func FuzzDifferential(f *testing.F) {
	for _, doc := range differentialSeeds(f) {
		f.Add(doc)
	}
	for _, doc := range mutationBases(f) {
		f.Add(doc)
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		if diff, _ := differ(doc, 1); diff != "" {
			t.Fatal(diff)
		}
	})
}

// failingReader gives data, then fails with err, as a truncated gzip
// stream does.
type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// TestDifferentialReadError: the input fails after every byte of a report;
// the error, and what came before it, must be the same.
func TestDifferentialReadError(t *testing.T) {
	errRead := errors.New("read failed")
	for name, base := range mutationBases(t) {
		for i := 0; i <= len(base); i++ {
			want := decodeOutcome(newReferenceDecoder(&failingReader{base[:i], errRead}))
			for _, r := range []io.Reader{&failingReader{base[:i], errRead}, &oneByteReader{&failingReader{base[:i], errRead}}} {
				if got := decodeOutcome(NewDecoder(r)); !reflect.DeepEqual(got, want) {
					t.Errorf("%s failing after %d bytes: %s", name, i, describe(got, want))
				}
			}
		}
	}
}

// TestScannerLongTokens: a long token in reads of a byte is not scanned
// again from its start for every byte.
func TestScannerLongTokens(t *testing.T) {
	doc := strings.Replace(report(record("192.0.2.1", 1)), "<org_name>o</org_name>",
		"<!--"+strings.Repeat("c", 200_000)+"--><org_name>"+strings.Repeat("o", 60_000)+"</org_name>", 1)
	d := NewDecoder(&oneByteReader{strings.NewReader(doc)})
	if _, err := d.Header(); err != nil {
		t.Fatal(err)
	}
	if d.fast == nil {
		t.Fatalf("fell back: %s", d.Fallback())
	}
	if max := 4 * int64(len(doc)); d.fast.rescanned > max {
		t.Errorf("%d bytes scanned again for %d bytes of input, more than %d", d.fast.rescanned, len(doc), max)
	}
	checkSame(t, "long tokens", []byte(doc), 1)
}
