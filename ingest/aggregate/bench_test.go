package aggregate

import (
	"bytes"
	"io"
	"testing"

	"github.com/dmarcd/dmarcd/internal/corpus"
)

func BenchmarkParseLarge(b *testing.B) {
	const records = 100_000
	var doc bytes.Buffer
	if err := writeReport(&doc, records, false); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(doc.Len()))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		d := NewDecoder(bytes.NewReader(doc.Bytes()))
		if _, err := d.Header(); err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			_, err := d.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != records {
			b.Fatalf("%d records, want %d", n, records)
		}
	}
	b.ReportMetric(float64(records)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkParseCorpus(b *testing.B) {
	var docs [][]byte
	size := 0
	for _, row := range corpus.Table(b, "EXPECTED.tsv") {
		if row["status"] == "malformed" {
			continue
		}
		if data, ok := corpusXML(b, row); ok {
			docs = append(docs, data)
			size += len(data)
		}
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, doc := range docs {
			if _, _, err := Parse(bytes.NewReader(doc)); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(len(docs))*float64(b.N)/b.Elapsed().Seconds(), "reports/s")
}
