package aggregate

import (
	"bytes"
	"encoding/xml"
	"io"
	"testing"

	"github.com/dmarcd/dmarcd/internal/corpus"
)

// The benchmarks run each decoder over the same inputs: "scanner" is the
// decoder as NewDecoder makes it, "encoding-xml" the decoder over
// encoding/xml alone (the reference of TestDifferential), and
// "xml-tokenizer" encoding/xml's RawToken with no decoding at all, the
// floor of the decoder over encoding/xml. Each reports MB/s of XML,
// records/s and allocations.

// newReferenceDecoder returns a decoder that reads with encoding/xml only.
func newReferenceDecoder(r io.Reader) *Decoder {
	d := NewDecoder(r)
	d.reference = true
	return d
}

// decoders are the ways of reading a document that the benchmarks compare;
// each returns the number of records.
var decoders = []struct {
	name string
	read func(tb testing.TB, doc []byte) int
}{
	{"scanner", func(tb testing.TB, doc []byte) int { return drain(tb, NewDecoder(bytes.NewReader(doc))) }},
	{"encoding-xml", func(tb testing.TB, doc []byte) int { return drain(tb, newReferenceDecoder(bytes.NewReader(doc))) }},
	{"xml-tokenizer", func(tb testing.TB, doc []byte) int {
		xd := xml.NewDecoder(bytes.NewReader(doc))
		xd.Strict = false
		// The bytes as they are: the floor converts nothing. A
		// document that is not UTF-8 ends at its first error.
		xd.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
		n := 0
		for {
			tok, err := xd.RawToken()
			if err != nil {
				return n
			}
			if t, ok := tok.(xml.StartElement); ok && t.Name.Local == "record" {
				n++
			}
		}
	}},
}

// drain reads all records of d and returns their number.
func drain(tb testing.TB, d *Decoder) int {
	if _, err := d.Header(); err != nil {
		tb.Fatal(err)
	}
	n := 0
	for {
		_, err := d.Next()
		if err == io.EOF {
			return n
		}
		if err != nil {
			tb.Fatal(err)
		}
		n++
	}
}

func benchmarkDocs(b *testing.B, docs [][]byte) {
	size := 0
	for _, doc := range docs {
		size += len(doc)
	}
	for _, dec := range decoders {
		b.Run(dec.name, func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			records := 0
			for b.Loop() {
				records = 0
				for _, doc := range docs {
					records += dec.read(b, doc)
				}
			}
			b.ReportMetric(float64(records)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(len(docs))*float64(b.N)/b.Elapsed().Seconds(), "reports/s")
		})
	}
}

// BenchmarkDecodeLarge: one report of 100,000 records (57 MB), as a large
// reporter writes it.
func BenchmarkDecodeLarge(b *testing.B) {
	var doc bytes.Buffer
	if err := writeReport(&doc, 100_000, false); err != nil {
		b.Fatal(err)
	}
	benchmarkDocs(b, [][]byte{doc.Bytes()})
}

// BenchmarkDecodeCorpus: the reports of the shared corpus that parse.
func BenchmarkDecodeCorpus(b *testing.B) {
	var docs [][]byte
	for _, row := range corpus.Table(b, "EXPECTED.tsv") {
		if row["status"] == "malformed" {
			continue
		}
		if data, ok := corpusXML(b, row); ok {
			docs = append(docs, data)
		}
	}
	benchmarkDocs(b, docs)
}

// BenchmarkDecodeGenerated: 300 reports of internal/reportgen's mix of
// reporters and sizes, as the parse section of make bench reads them.
func BenchmarkDecodeGenerated(b *testing.B) {
	benchmarkDocs(b, generatedReports(b, 300))
}
